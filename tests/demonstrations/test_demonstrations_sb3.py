"""add_demonstrations and pretrain are not SACAE-specific: SB3's SAC (Box actions, rescaled) and DQN (Discrete)."""

import gymnasium as gym
import numpy as np
from stable_baselines3 import DQN, SAC

from sb3_sacae.demonstrations import add_demonstrations, pretrain, record_demonstrations
from tests.conftest import TEST_DEVICE


def small() -> dict:
    """Fresh each time: SB3 writes into policy_kwargs."""
    return dict(
        buffer_size=500, learning_starts=0, batch_size=16, policy_kwargs=dict(net_arch=[16]), seed=0, device=TEST_DEVICE
    )


def test_sac_on_state_pendulum_stores_actions_scaled_to_unit_box():
    env = gym.make("Pendulum-v1", max_episode_steps=30)
    data = record_demonstrations(env, lambda obs: np.array([2.0 * np.sign(obs[2])]), 2, seed=0)
    model = SAC("MlpPolicy", env, **small())
    assert add_demonstrations(model, data) == 60
    np.testing.assert_array_equal(model.replay_buffer.actions[:60, 0], data["actions"] / 2)  # [-2, 2] -> [-1, 1]
    np.testing.assert_array_equal(model.replay_buffer.timeouts[:60, 0], data["truncated"])
    pretrain(model, gradient_steps=3)
    model.learn(5)
    assert model._n_updates == 3 + 5


def test_dqn_on_cartpole_stores_discrete_actions():
    env = gym.make("CartPole-v1")
    data = record_demonstrations(env, None, 2, seed=0)
    assert set(np.unique(data["actions"])) <= {0.0, 1.0} and data["terminated"].sum() == 2
    model = DQN("MlpPolicy", env, **small())
    add_demonstrations(model, data)
    n = len(data["actions"])
    np.testing.assert_array_equal(model.replay_buffer.actions[:n, 0, 0], data["actions"])
    np.testing.assert_array_equal(model.replay_buffer.dones[:n, 0], data["terminated"])
    pretrain(model, gradient_steps=2)
    assert model._n_updates == 2
