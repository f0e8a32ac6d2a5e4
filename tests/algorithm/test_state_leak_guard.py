"""A "from pixels" config that also encodes the simulator state warns, and explicit encoder_keys silence it."""

import warnings

import gymnasium as gym
import pytest

from sb3_sacae import SACAE
from tests.algorithm.test_multi_input_policy import TinyDictEnv, tiny_multi_model
from tests.conftest import TEST_DEVICE


@pytest.mark.parametrize("key", ["state", "position", "velocity", "qpos", "qvel", "observation", "joint_qpos"])
def test_pixels_next_to_a_state_like_key_warn(key):
    with pytest.warns(UserWarning, match=r"looks like the simulator state.*encoder_keys=\['pixels'\]"):
        model = tiny_multi_model(TinyDictEnv(vector_key=key))
    assert key in model.policy.encoder_keys  # a warning, not a refusal: the default still encodes every key


@pytest.mark.parametrize("encoder_keys", [["pixels"], ["pixels", "state"], ["noise", "state", "pixels"]])
def test_explicit_encoder_keys_silence_the_warning(encoder_keys):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = tiny_multi_model(TinyDictEnv(vector_key="state"), policy_kwargs=dict(encoder_keys=encoder_keys))
    assert set(model.policy.encoder_keys) == set(encoder_keys)


def test_proprioception_names_and_state_only_dicts_do_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tiny_multi_model(TinyDictEnv(vector_key="proprio"))
        tiny_multi_model(TinyDictEnv(vector_key="state", image=False))  # no pixels: a state config anyway


def test_render_wrapper_that_keeps_the_state_warns():
    env = gym.make("Pendulum-v1", render_mode="rgb_array")
    env.unwrapped.screen_dim = 32  # small frames, as sb3_sacae.envs does
    env = gym.wrappers.AddRenderObservation(env, render_only=False)  # {"pixels": ..., "state": ...}
    with pytest.warns(UserWarning, match=r"\['state'\]"):
        tiny_multi_model(env)


def test_a_loaded_model_that_reads_the_state_warns_again(tmp_path):
    # Whoever evaluates a saved "pixels" model learns that it reads the state; explicit keys are saved and stay silent
    with pytest.warns(UserWarning):
        tiny_multi_model(TinyDictEnv(vector_key="state")).save(tmp_path / "leaky.zip")
    with pytest.warns(UserWarning, match="looks like the simulator state"):
        SACAE.load(tmp_path / "leaky.zip", env=TinyDictEnv(vector_key="state"), device=TEST_DEVICE)
    tiny_multi_model(TinyDictEnv(vector_key="state"), policy_kwargs=dict(encoder_keys=["pixels"])).save(tmp_path / "ok.zip")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = SACAE.load(tmp_path / "ok.zip", env=TinyDictEnv(vector_key="state"), device=TEST_DEVICE)
    assert loaded.policy.encoder_keys == ["pixels"]
