"""Channel-last stacks (H, W, k*C) are split into frames along the last axis and rebuilt exactly."""

from stable_baselines3.common.buffers import ReplayBuffer

from sb3_sacae.buffers import FrameStackReplayBuffer
from tests.buffers.test_buffer_matches_sb3 import assert_same_samples
from tests.buffers.test_buffer_streams import FRAME_STACK, stream_spaces, transitions


def test_channel_last_samples_equal_sb3_replay_buffer():
    kwargs = dict(
        buffer_size=40,
        **stream_spaces(channels_last=True),
        device="cpu",
        n_envs=2,
    )
    buffer = FrameStackReplayBuffer(**kwargs, frame_stack=FRAME_STACK, frame_margin=6.0)
    reference = ReplayBuffer(**kwargs)
    assert buffer.frames.shape[1:] == (10, 10, 3)
    for step, transition in enumerate(transitions(n_envs=2, n_steps=100, channels_last=True, p_irregular=0.1)):
        buffer.add(*transition)
        reference.add(*transition)
        assert_same_samples(buffer, reference, seed=step)
    # Frames are shared as in channel-first (2.0 frames per transition for this stream, SB3 stores 6)
    assert buffer.frame_count < 100 * 2 * 2.5
