"""FrameStackReplayBuffer returns exactly what SB3's ReplayBuffer returns for the same transitions."""

import numpy as np
import pytest
import torch as th
from stable_baselines3.common.buffers import ReplayBuffer

from sb3_sacae.buffers import FrameStackReplayBuffer
from tests.buffers.test_buffer_streams import FRAME_STACK, stream_spaces, transitions


def assert_same_samples(buffer, reference, seed):
    np.random.seed(seed)
    samples = buffer.sample(16)
    np.random.seed(seed)
    expected = reference.sample(16)
    for name, value in expected._asdict().items():
        if value is None:  # discounts, only set by SB3's n-step buffer
            assert getattr(samples, name) is None, name
            continue
        assert getattr(samples, name).dtype == value.dtype, name
        assert th.equal(getattr(samples, name), value), name


@pytest.mark.parametrize("n_envs", [1, 2])
@pytest.mark.parametrize("p_irregular", [0.0, 0.2])
def test_samples_equal_sb3_replay_buffer(n_envs, p_irregular):
    # 30 rows x n_envs, 150 steps: the ring wraps several times; episodes of 1 to 7 steps
    stream = transitions(n_envs=n_envs, n_steps=150, p_irregular=p_irregular, seed=n_envs)
    kwargs = dict(
        buffer_size=30 * n_envs,
        **stream_spaces(),
        device="cpu",
        n_envs=n_envs,
    )
    # frame_margin: room for every frame of these very short episodes, so that nothing is dropped
    buffer = FrameStackReplayBuffer(**kwargs, frame_stack=FRAME_STACK, frame_margin=6.0)
    reference = ReplayBuffer(**kwargs)
    for step, transition in enumerate(stream):
        buffer.add(*transition)
        reference.add(*transition)
        assert buffer.n_valid() == reference.size()
        assert_same_samples(buffer, reference, seed=step)
    # Frames are shared: far fewer frames written than the 2 * 3 per transition SB3 stores
    assert buffer.frame_count < 150 * n_envs * (4 if p_irregular else 1.3)
