"""MultiInputPolicy: Dict observations, image keys through conv trunks, vector keys through an MLP trunk."""

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import DictReplayBuffer
from stable_baselines3.common.vec_env import DummyVecEnv, VecFrameStack

from sb3_sacae import SACAE
from sb3_sacae.torch_layers import ConvTrunk, MlpDecoder, MultiTrunk, PixelDecoder, shift_images
from tests.algorithm.test_gradient_routing import actor_backward
from tests.conftest import TEST_DEVICE, TINY, TinyPixelEnv

TINY_MULTI = dict(features_dim=8, n_filters=8, net_arch=[16, 16], mlp_encoder_arch=[16])


class TinyDictEnv(gym.Wrapper):
    """TinyPixelEnv's channel-last pixels plus two vector keys: the square's position and a distractor."""

    def __init__(self, vector_key: str = "proprio", discrete: bool = False, image: bool = True):
        super().__init__(TinyPixelEnv(shape=(32, 32, 3), channel_last=True))
        self.vector_key = vector_key
        self.image = image
        observation_spaces: dict[str, spaces.Space] = {
            vector_key: spaces.Box(-1.0, 1.0, (2,), np.float32),
            "noise": spaces.Box(-1.0, 1.0, (3,), np.float32),
        }
        if image:
            observation_spaces["pixels"] = self.env.observation_space
        self.observation_space = spaces.Dict(observation_spaces)
        self.discrete = discrete
        if discrete:
            self.action_space = spaces.Discrete(4)

    def _observation(self, pixels: np.ndarray) -> dict[str, np.ndarray]:
        observation = {
            self.vector_key: self.env.unwrapped.position.astype(np.float32),
            "noise": self.np_random.uniform(-1, 1, 3).astype(np.float32),
        }
        if self.image:
            observation["pixels"] = pixels
        return observation

    def reset(self, **kwargs: Any):
        pixels, info = self.env.reset(**kwargs)
        return self._observation(pixels), info

    def step(self, action):
        if self.discrete:
            action = np.array([[1, 0], [-1, 0], [0, 1], [0, -1]][int(action)], dtype=np.float32)
        pixels, reward, terminated, truncated, info = self.env.step(action)
        return self._observation(pixels), reward, terminated, truncated, info


def tiny_multi_model(env: gym.Env | None = None, **kwargs: Any) -> SACAE:
    policy_kwargs = {**TINY_MULTI, **kwargs.pop("policy_kwargs", {})}
    settings = {**TINY, "seed": 0, "device": TEST_DEVICE, "policy_kwargs": policy_kwargs, **kwargs}
    return SACAE("MultiInputPolicy", env if env is not None else TinyDictEnv(), **settings)


@pytest.fixture
def model() -> SACAE:
    model = tiny_multi_model(policy_kwargs=dict(decoder_keys=["pixels", "proprio"]))
    model.learn(32)
    return model


def _sample(model: SACAE) -> dict[str, th.Tensor]:
    return model.replay_buffer.sample(8).observations


def test_image_keys_go_through_convs_and_vector_keys_through_an_mlp(model):
    encoder = model.policy.encoder
    assert isinstance(encoder, MultiTrunk) and isinstance(model.replay_buffer, DictReplayBuffer)
    assert encoder.image_keys == ["pixels"] and sorted(encoder.vector_keys) == ["noise", "proprio"]
    assert isinstance(encoder.image_trunks["pixels"], ConvTrunk)
    assert encoder.n_flatten == encoder.image_trunks["pixels"].n_flatten + 16
    assert model.logger.name_to_value["train/ae_loss"] > 0


def test_trunk_is_tied_and_the_target_critic_owns_a_copy(model):
    assert model.actor.features_extractor.trunk is model.critic.features_extractor.trunk is model.policy.encoder
    assert model.critic_target.features_extractor.trunk is not model.policy.encoder


def test_actor_loss_does_not_reach_conv_or_mlp_trunk(model):
    observations = _sample(model)
    actor_backward(model, observations)
    assert all(p.grad is None for p in model.policy.encoder.parameters())
    assert all(p.grad is not None and p.grad.any() for p in model.actor.features_extractor.head.parameters())


def test_critic_and_reconstruction_losses_reach_conv_and_mlp_trunks(model):
    batch = model.replay_buffer.sample(8)
    trunks = [model.policy.encoder.image_trunks["pixels"], model.policy.encoder.vector_trunk]
    model.policy.zero_grad(set_to_none=True)
    q1, q2 = model.critic(batch.observations, batch.actions)
    (q1.pow(2).mean() + q2.pow(2).mean()).backward()
    assert all(any(p.grad is not None and p.grad.any() for p in trunk.parameters()) for trunk in trunks)
    model.policy.zero_grad(set_to_none=True)
    latent = model.critic.features_extractor(batch.observations)
    model.policy.decoder.reconstruction_loss(latent, batch.observations).backward()
    assert all(any(p.grad is not None and p.grad.any() for p in trunk.parameters()) for trunk in trunks)


