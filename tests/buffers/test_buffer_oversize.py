"""A buffer that cannot fit in memory is refused at construction, with the numbers and the options."""

import numpy as np
import pytest
from gymnasium import spaces

import sb3_sacae.buffers
from sb3_sacae.buffers import FrameStackReplayBuffer

SPACES = dict(
    observation_space=spaces.Box(0, 255, (9, 84, 84), dtype=np.uint8),
    action_space=spaces.Box(-1, 1, (6,), dtype=np.float32),
)


@pytest.fixture
def one_gib_available(monkeypatch):
    monkeypatch.setattr(sb3_sacae.buffers, "available_memory", lambda: 2**30)


def test_oversize_buffer_is_refused_with_bytes_and_options(one_gib_available):
    with pytest.raises(MemoryError) as error:
        FrameStackReplayBuffer(1_000_000, **SPACES, device="cpu", frame_stack=3)
    message = str(error.value)
    assert "needs 19.97 GiB" in message
    assert "only 1.00 GiB" in message
    assert "smaller buffer_size" in message
    assert "about 50," in message  # transitions that would fit
    assert "allow_oversize=True" in message
    assert "FrameStackReplayBuffer(frame_stack=k)" not in message  # already this buffer


def test_oversize_buffer_is_allocated_lazily_when_allowed(one_gib_available):
    with pytest.warns(UserWarning, match="needs 19.97 GiB"):
        buffer = FrameStackReplayBuffer(1_000_000, **SPACES, device="cpu", frame_stack=3, allow_oversize=True)
    assert buffer.nbytes > 20e9


def test_buffer_that_fits_is_built_without_warning(one_gib_available, recwarn):
    FrameStackReplayBuffer(10_000, **SPACES, device="cpu", frame_stack=3)
    assert not [w for w in recwarn if "GiB" in str(w.message)]


def test_available_memory_is_measured():
    available = sb3_sacae.buffers.available_memory()
    assert available is None or available > 0


def test_other_buffers_are_offered_frame_sharing(one_gib_available):
    # How SB3's buffer is checked (by SACAE): the frame-sharing buffer is one of the options
    with pytest.raises(MemoryError, match=r"buffer_size \(about 8,4.*FrameStackReplayBuffer\(frame_stack=k\).*allow_oversize"):
        sb3_sacae.buffers.check_memory_fits(2**31, 127_044, "ReplayBuffer(buffer_size=16_000)")
