"""Recording episodes with a trained model, a scripted policy or random actions, from a Gymnasium env or a VecEnv."""

import numpy as np
import pytest
from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

from sb3_sacae.demonstrations import load_demonstrations, record_demonstrations
from tests.conftest import TinyPixelEnv, tiny_model


def test_recorded_episodes_are_what_the_env_returned(tmp_path):
    env = TinyPixelEnv(episode_length=6)
    data = record_demonstrations(env, None, n_episodes=2, path=tmp_path / "random.npz", seed=3)
    assert len(data["observations"]) == 12
    np.testing.assert_array_equal(data["episode_starts"], np.arange(12) % 6 == 0)
    np.testing.assert_array_equal(data["truncated"], np.arange(12) % 6 == 5)
    assert not data["terminated"].any()
    # Replay the actions in the same seeded env: same observations, rewards and final observations
    obs, _ = env.reset(seed=3)
    for t in range(6):
        np.testing.assert_array_equal(data["observations"][t], obs)
        obs, reward, _, _, _ = env.step(data["actions"][t])
        np.testing.assert_array_equal(data["next_observations"][t], obs)
        assert data["rewards"][t] == np.float32(reward)
    saved = load_demonstrations(tmp_path / "random.npz")
    for key in ("observations", "actions", "next_observations", "truncated"):
        np.testing.assert_array_equal(saved[key], data[key])


def test_same_seed_same_recording():
    first = record_demonstrations(TinyPixelEnv(), None, 2, seed=1)
    second = record_demonstrations(TinyPixelEnv(), None, 2, seed=1)
    np.testing.assert_array_equal(first["actions"], second["actions"])
    np.testing.assert_array_equal(first["observations"], second["observations"])


def test_a_trained_model_acts_through_predict():
    model = tiny_model()
    data = record_demonstrations(TinyPixelEnv(episode_length=5), model, 1, deterministic=True, seed=0)
    expected, _ = model.predict(data["observations"], deterministic=True)
    np.testing.assert_allclose(data["actions"], expected, atol=1e-6)


def test_a_scripted_policy_is_called_per_observation_and_clipped():
    seen = []

    def expert(obs):
        seen.append(obs.shape)
        return np.array([3.0, -0.5])

    data = record_demonstrations(TinyPixelEnv(episode_length=4), expert, 1)
    assert seen == [(3, 32, 32)] * 4
    np.testing.assert_array_equal(data["actions"], np.tile(np.float32([1.0, -0.5]), (4, 1)))


def test_a_vec_env_records_only_complete_episodes():
    venv = DummyVecEnv([lambda: TinyPixelEnv(episode_length=4), lambda: TinyPixelEnv(episode_length=6)])
    data = record_demonstrations(venv, None, n_episodes=3, seed=0)
    starts = np.flatnonzero(data["episode_starts"])
    lengths = np.diff(np.append(starts, len(data["observations"])))
    assert sorted(lengths.tolist()) == [4, 4, 6]
    assert data["truncated"].sum() == 3 and data["truncated"][-1]


def test_vec_normalize_is_refused():
    venv = VecNormalize(DummyVecEnv([TinyPixelEnv]), norm_obs=False)
    with pytest.raises(ValueError, match="without VecNormalize"):
        record_demonstrations(venv, None, 1)


def test_the_env_id_and_action_repeat_are_kept(tmp_path):
    import gymnasium as gym

    env = gym.make("PendulumPixels-v1", image_size=32, episode_length=12)
    data = record_demonstrations(env, None, 1, path=tmp_path / "p.npz", seed=0)
    env.close()
    meta = data["metadata"]
    assert (meta["env_id"], meta["action_repeat"], meta["frame_stack"]) == ("PendulumPixels-v1", 2, 3)
    assert data["observations"].shape[1:] == (9, 32, 32)
