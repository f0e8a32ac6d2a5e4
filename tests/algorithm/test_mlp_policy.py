"""MlpPolicy: SAC-AE on state vectors (MLP trunk and decoder), with the gradient routing of the pixel policy."""

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from torch.nn import functional as F

from sb3_sacae import SACAE
from sb3_sacae.torch_layers import MlpDecoder, MlpTrunk
from tests.algorithm.test_gradient_routing import actor_backward
from tests.conftest import TEST_DEVICE

TINY_MLP = dict(features_dim=8, net_arch=[16, 16], mlp_encoder_arch=[16, 16])


def tiny_mlp_model(env: gym.Env | str = "Pendulum-v1", **kwargs) -> SACAE:
    settings = dict(batch_size=8, buffer_size=200, learning_starts=16, policy_kwargs=TINY_MLP, seed=0, device=TEST_DEVICE)
    return SACAE("MlpPolicy", env, **{**settings, **kwargs})


@pytest.fixture
def model() -> SACAE:
    model = tiny_mlp_model()
    model.learn(32)
    return model


def test_pendulum_state_learns_with_an_mlp_autoencoder(model):
    assert isinstance(model.policy.encoder, MlpTrunk) and isinstance(model.policy.decoder, MlpDecoder)
    assert model.logger.name_to_value["train/ae_loss"] > 0
    assert np.isfinite(model.logger.name_to_value["train/critic_loss"])


def test_trunk_is_tied_and_the_target_critic_owns_a_copy(model):
    assert model.actor.features_extractor.trunk is model.policy.encoder
    assert model.critic.features_extractor.trunk is model.policy.encoder
    assert model.critic_target.features_extractor.trunk is not model.policy.encoder
    assert model.actor.features_extractor.head is not model.critic.features_extractor.head


def test_actor_loss_does_not_reach_the_shared_trunk(model):
    observations = model.replay_buffer.sample(8).observations
    actor_backward(model, observations)
    assert all(p.grad is None for p in model.policy.encoder.parameters())
    assert all(p.grad is not None and p.grad.any() for p in model.actor.features_extractor.head.parameters())


def test_critic_and_reconstruction_losses_reach_the_shared_trunk(model):
    batch = model.replay_buffer.sample(8)
    model.policy.zero_grad(set_to_none=True)
    q1, q2 = model.critic(batch.observations, batch.actions)
    (q1.pow(2).mean() + q2.pow(2).mean()).backward()
    assert all(p.grad is not None and p.grad.any() for p in model.policy.encoder.parameters())
    model.policy.zero_grad(set_to_none=True)
    latent = model.critic.features_extractor(batch.observations)
    model.policy.decoder.reconstruction_loss(latent, batch.observations).backward()
    assert all(p.grad is not None and p.grad.any() for p in model.policy.encoder.parameters())
    assert all(p.grad is None for p in model.actor.parameters() if all(p is not q for q in model.policy.encoder.parameters()))


def test_actor_optimizer_does_not_hold_the_shared_trunk(model):
    held = {id(p) for group in model.actor.optimizer.param_groups for p in group["params"]}
    assert not {id(p) for p in model.policy.encoder.parameters()} & held


def test_reconstruction_target_is_the_state_itself(model):
    observations = model.replay_buffer.sample(8).observations
    reconstruction = model.policy.decoder(model.critic.features_extractor(observations))
    assert reconstruction.shape == observations.shape
    loss = model.policy.decoder.loss(reconstruction, observations)
    th.testing.assert_close(loss, F.mse_loss(reconstruction, observations), rtol=0, atol=0)  # no 5-bit noise


def test_save_and_load_give_identical_deterministic_actions(model, tmp_path):
    model.save(tmp_path / "mlp.zip")
    loaded = SACAE.load(tmp_path / "mlp.zip", device=TEST_DEVICE)
    assert type(loaded.policy).__name__ == "MlpPolicy" and loaded.policy.mlp_encoder_arch == [16, 16]
    observations = np.random.default_rng(0).uniform(-1, 1, (5, 3)).astype(np.float32)
    np.testing.assert_array_equal(
        model.predict(observations, deterministic=True)[0], loaded.predict(observations, deterministic=True)[0]
    )
    for (name, a), b in zip(model.policy.state_dict().items(), loaded.policy.state_dict().values(), strict=True):
        th.testing.assert_close(a, b, rtol=0, atol=0, msg=name)


def test_empty_mlp_arch_feeds_the_state_to_the_heads():
    model = tiny_mlp_model(policy_kwargs={**TINY_MLP, "mlp_encoder_arch": []})
    assert model.policy.encoder.n_flatten == 3 and not list(model.policy.encoder.parameters())
    model.learn(24)


def test_discrete_actions_on_cartpole_state():
    model = tiny_mlp_model("CartPole-v1")
    model.learn(32)
    assert "train/ae_loss" in model.logger.name_to_value
    action, _ = model.predict(np.zeros(4, dtype=np.float32), deterministic=True)
    assert model.action_space.contains(int(action))


def test_random_shift_is_refused_for_state_observations():
    with pytest.raises(ValueError, match="random_shift=0"):
        tiny_mlp_model(random_shift=4)


def test_autoencoder_off_builds_no_decoder():
    model = tiny_mlp_model(decoder_update_interval=0)
    assert model.policy.decoder is None
    model.learn(24)


def test_bad_mlp_arch_is_refused():
    with pytest.raises(ValueError, match="mlp_encoder_arch"):
        tiny_mlp_model(policy_kwargs={**TINY_MLP, "mlp_encoder_arch": [0]})


def test_bf16_autocast_leaves_the_state_path_in_float32():
    model = tiny_mlp_model(bf16_autocast=True)
    model.learn(32)
    observations = model.replay_buffer.sample(4).observations
    prepared = model.policy.trunk.preprocess(observations, th.bfloat16)
    features = model.policy.trunk.features(prepared)
    assert prepared.dtype == features.dtype == th.float32
    th.testing.assert_close(features, model.policy.encoder(observations), rtol=0, atol=0)


@pytest.mark.parametrize("normalize_images", [True, False])
def test_uint8_images_read_as_vectors_are_divided_by_255_as_sb3_does(normalize_images):
    from stable_baselines3.common.preprocessing import preprocess_obs

    from tests.conftest import TinyPixelEnv

    env = TinyPixelEnv(shape=(8, 8, 3), channel_last=True)
    model = tiny_mlp_model(env, policy_kwargs={**TINY_MLP, "normalize_images": normalize_images})
    observations = th.as_tensor(np.stack([env.reset(seed=seed)[0] for seed in range(4)]), device=model.device)
    # what SB3's own MlpPolicy feeds its MLP
    expected = preprocess_obs(observations, env.observation_space, normalize_images=normalize_images).flatten(1)
    policy = model.policy
    th.testing.assert_close(policy.trunk.preprocess(observations), expected)
    # the decoder reconstructs what the trunk reads
    reconstruction = policy.decoder.reconstruct(policy.critic.features_extractor(observations))
    th.testing.assert_close(policy.decoder.loss(reconstruction, observations), F.mse_loss(reconstruction, expected))
    model.learn(24)
    assert model.logger.name_to_value["train/ae_loss"] < (1.0 if normalize_images else float("inf"))
