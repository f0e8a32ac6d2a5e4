"""The default frame_margin keeps every transition SB3 would keep for episodes of 100 steps or more."""

import pytest

from sb3_sacae.buffers import FrameStackReplayBuffer
from tests.buffers.test_buffer_streams import FRAME_STACK, stream_spaces, transitions


@pytest.mark.parametrize(
    "episode_length, frame_margin",
    [(100, 0.01), (1000, 0.01), (50, 0.02)],  # the default; shorter episodes need 1 / episode_length
)
def test_no_transition_is_dropped_when_the_margin_covers_episode_starts(episode_length, frame_margin):
    buffer = FrameStackReplayBuffer(
        buffer_size=3_000,
        **stream_spaces(),
        device="cpu",
        frame_stack=FRAME_STACK,
        frame_margin=frame_margin,
    )
    # Every frame new (no all-zero or unchanged frames to share): one frame per step plus one per episode
    stream = transitions(n_envs=1, n_steps=12_000, max_steps=episode_length, p_terminate=0.0, p_zero=0.0, p_still=0.0)
    for transition in stream:
        buffer.add(*transition)
        assert buffer.n_valid() == buffer.size()
    assert buffer.frame_count > 3 * buffer.n_frames
