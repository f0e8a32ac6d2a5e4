"""
Replay buffers without pickle: an ``.npz`` of the buffer's arrays plus JSON metadata, checked against the model's own
buffer (class, spaces, number of envs, every array's shape and dtype from its header) before anything is read.
"""

import enum
import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.buffers import BaseBuffer
from stable_baselines3.her.her_replay_buffer import HerReplayBuffer

from sb3_sacae.io.archives import read_npz, string_array
from sb3_sacae.io.errors import CorruptFileError, FileMismatchError, UnsafeFileError
from sb3_sacae.io.files import atomic_write, read_bounded, read_regular_file
from sb3_sacae.io.limits import MAX_ARRAY_BYTES, MAX_METADATA_BYTES, Limit
from sb3_sacae.io.unpickle import TRUST_HINT

BUFFER_FORMAT = "sb3_sacae.replay_buffer"
BUFFER_FORMAT_VERSION = 1
META_KEY = "__meta__"
# Scalars that record the buffer's fill state; every other scalar is configuration and must equal the model's own
_STATE_SCALARS = {"pos", "full", "frame_count"}


def _qualified_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _to_json(value: Any, where: str) -> Any:
    """Plain scalars and containers of them; tuples are tagged so they come back as tuples, enum members by name."""
    if isinstance(value, enum.Enum):  # configuration only (HerReplayBuffer's goal_selection_strategy): compared by name
        return {"__enum__": f"{type(value).__qualname__}.{value.name}"}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple):
        return {"__tuple__": [_to_json(v, where) for v in value]}
    if isinstance(value, list):
        return [_to_json(v, where) for v in value]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {"__dict__": {k: _to_json(v, where) for k, v in value.items()}}
    raise TypeError(
        f"{where} holds a {type(value).__name__}, which sb3_sacae cannot save without pickle: a replay buffer "
        "must keep its state in numpy arrays and plain scalars (use SB3's pickle format via "
        "stable_baselines3.common.save_util.save_to_pkl for other buffers, at your own risk)"
    )


def _from_json(value: Any) -> Any:
    if isinstance(value, list):
        return [_from_json(v) for v in value]
    if isinstance(value, dict) and "__tuple__" in value:
        return tuple(_from_json(v) for v in value["__tuple__"])
    if isinstance(value, dict) and "__dict__" in value:
        return {k: _from_json(v) for k, v in value["__dict__"].items()}
    if isinstance(value, dict) and "__enum__" in value:
        return value["__enum__"]  # configuration, compared and named only
    return value


def _buffer_state(buffer: BaseBuffer) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Split a buffer's attributes into arrays (``name`` or ``name/key`` for dicts of arrays) and JSON scalars."""
    arrays: dict[str, np.ndarray] = {}
    scalars: dict[str, Any] = {}
    name = type(buffer).__name__
    # Where the buffer keeps things in this process (device, a copy of the frames on it) is not part of its state
    placement = ("observation_space", "action_space", "device", *getattr(buffer, "placement_attributes", ()))
    if isinstance(buffer, HerReplayBuffer):
        if buffer.copy_info_dict:
            raise TypeError(
                "HerReplayBuffer(copy_info_dict=True) keeps each step's info dict, which sb3_sacae cannot save without "
                "pickle: build the buffer with copy_info_dict=False (the default) unless compute_reward reads the infos"
            )
        # The env it relabels rewards with is the model's own, and without copy_info_dict its infos are empty dicts
        placement = (*placement, "env", "infos")
    for attr, value in vars(buffer).items():
        if attr in placement:
            continue  # rebuilt by the model that loads the buffer, and checked against it
        if isinstance(value, np.ndarray):
            arrays[attr] = value
        elif isinstance(value, dict) and value and all(isinstance(v, np.ndarray) for v in value.values()):
            arrays.update({f"{attr}/{key}": array for key, array in value.items()})
        else:
            scalars[attr] = _to_json(value, f"{name}.{attr}")
    for key, array in arrays.items():
        if array.dtype.hasobject:
            raise TypeError(f"{name}.{key} is an object array, which cannot be saved without pickle")
    return arrays, scalars


def _space_description(space: spaces.Space) -> str:
    return repr(space)


