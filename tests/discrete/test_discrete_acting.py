"""Discrete actions end to end: warm-up and policy actions are valid indices, learn() runs on one or several envs,
frame-stacked envs get the frame-sharing buffer, and save/load round-trips the categorical policy exactly."""

import numpy as np
import pytest
import torch as th
from stable_baselines3.common.noise import NormalActionNoise
from stable_baselines3.common.vec_env import DummyVecEnv, VecFrameStack

from sb3_sacae import SACAE
from sb3_sacae.buffers import FrameStackReplayBuffer
from sb3_sacae.discrete import CategoricalActor
from tests.conftest import TEST_DEVICE, tiny_model
from tests.discrete.test_discrete_losses import DiscreteTinyPixelEnv, discrete_model


def _valid_indices(actions: np.ndarray, n: int = 3) -> bool:
    return np.issubdtype(actions.dtype, np.integer) and bool(((actions >= 0) & (actions < n)).all())


def test_learn_stores_valid_indices_from_warm_up_and_from_the_policy():
    model = discrete_model()  # 32 steps: 16 uniform warm-up steps, then the categorical policy
    stored = model.replay_buffer.actions[: model.replay_buffer.pos]
    assert stored.shape == (32, 1, 1)
    assert _valid_indices(stored) and len(np.unique(stored)) > 1
    assert model.logger.name_to_value["train/n_updates"] > 0


def test_predict_returns_valid_ints_for_single_and_batched_observations():
    model = discrete_model()
    obs, _ = DiscreteTinyPixelEnv().reset(seed=3)
    for deterministic in (True, False):
        action, _ = model.predict(obs, deterministic=deterministic)
        assert action.shape == () and _valid_indices(action)
        actions, _ = model.predict(np.stack([obs] * 5), deterministic=deterministic)
        assert actions.shape == (5,) and _valid_indices(actions)
    env = DiscreteTinyPixelEnv()
    env.step(model.predict(obs)[0])  # what a user loop does


def test_deterministic_action_is_the_most_probable_one():
    model = discrete_model()
    obs = th.as_tensor(np.stack([DiscreteTinyPixelEnv().reset(seed=s)[0] for s in range(4)]), device=model.device)
    with th.no_grad():
        log_probs = model.actor.log_probs_from_features(model.actor.extract_features(obs, model.actor.features_extractor))
    assert th.equal(model.actor(obs, deterministic=True), log_probs.argmax(dim=1))
    th.testing.assert_close(log_probs.exp().sum(dim=1), th.ones(4, device=model.device))


def test_learns_with_several_envs_and_frame_stacking():
    env = VecFrameStack(DummyVecEnv([DiscreteTinyPixelEnv, DiscreteTinyPixelEnv]), n_stack=2, channels_order="first")
    model = tiny_model(env)
    assert isinstance(model.actor, CategoricalActor)
    assert isinstance(model.replay_buffer, FrameStackReplayBuffer) and model.replay_buffer.frame_stack == 2
    model.learn(40)
    assert _valid_indices(model.replay_buffer.actions[: model.replay_buffer.pos])


def test_autoencoder_off_and_critic_layer_norm_work_with_discrete_actions():
    model = tiny_model(
        DiscreteTinyPixelEnv(),
        decoder_update_interval=0,
        policy_kwargs=dict(features_dim=8, n_filters=8, net_arch=[16, 16], critic_layer_norm=True),
    )
    assert model.policy.decoder is None
    assert sum(isinstance(layer, th.nn.LayerNorm) for layer in model.critic.q_networks[0]) == 2
    model.learn(24)


def test_action_noise_and_gsde_are_refused_for_discrete_actions():
    with pytest.raises(ValueError, match="action_noise needs continuous"):
        tiny_model(DiscreteTinyPixelEnv(), action_noise=NormalActionNoise(np.zeros(1), np.ones(1)))
    with pytest.raises(ValueError, match="gSDE"):
        tiny_model(DiscreteTinyPixelEnv(), use_sde=True)


def test_save_load_round_trip_gives_identical_deterministic_predictions(tmp_path):
    model = discrete_model()
    model.save(tmp_path / "model.zip")
    loaded = SACAE.load(tmp_path / "model.zip", env=DiscreteTinyPixelEnv(), device=TEST_DEVICE)  # the safe loader
    assert isinstance(loaded.actor, CategoricalActor)
    assert loaded.target_entropy == pytest.approx(model.target_entropy) == pytest.approx(0.98 * np.log(3))
    for key, value in model.policy.state_dict().items():
        th.testing.assert_close(loaded.policy.state_dict()[key], value, rtol=0, atol=0)
    obs = np.stack([DiscreteTinyPixelEnv().reset(seed=s)[0] for s in range(16)])
    np.testing.assert_array_equal(loaded.predict(obs, deterministic=True)[0], model.predict(obs, deterministic=True)[0])
    loaded.learn(20)  # training continues from the loaded state


def test_replay_buffer_round_trips_with_discrete_actions(tmp_path):
    model = discrete_model()
    model.save_replay_buffer(tmp_path / "buffer")
    loaded = tiny_model(DiscreteTinyPixelEnv())
    loaded.load_replay_buffer(tmp_path / "buffer")
    np.testing.assert_array_equal(loaded.replay_buffer.actions, model.replay_buffer.actions)
