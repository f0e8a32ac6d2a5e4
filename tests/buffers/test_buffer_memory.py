"""3 stacked 84x84 RGB frames cost at most 21.5 kB per transition: 1,000,000 transitions fit in 24 GiB."""

import numpy as np
import pytest
from gymnasium import spaces

from sb3_sacae.buffers import FrameStackReplayBuffer

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
