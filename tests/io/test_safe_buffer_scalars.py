"""The scalar attributes of a replay buffer file (pos, full, sizes) are checked before they replace the model's."""

import io
import json
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from sb3_sacae.serialization import atomic_write
from tests.conftest import tiny_model


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    model = tiny_model()
    model.learn(20)
    path = tmp_path_factory.mktemp("buffer") / "buffer.npz"
    model.save_replay_buffer(path)
    return path


def _crafted(saved, tmp_path, edit=None, extra_member=None):
    """Rewrite the buffer file with its JSON metadata's scalars changed by ``edit``."""
    with np.load(saved, allow_pickle=False) as npz:
        entries = {key: npz[key] for key in npz.files}
    meta = json.loads(str(entries["__meta__"]))
    if edit is not None:
        edit(meta["scalars"])
    entries["__meta__"] = np.array(json.dumps(meta))
    path = tmp_path / "crafted.npz"
    np.savez(path, allow_pickle=False, **entries)
    if extra_member is not None:
        with zipfile.ZipFile(path, "a") as archive:
            archive.writestr(extra_member, b"not an array")
    return path


def _untouched(model):
    buffer = model.replay_buffer
    return buffer.pos == 0 and not buffer.full and isinstance(buffer.observations, np.ndarray) and buffer.buffer_size == 200


def test_unchanged_file_loads(saved, tmp_path):
    model = tiny_model()
    model.load_replay_buffer(_crafted(saved, tmp_path))
    assert model.replay_buffer.pos == 20 and model.replay_buffer.full is False


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda s: s.update(observations=0), "set of scalar attributes"),  # would replace a checked array
        (lambda s: s.update(frames=0), "set of scalar attributes"),
        (lambda s: s.pop("pos"), "set of scalar attributes"),
        (lambda s: s.update(pos=200), r"position 200 is outside \[0, 200\)"),
        (lambda s: s.update(pos=-1), "outside"),
        (lambda s: s.update(pos=3.0), "'pos' is 3.0"),
        (lambda s: s.update(pos=True), "'pos' is True"),
        (lambda s: s.update(full=1), "'full' is 1"),
        (lambda s: s.update(full="yes"), "'full'"),
        (lambda s: s.update(buffer_size=10_000), "'buffer_size'"),
        (lambda s: s.update(n_envs=2), "'n_envs'"),
        (lambda s: s.update(obs_shape={"__tuple__": [3, 64, 64]}), "'obs_shape'"),
        (lambda s: s.update(optimize_memory_usage=True), "'optimize_memory_usage'"),
        (lambda s: s.update(handle_timeout_termination=1), "'handle_timeout_termination'"),
    ],
)
def test_crafted_scalars_are_refused(saved, tmp_path, edit, match):
    path = _crafted(saved, tmp_path, edit)
    model = tiny_model()
    with pytest.raises(ValueError, match=match):
        model.load_replay_buffer(path)
    assert _untouched(model)


def test_non_array_member_is_refused(saved, tmp_path):
    path = _crafted(saved, tmp_path, extra_member="notes.txt")
    model = tiny_model()
    with pytest.raises(ValueError, match=r"'notes\.txt' is not a numpy array"):
        model.load_replay_buffer(path)
    assert _untouched(model)


def test_frame_stack_configuration_must_match(tmp_path):
    from sb3_sacae.buffers import FrameStackReplayBuffer
    from tests.conftest import TinyPixelEnv

    env = lambda: TinyPixelEnv(shape=(6, 32, 32))  # noqa: E731 - two stacked RGB frames
    model = tiny_model(env(), replay_buffer_class=FrameStackReplayBuffer, replay_buffer_kwargs=dict(frame_stack=2))
    model.learn(20)
    model.save_replay_buffer(tmp_path / "stacked.npz")
    for attr, value in (("frame_stack", 3), ("n_frames", 7), ("frame_count", -1)):

        def edit(scalars, attr=attr, value=value):
            scalars[attr] = value

        path = _crafted(tmp_path / "stacked.npz", tmp_path, edit)
        other = tiny_model(env(), replay_buffer_class=FrameStackReplayBuffer, replay_buffer_kwargs=dict(frame_stack=2))
        with pytest.raises(ValueError, match=attr):
            other.load_replay_buffer(path)
        assert other.replay_buffer.pos == 0


def test_atomic_write_removes_temporaries_of_dead_processes(tmp_path):
    target = tmp_path / "model.zip"
    # a process killed mid-save leaves its temporary file behind
    code = (
        "import os, sys\n"
        "from sb3_sacae.serialization import atomic_write\n"
        f"with atomic_write({str(target)!r}) as f:\n"
        "    f.write(b'partial'); f.flush(); os._exit(9)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=False, env={**os.environ, "PYTHONPATH": os.getcwd()})
    left = [p.name for p in tmp_path.iterdir()]
    assert len(left) == 1 and left[0].startswith(".model.zip.") and left[0].endswith(".tmp")
    # a temporary of a live process (ours) with the same target name is kept
    mine = tmp_path / f".model.zip.{os.getpid()}.abcd1234.tmp"
    mine.write_bytes(b"in progress")
    with atomic_write(target) as file:
        file.write(b"complete")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["model.zip", mine.name])
    assert target.read_bytes() == b"complete"


def test_atomic_write_follows_the_current_umask(tmp_path):
    old = os.umask(0o077)
    try:
        with atomic_write(tmp_path / "private.bin") as file:
            file.write(io.BytesIO(b"x").read())
    finally:
        os.umask(old)
    assert (tmp_path / "private.bin").stat().st_mode & 0o777 == 0o600
