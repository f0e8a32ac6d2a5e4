"""Make every pixel environment of sb3-sacae and print its spaces, frame stack and action repeat.

    python examples/pixel_envs.py
    python examples/pixel_envs.py DMC-cheetah-run-v0 PendulumPixels-v1

No display or GPU needed: MuJoCo / DeepMind Control render with MUJOCO_GL=egl unless MUJOCO_GL is set
(run scripts/install_system_deps.sh once for the system libraries).
"""

import sys

import gymnasium as gym

import sb3_sacae  # noqa: F401  (registers the ids below with Gymnasium)
from sb3_sacae.envs import PIXEL_ENVS


def describe(env_id: str) -> None:
    env = gym.make(env_id)
    env.reset(seed=0)
    _, reward, _, _, info = env.step(env.action_space.sample())
    print(f"{env_id}")
    print(f"  observation space: {env.observation_space}  (frame_stack={env.get_wrapper_attr('frame_stack')})")
    print(f"  action space:      {env.action_space}  (action_repeat={env.get_wrapper_attr('action_repeat')})")
    print(f"  one step:          reward={reward:.3f}, env frames={info['env_frames']}")
    env.close()


if __name__ == "__main__":
    for env_id in sys.argv[1:] or PIXEL_ENVS:
        describe(env_id)
