"""
3 stacked 84x84 RGB frames cost at most 21.5 kB per transition: 1,000,000 transitions fit in 24 GiB. A replay buffer
that cannot fit in memory is refused when the model is built, with the bytes and the options, and when it is loaded
(the file sets its size), naming the load() argument that makes it fit.
"""

import numpy as np
import pytest
from gymnasium import spaces

from sb3_sacae import SACAE
from sb3_sacae.buffers import FrameStackReplayBuffer
from sb3_sacae.io import FileLimitError
from tests.conftest import TEST_DEVICE, TinyPixelEnv, frame_stacked_env, tiny_model

FRAME_BYTES = 3 * 84 * 84


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("n_envs", [1, 4])
def test_bytes_per_transition_of_3_stacked_84x84_rgb_frames(channels_last, n_envs):
    shape = (84, 84, 9) if channels_last else (9, 84, 84)
    buffer_size = 100_000  # arrays are mapped lazily: nothing of this is touched
    buffer = FrameStackReplayBuffer(
        buffer_size,
        spaces.Box(0, 255, shape, dtype=np.uint8),
        # 6 dims as cheetah_run and walker_walk
        spaces.Box(-1, 1, (6,), dtype=np.float32),
        device="cpu",
        n_envs=n_envs,
        frame_stack=3,
    )
    assert buffer.frames.shape[1:] == ((84, 84, 3) if channels_last else (3, 84, 84))
    bytes_per_transition = buffer.nbytes / buffer_size
    assert FRAME_BYTES < bytes_per_transition <= 21_500
    # Fixed costs shrink per transition as the buffer grows
    assert 1_000_000 * bytes_per_transition < 24 * 2**30


def test_oversized_sb3_buffer_is_refused_before_allocation():
    # 3x32x32 obs twice: ~6 kB per transition; 10^9 transitions is ~6 TB
    with pytest.raises(MemoryError, match=r"buffer_size=1_000_000_000.*smaller buffer_size"):
        tiny_model(buffer_size=1_000_000_000)


def test_opt_in_builds_the_buffer_with_a_warning(monkeypatch):
    monkeypatch.setattr("sb3_sacae.buffers.available_memory", lambda: 1000)
    with pytest.raises(MemoryError):
        tiny_model(buffer_size=500)
    with pytest.warns(UserWarning, match="available"):
        model = tiny_model(buffer_size=500, replay_buffer_kwargs=dict(allow_oversize=True))
    assert model.replay_buffer.buffer_size == 500


def test_loading_a_model_builds_its_buffer_beyond_the_free_memory_with_a_warning(tmp_path, monkeypatch):
    model = tiny_model(TinyPixelEnv(), buffer_size=500)
    model.save(tmp_path / "model.zip")
    # Pretend the loading machine is busy, with almost no memory free: a model or a checkpoint must still load
    monkeypatch.setattr("sb3_sacae.buffers.available_memory", lambda: 1)
    with pytest.warns(UserWarning, match="are available"):
        loaded = SACAE.load(tmp_path / "model.zip", env=TinyPixelEnv(), device=TEST_DEVICE)
    assert loaded.replay_buffer.buffer_size == 500


def test_a_loaded_buffer_above_the_array_limit_is_refused_naming_buffer_size(tmp_path, monkeypatch):
    model = tiny_model(TinyPixelEnv(), buffer_size=500)
    model.save(tmp_path / "model.zip")
    monkeypatch.setenv("SB3_SACAE_MAX_ARRAY_BYTES", str(100 * 6_164))  # about 100 transitions of this env
    with pytest.raises(FileLimitError, match=r"buffer_size=500.*SACAE\.load\(path, buffer_size=N\)"):
        SACAE.load(tmp_path / "model.zip", env=TinyPixelEnv(), device=TEST_DEVICE)
    # Loading to watch a model works with a buffer within the limit
    loaded = SACAE.load(tmp_path / "model.zip", env=TinyPixelEnv(), device=TEST_DEVICE, buffer_size=1)
    assert loaded.replay_buffer is not None and loaded.replay_buffer.buffer_size == 1


@pytest.mark.parametrize("buffer_size", [10**15, 10**17, 10**19])
def test_a_loaded_frame_stack_buffer_no_machine_can_hold_is_refused(tmp_path, buffer_size):
    env = frame_stacked_env()
    model = tiny_model(env, buffer_size=500)
    assert isinstance(model.replay_buffer, FrameStackReplayBuffer)
    model.buffer_size = buffer_size  # as a hostile file would set it (numpy itself refuses the largest with ValueError)
    model.save(tmp_path / "model.zip")
    with pytest.raises(
        FileLimitError, match=rf"buffer_size={buffer_size:_}.*SB3_SACAE_MAX_ARRAY_BYTES.*SACAE\.load\(path, buffer_size=N\)"
    ):
        SACAE.load(tmp_path / "model.zip", env=env, device=TEST_DEVICE)


def test_a_loaded_buffer_numpy_cannot_allocate_is_refused(tmp_path, monkeypatch):
    env = frame_stacked_env()
    model = tiny_model(env, buffer_size=500)
    model.save(tmp_path / "model.zip")

    def refuse(*args, **kwargs):  # what numpy raises for arrays beyond what the machine allows (overcommit off)
        raise MemoryError("Unable to allocate 57.2 GiB for an array")

    monkeypatch.setattr(FrameStackReplayBuffer, "__init__", refuse)
    with pytest.raises(FileLimitError, match=r"buffer_size=500\): Unable to allocate.*SACAE\.load\(path, buffer_size=N\)"):
        SACAE.load(tmp_path / "model.zip", env=env, device=TEST_DEVICE)