def write_replay_buffer(buffer: BaseBuffer, path: str | os.PathLike | io.BufferedIOBase) -> None:
    """Save ``buffer`` as an ``.npz`` of its arrays plus JSON metadata (no pickle), atomically for paths."""
    arrays, scalars = _buffer_state(buffer)
    meta = {
        "format": BUFFER_FORMAT,
        "version": BUFFER_FORMAT_VERSION,
        "buffer_class": _qualified_name(type(buffer)),
        "observation_space": _space_description(buffer.observation_space),
        "action_space": _space_description(buffer.action_space),
        "n_envs": buffer.n_envs,
        "scalars": scalars,
    }
    entries = {META_KEY: np.array(json.dumps(meta)), **arrays}
    if isinstance(path, io.BufferedIOBase):
        np.savez(path, allow_pickle=False, **entries)
        return
    with atomic_write(path) as file:
        np.savez(file, allow_pickle=False, **entries)


def _buffer_mismatch(what: str, saved: Any, expected: Any, source: str, fix: str | None = None) -> FileMismatchError:
    fix = fix or (
        "load it into a model built with the same environment spaces, number of envs, buffer_size and "
        "replay_buffer_class / replay_buffer_kwargs"
    )
    return FileMismatchError(
        f"The replay buffer in {source} does not match this model: {what} is {saved} in the file but {expected} "
        f"in the model; {fix}"
    )


def read_buffer_bytes(path: str | os.PathLike | io.BufferedIOBase, follow_symlinks: bool = True) -> bytes:
    """The bytes of a buffer file: a regular file (or an open stream) no larger than ``SB3_SACAE_MAX_ARRAY_BYTES``."""
    if isinstance(path, io.BufferedIOBase):
        return read_bounded(path, "the replay buffer stream", MAX_ARRAY_BYTES)  # type: ignore[arg-type]  # typeshed's BufferedIOBase is not the BinaryIO read_bounded names; both have read()
    return read_regular_file(path, "the replay buffer", MAX_ARRAY_BYTES, follow_symlinks)


def read_replay_buffer_into(
    buffer: BaseBuffer, path: str | os.PathLike | io.BufferedIOBase, follow_symlinks: bool = True
) -> None:
    """
    Fill ``buffer`` (the model's own, already built) from a file written by :func:`write_replay_buffer`.

    Refuses pickles and object arrays, and checks buffer class, spaces, number of envs, buffer size and every array's
    shape and dtype (from the ``.npy`` headers, before reading the data) before changing anything.
    """
    source = str(path) if not isinstance(path, io.BufferedIOBase) else "the given file"
    raw = read_buffer_bytes(path, follow_symlinks)
    if not raw.startswith(b"PK"):
        raise UnsafeFileError(
            f"Refusing to load the replay buffer {source}: it is not an sb3_sacae .npz buffer "
            f"(it looks like SB3's pickle format). {TRUST_HINT}, then save_replay_buffer() again to convert it."
        )
    current_arrays, current_scalars = _buffer_state(buffer)
    expected = {key: (array.shape, array.dtype) for key, array in current_arrays.items()}
    meta_limit = Limit(MAX_METADATA_BYTES.variable, MAX_METADATA_BYTES.default * 4, "bytes (metadata, as UTF-32)")
    what = f"the replay buffer {source}"
    header = read_npz(raw, what, member_limits={META_KEY: meta_limit}, keys={META_KEY})
    if META_KEY not in header:
        raise CorruptFileError(f"{source} is an .npz file but not an sb3_sacae replay buffer (no metadata)")
    try:
        meta = json.loads(string_array(header[META_KEY], META_KEY, source))
    except ValueError as error:
        raise CorruptFileError(f"Refusing to load the replay buffer {source}: its metadata is not JSON ({error})") from error
    if not isinstance(meta, dict):
        raise CorruptFileError(f"Refusing to load the replay buffer {source}: its metadata is not a JSON object")
    if meta.get("format") != BUFFER_FORMAT or meta.get("version") != BUFFER_FORMAT_VERSION:
        raise CorruptFileError(f"{source} has format {meta.get('format')} v{meta.get('version')}, expected {BUFFER_FORMAT} v1")

    checks = [
        ("the buffer class", meta.get("buffer_class"), _qualified_name(type(buffer))),
        ("the observation space", meta.get("observation_space"), _space_description(buffer.observation_space)),
        ("the action space", meta.get("action_space"), _space_description(buffer.action_space)),
        ("the number of envs", meta.get("n_envs"), buffer.n_envs),
    ]
    for quantity, saved, wanted in checks:
        if saved != wanted:
            raise _buffer_mismatch(quantity, saved, wanted, source)
    saved_scalars = meta.get("scalars")
    saved_size = saved_scalars.get("buffer_size") if isinstance(saved_scalars, dict) else None
    if isinstance(saved_size, int) and saved_size != buffer.buffer_size:
        # SB3 keeps buffer_size per env; the model's argument is the total over its envs
        saved_total, total = saved_size * buffer.n_envs, buffer.buffer_size * buffer.n_envs
        raise _buffer_mismatch(
            "'buffer_size'",
            saved_total,
            total,
            source,
            f"load it into a model built with buffer_size={saved_total} (a saved model: SACAE.load(path, "
            f"buffer_size={saved_total}); rl_zoo3.train -i: --hyperparams buffer_size:{saved_total})",
        )
    # the arrays, each checked against the model's from its header before it is read
    entries = read_npz(raw, what, expected, member_limits={META_KEY: meta_limit}, only_expected=True, keys=set(current_arrays))
    if set(current_arrays) != set(entries):
        raise _buffer_mismatch("the set of arrays", sorted(entries), sorted(current_arrays), source)
    scalars = _checked_scalars(meta.get("scalars"), current_scalars, buffer, source)

    for key, array in entries.items():
        attr, _, sub_key = key.partition("/")
        if sub_key:
            getattr(buffer, attr)[sub_key] = array
        else:
            setattr(buffer, attr, array)
    for attr in _STATE_SCALARS & set(scalars):  # the rest is configuration, equal to the model's own
        setattr(buffer, attr, scalars[attr])


