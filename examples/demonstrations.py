"""
Start SACAE from demonstrations on PendulumPixels-v1 (64x64 pixels, 3 frames, action repeat 2).

1. A scripted swing-up controller (it reads the pendulum's true state, which the agent never sees) records a few
   episodes to an .npz file (no pickle; format in sb3_sacae/demonstrations.py).
2. A new SACAE's replay buffer is pre-filled with them, the agent takes gradient steps on them before acting
   (pretraining), then learns from interaction as usual, with learning_starts=0 so the pretrained policy acts
   from the first step.

    python examples/demonstrations.py                                          # 3.5 CPU-minutes (2 cores)
    python examples/demonstrations.py --pretrain-steps 5000 --timesteps 20000  # a real run: use a GPU

The defaults only show the workflow: 100 gradient steps are far too few for the returns printed to mean much
(a SACAE gradient step at 64 px, batch 128, takes on the order of a second on 2 CPU cores).
"""

import argparse
from pathlib import Path

import gymnasium as gym
import numpy as np
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor

from sb3_sacae import SACAE
from sb3_sacae.demonstrations import add_demonstrations, load_demonstrations, pretrain, record_demonstrations


def swing_up_expert(env: gym.Env):
    """Energy pumping far from the top, a PD controller near it; reads the state from the unwrapped Pendulum."""
    pendulum = env.unwrapped

    def act(obs: np.ndarray) -> np.ndarray:
        theta, theta_dot = pendulum.state
        theta = (theta + np.pi) % (2 * np.pi) - np.pi  # 0 = upright
        if np.cos(theta) > 0.85:
            return np.array([np.clip(-(10 * theta + 2 * theta_dot), -2, 2)], dtype=np.float32)
        energy = 0.5 * theta_dot**2 + 15 * np.cos(theta)  # 15 = upright at rest (3g / 2l with g=10, l=1)
        return np.array([2.0 * np.sign(theta_dot) if energy < 15 else -0.5 * np.sign(theta_dot)], dtype=np.float32)

    return act


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=5, help="demonstration episodes to record (100 agent steps each)")
    parser.add_argument("--pretrain-steps", type=int, default=50, help="gradient steps on the demonstrations")
    parser.add_argument("--timesteps", type=int, default=50, help="agent steps of learn() afterwards")
    parser.add_argument("--out", type=Path, default=Path("runs/demonstrations"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    env = gym.make("PendulumPixels-v1", image_size=64)
    eval_env = Monitor(gym.make("PendulumPixels-v1", image_size=64))
    path = args.out / "pendulum_expert.npz"
    demos = record_demonstrations(env, swing_up_expert(env), args.episodes, path=path, seed=args.seed)
    returns = np.add.reduceat(demos["rewards"], np.flatnonzero(demos["episode_starts"]))
    n = len(demos["rewards"])
    print(f"recorded {args.episodes} episodes, {n} transitions, mean return {returns.mean():.1f}")
    print(f"{path}: {path.stat().st_size / 1e6:.2f} MB ({path.stat().st_size / n:,.0f} bytes per transition)")
    print("metadata:", {k: v for k, v in load_demonstrations(path)["metadata"].items() if k != "observation_space"})

    model = SACAE("CnnPolicy", env, buffer_size=20_000, learning_starts=0, seed=args.seed, verbose=0)
    print(f"replay buffer: {type(model.replay_buffer).__name__}, {add_demonstrations(model, [path])} transitions added")
    before, _ = evaluate_policy(model, eval_env, n_eval_episodes=1)
    pretrain(model, gradient_steps=args.pretrain_steps)
    after, _ = evaluate_policy(model, eval_env, n_eval_episodes=1)
    print(f"return before pretraining {before:.1f}, after {args.pretrain_steps} gradient steps {after:.1f}")

    model.learn(args.timesteps, progress_bar=False)
    final, _ = evaluate_policy(model, eval_env, n_eval_episodes=1)
    print(f"after {args.timesteps} more agent steps ({model._n_updates} gradient steps in all): return {final:.1f}")
    model.save(args.out / "sacae_from_demonstrations")
    env.close()
    eval_env.close()


if __name__ == "__main__":
    main()
