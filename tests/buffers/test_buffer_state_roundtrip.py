"""All state of the buffer is numpy arrays and plain scalars: copying those alone restores it exactly."""

import itertools
import json

import numpy as np
import torch as th

from sb3_sacae.buffers import FrameStackReplayBuffer
from tests.buffers.test_buffer_streams import FRAME_STACK, stream_spaces, transitions


def make_buffer():
    return FrameStackReplayBuffer(
        buffer_size=40,
        **stream_spaces(),
        device="cpu",
        n_envs=2,
        frame_stack=FRAME_STACK,
        frame_margin=0.1,
    )


def test_arrays_to_npz_and_scalars_to_json_restore_the_buffer(tmp_path):
    stream = transitions(n_envs=2, n_steps=120, p_irregular=0.1)
    buffer = make_buffer()
    for transition in itertools.islice(stream, 70):
        buffer.add(*transition)

    state = vars(buffer)
    arrays = {name: value for name, value in state.items() if isinstance(value, np.ndarray)}
    scalars = {name: value for name, value in state.items() if isinstance(value, (bool, int, float, str))}
    np.savez(tmp_path / "arrays.npz", **arrays)
    (tmp_path / "scalars.json").write_text(json.dumps(scalars))

    restored = make_buffer()
    with np.load(tmp_path / "arrays.npz") as saved:
        for name in saved.files:
            setattr(restored, name, saved[name])
    for name, value in json.loads((tmp_path / "scalars.json").read_text()).items():
        setattr(restored, name, value)

    # Both go on identically: same samples now and after more transitions (ring wraps, frames evicted)
    for step, transition in enumerate(stream):
        np.random.seed(step)
        expected = buffer.sample(32)
        np.random.seed(step)
        samples = restored.sample(32)
        for name in ("observations", "actions", "next_observations", "dones", "rewards"):
            assert th.equal(getattr(samples, name), getattr(expected, name)), name
        buffer.add(*transition)
        restored.add(*transition)
    assert buffer.frame_count == restored.frame_count > restored.n_frames