def _json_types_match(saved: Any, expected: Any) -> bool:
    if isinstance(expected, bool) or expected is None:
        return saved is expected if expected is None else isinstance(saved, bool)
    if isinstance(expected, int):
        return isinstance(saved, int) and not isinstance(saved, bool)
    if isinstance(expected, (float, str)):
        return type(saved) is type(expected)
    if isinstance(expected, list):
        return isinstance(saved, list)
    return isinstance(saved, dict) and set(saved) == set(expected)


def _checked_scalars(saved: Any, current: dict[str, Any], buffer: BaseBuffer, source: str) -> dict[str, Any]:
    """
    Check the file's scalar attributes against the model's buffer and return them decoded: the same names, each of the
    same JSON type; configuration (sizes, shapes, number of envs, frame stack) equal to the model's; ``pos`` in
    ``[0, buffer_size)`` (SB3 wraps it to 0 on reaching buffer_size, and ``add`` writes at ``pos``), ``full`` a bool.
    """
    if not isinstance(saved, dict):
        raise CorruptFileError(f"{source}: the replay buffer metadata has no 'scalars' object; the file is corrupt")
    if set(saved) != set(current):
        only_saved, only_current = sorted(set(saved) - set(current)), sorted(set(current) - set(saved))
        raise _buffer_mismatch(
            "the set of scalar attributes",
            f"{sorted(saved)} (only there: {only_saved})",
            f"{sorted(current)} (only there: {only_current})",
            source,
        )
    for attr, expected in current.items():
        value = saved[attr]
        if not _json_types_match(value, expected):
            raise CorruptFileError(
                f"{source}: replay buffer attribute '{attr}' is {value!r} ({type(value).__name__}) in the file, expected "
                f"a {type(expected).__name__}; the file is corrupt or was not written by sb3_sacae"
            )
        if attr not in _STATE_SCALARS and json.dumps(value, sort_keys=True) != json.dumps(expected, sort_keys=True):
            raise _buffer_mismatch(f"'{attr}'", _from_json(value), _from_json(expected), source)
    buffer_size = int(buffer.buffer_size)
    if "pos" in saved and not 0 <= saved["pos"] < buffer_size:
        raise CorruptFileError(
            f"{source}: replay buffer position {saved['pos']} is outside [0, {buffer_size}) (buffer_size {buffer_size}); "
            "the file is corrupt"
        )
    if "frame_count" in saved and saved["frame_count"] < 0:
        raise CorruptFileError(f"{source}: replay buffer frame_count {saved['frame_count']} is negative; the file is corrupt")
    return {attr: _from_json(value) for attr, value in saved.items()}


def looks_like_npz(path: Path | io.BufferedIOBase) -> bool:
    """Whether a file starts like a zip (an ``.npz``) rather than a pickle."""
    if isinstance(path, io.BufferedIOBase):
        position = path.tell()
        head = path.read(2)
        path.seek(position)
        return head == b"PK"
    with open(path, "rb") as file:
        return file.read(2) == b"PK"
