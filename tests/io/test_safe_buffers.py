"""Replay buffer files are checked against the model before anything is loaded into it."""

import pickle
import re

import numpy as np
import pytest
from gymnasium import spaces
from stable_baselines3.common.vec_env import DummyVecEnv

from sb3_sacae.buffers import FrameStackReplayBuffer
from sb3_sacae.serialization import UnsafeFileError
from tests.conftest import TinyPixelEnv, tiny_model


@pytest.fixture
def buffer_file(tmp_path):
    model = tiny_model()
    model.learn(20)
    model.save_replay_buffer(tmp_path / "buffer")
    return tmp_path / "buffer.npz"


def _assert_untouched(model) -> None:
    assert model.replay_buffer.pos == 0 and not model.replay_buffer.full


def test_buffer_class_mismatch_is_refused(buffer_file):
    model = tiny_model(replay_buffer_class=FrameStackReplayBuffer)
    with pytest.raises(ValueError, match="buffer class"):
        model.load_replay_buffer(buffer_file)
    _assert_untouched(model)


def test_observation_space_mismatch_is_refused(buffer_file):
    model = tiny_model(TinyPixelEnv(shape=(3, 36, 36)))
    with pytest.raises(ValueError, match="observation space"):
        model.load_replay_buffer(buffer_file)
    _assert_untouched(model)


def test_n_envs_mismatch_is_refused(buffer_file):
    model = tiny_model(DummyVecEnv([TinyPixelEnv, TinyPixelEnv]), buffer_size=400)
    with pytest.raises(ValueError, match="number of envs"):
        model.load_replay_buffer(buffer_file)
    _assert_untouched(model)


def test_buffer_size_mismatch_is_refused_by_name_with_the_fix(buffer_file):
    model = tiny_model(buffer_size=100)
    with pytest.raises(ValueError, match=r"'buffer_size' is 200 in the file but 100 in the model") as error:
        model.load_replay_buffer(buffer_file)
    assert "SACAE.load(path, buffer_size=200)" in str(error.value) and "number of envs is" not in str(error.value)
    _assert_untouched(model)


def test_buffer_size_mismatch_is_told_over_all_envs(tmp_path):
    two_envs = DummyVecEnv([TinyPixelEnv, TinyPixelEnv])
    saved = tiny_model(two_envs, buffer_size=400)
    saved.learn(20)
    saved.save_replay_buffer(tmp_path / "buffer")
    model = tiny_model(two_envs, buffer_size=200)
    with pytest.raises(ValueError, match=r"'buffer_size' is 400 in the file but 200 in the model.*buffer_size=400"):
        model.load_replay_buffer(tmp_path / "buffer.npz")
    tiny_model(two_envs, buffer_size=400).load_replay_buffer(tmp_path / "buffer.npz")  # what the message says works


def test_an_array_mismatch_names_the_file(tmp_path):
    stacked = dict(replay_buffer_class=FrameStackReplayBuffer, replay_buffer_kwargs=dict(frame_stack=1))
    saved = tiny_model(**stacked)
    saved.learn(20)
    saved.save_replay_buffer(tmp_path / "buffer")
    # the same class, spaces, envs and size, another frame margin: only the frames' array differs
    model = tiny_model(replay_buffer_class=FrameStackReplayBuffer, replay_buffer_kwargs=dict(frame_stack=1, frame_margin=0.5))
    with pytest.raises(ValueError, match=re.escape(f"the replay buffer {tmp_path / 'buffer.npz'}")) as error:
        model.load_replay_buffer(tmp_path / "buffer.npz")
    assert "number of envs" not in str(error.value)
    _assert_untouched(model)


def test_observation_dtype_mismatch_is_refused(buffer_file):
    class FloatPixels(TinyPixelEnv):
        def __init__(self):
            super().__init__()
            self.observation_space = spaces.Box(0, 255, self.shape, np.float32)

    model = tiny_model(FloatPixels())
    with pytest.raises(ValueError, match="observation space"):
        model.load_replay_buffer(buffer_file)
    _assert_untouched(model)


def test_sb3_pickle_buffers_load_only_when_trusted(tmp_path):
    model = tiny_model()
    model.learn(20)
    with open(tmp_path / "sb3.pkl", "wb") as file:
        pickle.dump(model.replay_buffer, file)
    other = tiny_model()
    with pytest.raises(UnsafeFileError):
        other.load_replay_buffer(tmp_path / "sb3.pkl")
    other.load_replay_buffer(tmp_path / "sb3.pkl", trust_remote_code=True)
    np.testing.assert_array_equal(other.replay_buffer.observations, model.replay_buffer.observations)
    # and saving converts it to the pickle-free format
    other.save_replay_buffer(tmp_path / "converted")
    assert (tmp_path / "converted.npz").read_bytes()[:2] == b"PK"


def test_buffers_holding_objects_are_not_saved_silently(tmp_path):
    model = tiny_model()
    model.replay_buffer.some_callback = print
    with pytest.raises(TypeError, match="some_callback"):
        model.save_replay_buffer(tmp_path / "buffer")
    assert not (tmp_path / "buffer.npz").exists()
