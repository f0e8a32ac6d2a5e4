"""Bad input is refused before training starts, with an error that names the fix."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

from sb3_sacae import SACAE
from tests.conftest import TEST_DEVICE, TINY, TinyPixelEnv, tiny_model


class _SpaceEnv(gym.Env):
    def __init__(self, observation_space, action_space):
        self.observation_space, self.action_space = observation_space, action_space

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return self.observation_space.sample(), {}

    def step(self, action):
        return self.observation_space.sample(), 0.0, False, False, {}


BOX_ACTION = spaces.Box(-1, 1, (2,), np.float32)


def test_vector_observations_are_refused_with_cnn_policy():
    with pytest.raises(ValueError, match="image observations"):
        SACAE("CnnPolicy", _SpaceEnv(spaces.Box(-1, 1, (5,), np.float32), BOX_ACTION), **TINY)


def test_too_small_images_name_the_minimum_and_the_fix():
    with pytest.raises(ValueError, match=r"at least 15x15 pixels.*ResizeObservation"):
        tiny_model(TinyPixelEnv((3, 12, 12)))


@pytest.mark.parametrize(
    "action_space",
    [spaces.MultiDiscrete([3, 2]), spaces.MultiBinary(2), spaces.Tuple((spaces.Discrete(2), spaces.Discrete(3)))],
    ids=["MultiDiscrete", "MultiBinary", "Tuple"],
)
def test_action_spaces_other_than_box_and_discrete_are_refused(action_space):
    env = _SpaceEnv(spaces.Box(0, 255, (3, 32, 32), np.uint8), action_space)
    with pytest.raises(ValueError, match=r"Box \(continuous SAC\) or gymnasium.spaces.Discrete.*one Discrete space"):
        SACAE("CnnPolicy", env, **TINY)


@pytest.mark.parametrize("action_space", [spaces.Discrete(3, start=1), spaces.Discrete(1)], ids=["start=1", "n=1"])
def test_discrete_actions_must_start_at_zero_and_offer_a_choice(action_space):
    env = _SpaceEnv(spaces.Box(0, 255, (3, 32, 32), np.uint8), action_space)
    with pytest.raises(ValueError, match="at least 2 actions starting at 0"):
        SACAE("CnnPolicy", env, **TINY)


def test_float_images_outside_0_255_need_normalize_images_false():
    env = _SpaceEnv(spaces.Box(-1.0, 1.0, (3, 32, 32), np.float32), BOX_ACTION)
    with pytest.raises(ValueError, match="normalize_images=False"):
        SACAE("CnnPolicy", env, **TINY)
    model = SACAE("CnnPolicy", env, **{**TINY, "policy_kwargs": {**TINY["policy_kwargs"], "normalize_images": False}})
    model.learn(20)


@pytest.mark.parametrize("policy", ["CnnPolicy", "MultiInputPolicy"])
def test_float_images_in_0_1_need_normalize_images_false(policy):
    image = spaces.Box(0.0, 1.0, (3, 32, 32), np.float32)
    space = image if policy == "CnnPolicy" else spaces.Dict({"pixels": image})
    env = _SpaceEnv(space, BOX_ACTION)
    with pytest.raises(ValueError, match=r"already normalised.*normalize_images=False"):
        SACAE(policy, env, **TINY)
    model = SACAE(policy, env, **{**TINY, "policy_kwargs": {**TINY["policy_kwargs"], "normalize_images": False}})
    model.learn(20)


def test_negative_intervals_are_refused():
    with pytest.raises(ValueError, match="decoder_update_interval"):
        tiny_model(decoder_update_interval=-1)
    with pytest.raises(ValueError, match="actor_update_interval"):
        tiny_model(actor_update_interval=0)


def test_predict_refuses_prenormalised_floats(model, env):
    obs, _ = env.reset(seed=0)
    model.predict(obs)
    with pytest.raises(ValueError, match="raw frames"):
        model.predict(obs.astype(np.float32) / 255.0)


def test_algorithm_arguments_in_policy_kwargs_are_refused():
    with pytest.raises(ValueError, match="SACAE arguments"):
        tiny_model(policy_kwargs={**TINY["policy_kwargs"], "encoder_lr": 1e-4})


def test_empty_networks_are_refused():
    with pytest.raises(ValueError, match="n_conv_layers"):
        tiny_model(policy_kwargs={**TINY["policy_kwargs"], "n_conv_layers": 0})
    with pytest.raises(ValueError, match="features_dim"):
        tiny_model(policy_kwargs={**TINY["policy_kwargs"], "features_dim": 0})


def test_predict_refuses_a_wrong_layout_and_accepts_the_transposed_one(model, env):
    obs, _ = env.reset(seed=0)  # (3, 32, 32)
    action, _ = model.predict(obs, deterministic=True)
    transposed, _ = model.predict(np.moveaxis(obs, 0, -1), deterministic=True)  # channel-last: same image
    np.testing.assert_array_equal(action, transposed)
    with pytest.raises(ValueError, match="Unexpected observation shape"):
        model.predict(obs[:, :16, :])


def test_policy_only_load_is_refused_unless_trusted(model, tmp_path):
    from sb3_sacae import SACAEPolicy

    model.policy.save(tmp_path / "policy.pth")
    with pytest.raises(ValueError, match="trust_remote_code=True"):
        SACAEPolicy.load(tmp_path / "policy.pth")
    trusted = SACAEPolicy.load(tmp_path / "policy.pth", device=TEST_DEVICE, trust_remote_code=True)
    obs = model.observation_space.sample()
    np.testing.assert_array_equal(trusted.predict(obs, deterministic=True)[0], model.predict(obs, deterministic=True)[0])


@pytest.mark.parametrize(
    "arguments, message",
    [
        (dict(actor_update_interval=1.5), "actor_update_interval must be a positive whole number"),
        (dict(target_update_interval=True), "target_update_interval must be a positive whole number"),
        (dict(decoder_update_interval=None), "decoder_update_interval must be a whole number"),
        (dict(random_shift=2.5), "random_shift is a padding in whole pixels"),
        (dict(encoder_tau=2.0), r"encoder_tau is a Polyak coefficient in \[0, 1\]"),
        (dict(encoder_tau=-1.0), r"encoder_tau is a Polyak coefficient in \[0, 1\]"),
        (dict(gamma=-4.0), r"gamma must be in \[0, 1\] \(paper: 0.99\), got -4.0"),
        (dict(tau=1.5), r"tau must be in \[0, 1\]"),
        (dict(decoder_lr=lambda progress: 1e-3 * progress), "decoder_lr must be a positive number"),
        (dict(encoder_lr=0.0), "encoder_lr must be a positive number"),
        (dict(decoder_weight_lambda=-1e-7), "decoder_weight_lambda must be a number >= 0"),
        (dict(ent_coef_betas=(0.5,)), r"ent_coef_betas must be Adam's two betas in \[0, 1\)"),
        (dict(ent_coef_betas=0.9), r"ent_coef_betas must be Adam's two betas"),
        (dict(bf16_autocast="no"), "bf16_autocast must be True or False, got 'no'"),
        (dict(fast_kernels=None), "fast_kernels must be True or False"),
        (dict(reuse_critic_features=1.0), "reuse_critic_features must be True or False"),
    ],
    ids=lambda value: next(iter(value)) if isinstance(value, dict) else None,
)
def test_sacae_arguments_of_the_wrong_kind_or_range_are_refused_by_name(arguments, message):
    with pytest.raises(ValueError, match=message):
        tiny_model(**arguments)


def test_numbers_of_other_python_and_numpy_types_are_accepted(tmp_path):
    # as YAML files, Optuna and numpy code may give them
    model = tiny_model(
        actor_update_interval=2.0,
        decoder_update_interval=np.int64(1),
        ent_coef_betas=np.array([0.5, 0.999]),
        encoder_lr=np.float32(1e-3),
        fast_kernels=1,
    )
    assert model.actor_update_interval == 2 and model.decoder_update_interval == 1 and model.ent_coef_betas == (0.5, 0.999)
    assert type(model.encoder_lr) is float and model.fast_kernels is True
    model.learn(20)
    model.save(tmp_path / "model.zip")  # numpy scalars would reach the optimizers' state, which safe loading refuses
    # load()'s keywords reach the model without the constructor: the same Python numbers
    loaded = SACAE.load(tmp_path / "model.zip", device=TEST_DEVICE, ent_coef_lr=np.float64(1e-4), encoder_tau=np.float32(0.1))
    assert type(loaded.ent_coef_lr) is float and type(loaded.encoder_tau) is float
    loaded.save(tmp_path / "again.zip")
    SACAE.load(tmp_path / "again.zip", device=TEST_DEVICE)
