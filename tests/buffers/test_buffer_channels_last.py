"""Channel-last stacks (H, W, k*C) are split into frames along the last axis and rebuilt exactly."""

import re

import numpy as np
import pytest
from gymnasium import spaces
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.vec_env import DummyVecEnv, VecFrameStack, VecNormalize, VecTransposeImage

from sb3_sacae.buffers import FrameStackReplayBuffer
from tests.buffers.test_buffer_matches_sb3 import assert_same_samples
from tests.buffers.test_buffer_streams import FRAME_STACK, stream_spaces, transitions
from tests.conftest import TinyPixelEnv, tiny_model


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


def test_stacks_in_another_layout_are_refused_not_reshaped():
    # VecNormalize inside the VecTransposeImage SB3 adds: SB3 hands the buffer VecNormalize's original observations,
    # channel-last (H, W, 3k) for a (3k, H, W) space; SB3's ReplayBuffer refuses them, a reshape would scramble them
    env = VecNormalize(VecFrameStack(DummyVecEnv([lambda: TinyPixelEnv((16, 16, 3), channel_last=True)]), 3), norm_obs=False)
    model = tiny_model(env)
    assert isinstance(model.replay_buffer, FrameStackReplayBuffer)
    with pytest.raises(ValueError, match=re.escape("obs has shape (1, 16, 16, 9), the buffer stores (1, 9, 16, 16)")) as error:
        model.learn(4)
    assert "VecNormalize(VecTransposeImage(env))" in str(error.value)
    assert model.replay_buffer.pos == 0  # nothing stored

    # The order the message names trains, on unscrambled frames
    env = VecNormalize(
        VecTransposeImage(VecFrameStack(DummyVecEnv([lambda: TinyPixelEnv((16, 16, 3), channel_last=True)]), 3)),
        norm_obs=False,
    )
    model = tiny_model(env)
    model.learn(20)
    stored = model.replay_buffer._join_frames(model.replay_buffer.obs_frame_idx[5])[0]
    assert all(np.array_equal(stored[3 * i], stored[3 * i + 2]) for i in range(3))  # the env's channels are equal


def test_a_single_env_may_add_unbatched_stacks_as_in_sb3():
    buffer = FrameStackReplayBuffer(10, spaces.Box(0, 255, (6, 8, 8), np.uint8), spaces.Box(-1, 1, (1,)), "cpu", frame_stack=2)
    obs = (np.arange(384) % 251).astype(np.uint8).reshape(6, 8, 8)
    buffer.add(obs, obs, np.zeros(1), np.zeros(1), np.zeros(1), [{}])
    assert np.array_equal(buffer._join_frames(buffer.obs_frame_idx[0])[0], obs)
    with pytest.raises(ValueError, match=re.escape("next_obs has shape (3, 8, 8), the buffer stores (1, 6, 8, 8)")):
        buffer.add(obs, obs[:3], np.zeros(1), np.zeros(1), np.zeros(1), [{}])
