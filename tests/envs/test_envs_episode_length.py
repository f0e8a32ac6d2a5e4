"""episode_length counts environment steps (gymnasium.make's max_episode_steps would count agent steps)."""

import gymnasium as gym
import pytest

import sb3_sacae  # noqa: F401  (registers the ids)


@pytest.mark.parametrize("episode_length, action_repeat", [(10, 2), (12, 3)])
def test_pendulum_episode_length_is_in_environment_steps(episode_length, action_repeat):
    env = gym.make("PendulumPixels-v1", image_size=32, episode_length=episode_length, action_repeat=action_repeat)
    env.reset(seed=0)
    agent_steps, truncated = 0, False
    while not truncated:
        _, _, terminated, truncated, info = env.step(env.action_space.sample())
        agent_steps += 1
        assert not terminated
    env.close()
    assert agent_steps == episode_length // action_repeat
    assert info["env_frames"] == episode_length
