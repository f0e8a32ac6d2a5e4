"""When the rings wrap, every sampled transition is exactly one that was added and is still held."""

import numpy as np
import pytest

from sb3_sacae.buffers import FrameStackReplayBuffer
from tests.buffers.test_buffer_streams import FRAME_STACK, stream_spaces, transitions


@pytest.mark.parametrize("n_envs", [1, 3])
def test_sampled_transitions_are_added_ones_after_frames_are_evicted(n_envs):
    buffer = FrameStackReplayBuffer(
        buffer_size=20 * n_envs,
        **stream_spaces(),
        device="cpu",
        n_envs=n_envs,
        frame_stack=FRAME_STACK,
        frame_margin=0.0,  # episodes of 1 to 4 steps use up the frame ring before the transition ring
    )
    added = {}
    dropped = 0
    for step, (obs, next_obs, action, reward, done, infos) in enumerate(
        transitions(n_envs=n_envs, n_steps=200, max_steps=4, p_irregular=0.1, seed=7)
    ):
        buffer.add(obs, next_obs, action, reward, done, infos)
        for i in range(n_envs):
            timeout = infos[i]["TimeLimit.truncated"]
            added[int(action[i, 0])] = (obs[i].copy(), next_obs[i].copy(), reward[i], float(done[i] and not timeout))
        dropped = max(dropped, buffer.size() - buffer.n_valid())

        samples = buffer.sample(64)
        ids = samples.actions[:, 0].numpy().astype(int)
        # Only the newest n_valid rows: ids of the last n_valid add() calls
        assert ids.min() >= (step + 1 - buffer.n_valid()) * n_envs
        for row, transition_id in enumerate(ids):
            obs_i, next_obs_i, reward_i, done_i = added[transition_id]
            assert np.array_equal(samples.observations[row].numpy(), obs_i)
            assert np.array_equal(samples.next_observations[row].numpy(), next_obs_i)
            assert samples.rewards[row, 0].item() == np.float32(reward_i)
            assert samples.dones[row, 0].item() == done_i
    assert dropped > 0, "the frame ring never wrapped before the transition ring: the test tests nothing"


def test_rows_with_evicted_frames_are_refused():
    buffer = FrameStackReplayBuffer(
        buffer_size=20,
        **stream_spaces(),
        device="cpu",
        frame_stack=FRAME_STACK,
        frame_margin=0.0,
    )
    for transition in transitions(n_envs=1, n_steps=100, max_steps=2, p_irregular=0.3):
        buffer.add(*transition)
    assert buffer.n_valid() < buffer.size()
    oldest_row = np.array([buffer.pos])
    with pytest.raises(IndexError, match="overwritten"):
        buffer._get_samples(oldest_row)


def test_frame_repeated_for_longer_than_the_ring_is_stored_again():
    # Env 0 shows the same frame for ever, env 1 a new frame each step: the shared frame of env 0
    # must be written again before env 1's frames overwrite its slot
    rng = np.random.default_rng(0)
    buffer = FrameStackReplayBuffer(
        buffer_size=20,
        **stream_spaces(),
        device="cpu",
        n_envs=2,
        frame_stack=FRAME_STACK,
    )
    static = np.tile(rng.integers(1, 256, (1, 3, 10, 10), dtype=np.uint8), (FRAME_STACK, 1, 1)).reshape(9, 10, 10)
    moving = rng.integers(0, 256, (9, 10, 10), dtype=np.uint8)
    for step in range(200):
        next_moving = np.concatenate((moving[3:], rng.integers(0, 256, (3, 10, 10), dtype=np.uint8)))
        action = np.array([[0, step], [1, step]], dtype=np.float32)
        buffer.add(np.stack((static, moving)), np.stack((static, next_moving)), action, np.zeros(2), np.zeros(2), [{}, {}])
        moving = next_moving
        assert buffer.n_valid() == buffer.size()
    assert buffer.frame_count > 2 * buffer.n_frames
    samples = buffer.sample(256)
    from_static = samples.actions[:, 0] == 0
    assert from_static.any()
    assert (samples.observations[from_static].numpy() == static).all()
    assert (samples.next_observations[from_static].numpy() == static).all()