def test_decoder_reconstructs_the_chosen_keys_only(model):
    observations = _sample(model)
    decoders = model.policy.decoder.decoders
    assert set(decoders) == {"pixels", "proprio"}
    assert isinstance(decoders["pixels"], PixelDecoder) and isinstance(decoders["proprio"], MlpDecoder)
    reconstruction = model.policy.decoder(model.critic.features_extractor(observations))
    assert set(reconstruction) == {"pixels", "proprio"}
    assert reconstruction["pixels"].shape == observations["pixels"].shape  # channel-first after VecTransposeImage
    # the loss reads the decoded keys only: changing the other key's target (not the latent) changes nothing
    changed = {**observations, "noise": observations["noise"] + 100.0}
    th.manual_seed(0)
    loss = model.policy.decoder.loss(reconstruction, observations)
    th.manual_seed(0)
    th.testing.assert_close(model.policy.decoder.loss(reconstruction, changed), loss, rtol=0, atol=0)
    th.manual_seed(0)
    bigger = model.policy.decoder.loss(reconstruction, {**observations, "proprio": observations["proprio"] + 100.0})
    assert bigger > loss + 1000


def test_by_default_only_image_keys_are_decoded():
    assert set(tiny_multi_model().policy.decoder.decoders) == {"pixels"}


def test_vector_only_dicts_decode_every_encoded_key():
    model = tiny_multi_model(TinyDictEnv(image=False))
    assert set(model.policy.decoder.decoders) == {"noise", "proprio"} and not model.policy.encoder.image_trunks
    model.learn(24)


def test_encoder_keys_subset_is_respected():
    model = tiny_multi_model(policy_kwargs=dict(encoder_keys=["pixels"]))
    encoder = model.policy.encoder
    assert encoder.vector_trunk is None and encoder.n_flatten == encoder.image_trunks["pixels"].n_flatten
    model.learn(24)
    observations = _sample(model)
    with th.no_grad():
        features = model.critic.features_extractor(observations)
        other = {**observations, "proprio": -observations["proprio"], "noise": observations["noise"] + 1.0}
        th.testing.assert_close(model.critic.features_extractor(other), features, rtol=0, atol=0)


def test_save_and_load_give_identical_deterministic_actions(model, tmp_path):
    model.save(tmp_path / "multi.zip")
    loaded = SACAE.load(tmp_path / "multi.zip", env=TinyDictEnv(), device=TEST_DEVICE)
    assert loaded.policy.decoder_keys == ["pixels", "proprio"] and loaded.policy.encoder_keys == model.policy.encoder_keys
    env = TinyDictEnv()
    observation, _ = env.reset(seed=3)
    for _ in range(3):
        action, _ = model.predict(observation, deterministic=True)
        np.testing.assert_array_equal(action, loaded.predict(observation, deterministic=True)[0])
        observation, *_ = env.step(action)
    for (name, a), b in zip(model.policy.state_dict().items(), loaded.policy.state_dict().values(), strict=True):
        th.testing.assert_close(a, b, rtol=0, atol=0, msg=name)
    loaded.learn(16)


def test_random_shift_moves_images_and_leaves_vectors_alone(model):
    observations = _sample(model)
    shifted = shift_images(observations, 4, model.observation_space)
    assert th.equal(shifted["proprio"], observations["proprio"]) and th.equal(shifted["noise"], observations["noise"])
    assert shifted["pixels"].shape == observations["pixels"].shape
    model.random_shift = 4
    model.learn(16)


def test_discrete_actions_with_dict_observations():
    model = tiny_multi_model(TinyDictEnv(discrete=True))
    model.learn(32)
    action, _ = model.predict(TinyDictEnv(discrete=True).reset(seed=0)[0], deterministic=True)
    assert model.action_space.contains(int(action))


def test_frame_stacked_dicts_use_sb3s_dict_buffer():
    env = VecFrameStack(DummyVecEnv([TinyDictEnv]), n_stack=2)
    model = tiny_multi_model(env)
    assert type(model.replay_buffer) is DictReplayBuffer
    model.learn(24)


def test_bad_key_choices_name_the_fix():
    with pytest.raises(ValueError, match="not keys of the observation space"):
        tiny_multi_model(policy_kwargs=dict(encoder_keys=["camera"]))
    with pytest.raises(ValueError, match="are not encoded"):
        tiny_multi_model(policy_kwargs=dict(encoder_keys=["pixels"], decoder_keys=["proprio"]))
    with pytest.raises(ValueError, match="decoder_update_interval=0"):
        tiny_multi_model(policy_kwargs=dict(decoder_keys=[]))


def test_predict_refuses_prenormalised_images(model):
    observation = TinyDictEnv().reset(seed=0)[0]
    with pytest.raises(ValueError, match="'pixels' observations of dtype float32"):
        model.predict({**observation, "pixels": observation["pixels"].astype(np.float32) / 255}, deterministic=True)
