"""
Safe model files: allow-listed unpickling, atomic saves, pickle-free replay buffers, safe YAML configs.

SB3 decodes every non-JSON entry of a model zip with cloudpickle, and replay buffers with pickle: loading a
file from a stranger runs whatever code the file names. Here every such entry goes through an unpickler that
only resolves the globals a genuine model needs (numpy arrays, gymnasium spaces, SB3 schedules, policy and
buffer classes, ...), replay buffers are numpy arrays plus JSON metadata, and saves replace the old file only
once the new one is complete on disk.
"""

import base64
import contextlib
import inspect
import io
import json
import os
import pickle
import re
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, TypeVar

import numpy as np
import torch as th
import yaml
from gymnasium import spaces
from stable_baselines3.common.buffers import BaseBuffer
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.save_util import open_path
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor

SelfSafe = TypeVar("SelfSafe", bound="SafeSerializationMixin")

TRUST_HINT = (
    "Loading a model or buffer file can run arbitrary code; if you trust this file, "
    "pass trust_remote_code=True to restore Stable-Baselines3's (cloudpickle) loading"
)

BUFFER_FORMAT = "sb3_sacae.replay_buffer"
BUFFER_FORMAT_VERSION = 1
_META_KEY = "__meta__"

_NUMPY_CORE = {"_reconstruct", "scalar", "_frombuffer"}
# Scalar types such as numpy.float32 (e.g. the dtype argument of SB3's action noise)
_NUMPY_SCALAR_TYPES = {t.__name__ for t in set(np.sctypeDict.values()) if vars(np).get(t.__name__) is t} - {"object_"}
_BIT_GENERATORS = {
    "numpy.random._pcg64": {"PCG64", "PCG64DXSM"},
    "numpy.random._mt19937": {"MT19937"},
    "numpy.random._philox": {"Philox"},
    "numpy.random._sfc64": {"SFC64"},
}

# (module, name) pairs a genuine model file may reference. Every entry is harmless to call with any arguments:
# the unpickler may call it (REDUCE), so nothing here may import, open, eval or look up other names.
ALLOWED_GLOBALS: dict[str, set[str]] = {
    "builtins": {"slice", "set", "frozenset", "complex", "range", "bytearray"},
    "collections": {"deque", "OrderedDict"},
    "numpy": {"dtype", "ndarray"} | _NUMPY_SCALAR_TYPES,
    "numpy._core.multiarray": _NUMPY_CORE,
    "numpy.core.multiarray": _NUMPY_CORE,
    "numpy._core.numeric": _NUMPY_CORE,
    "numpy.core.numeric": _NUMPY_CORE,
    "numpy.random._pickle": {"__generator_ctor", "__bit_generator_ctor", "__randomstate_ctor"},
    "numpy.random.bit_generator": {"__pyx_unpickle_SeedSequence", "SeedSequence"},
    **_BIT_GENERATORS,
    "gymnasium.spaces.box": {"Box"},
    "gymnasium.spaces.discrete": {"Discrete"},
    "gymnasium.spaces.multi_discrete": {"MultiDiscrete"},
    "gymnasium.spaces.multi_binary": {"MultiBinary"},
    "gymnasium.spaces.dict": {"Dict"},
    "gymnasium.spaces.tuple": {"Tuple"},
    "stable_baselines3.common.utils": {"FloatSchedule", "LinearSchedule", "ConstantSchedule"},
    "stable_baselines3.common.type_aliases": {"TrainFreq", "TrainFrequencyUnit"},
    "stable_baselines3.common.noise": {"NormalActionNoise", "OrnsteinUhlenbeckActionNoise", "VectorizedActionNoise"},
}

# Packages whose classes are allowed when they subclass one of _ALLOWED_BASES (policies, feature extractors,
# buffers, torch layers and activations, optimizers): a saved model refers to them by name only.
_CLASS_PACKAGES = ("sb3_sacae", "stable_baselines3", "torch.nn.modules", "torch.optim")
_ALLOWED_BASES: tuple[type, ...] = (BasePolicy, BaseFeaturesExtractor, BaseBuffer, th.nn.Module, th.optim.Optimizer)


class UnsafeFileError(ValueError):
    """A model, buffer or config file references something outside the allow-list; nothing of it was run."""


def is_allowed_global(module: str, name: str) -> bool:
    """Whether a pickle in a model file may reference ``module.name``."""
    if name in ALLOWED_GLOBALS.get(module, ()):
        return True
    # Dotted names walk attributes (``sb3_sacae.serialization`` + ``os.system``) and private names reach internals
    if not name.isidentifier() or name.startswith("_"):
        return False
    if not any(module == package or module.startswith(package + ".") for package in _CLASS_PACKAGES):
        return False
    # Only modules already imported: resolving a name must never import (and so run) anything
    obj = getattr(sys.modules.get(module), name, None)
    return isinstance(obj, type) and issubclass(obj, _ALLOWED_BASES)


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file: IO[bytes], what: str):
        super().__init__(file)
        self.what = what

    def find_class(self, module: str, name: str) -> Any:
        if not is_allowed_global(module, name):
            hint = (
                " (cloudpickle stores lambdas, closures and classes defined in __main__ this way: "
                "use importable classes such as SB3's schedule classes instead)"
                if module.startswith("cloudpickle")
                else ""
            )
            raise UnsafeFileError(
                f"Refusing to load {self.what}: it references the global '{module}.{name}', which is not on "
                f"sb3_sacae's allow-list{hint}. {TRUST_HINT}."
            )
        return super().find_class(module, name)

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafeFileError(f"Refusing to load {self.what}: it uses pickle persistent ids. {TRUST_HINT}.")


def restricted_loads(payload: bytes, what: str) -> Any:
    """Unpickle ``payload`` resolving only allow-listed globals; ``what`` names it in errors."""
    return _RestrictedUnpickler(io.BytesIO(payload), what).load()


def decode_model_data(
    json_text: str, algorithm_class: type, source: str, skip: frozenset[str] | set[str] = frozenset()
) -> dict[str, Any]:
    """
    Decode every serialized (non-JSON) entry of a model zip's ``data`` with the allow-listed unpickler.

    Entries named in ``skip`` (the caller's ``custom_objects``) are not decoded. Keys that would shadow a method
    of ``algorithm_class`` (SB3 copies the data into the model's ``__dict__``) are refused too.
    """
    data = json.loads(json_text)
    if not isinstance(data, dict):
        raise UnsafeFileError(f"The data entry of {source} is not a JSON object")
    decoded = {}
    for key, item in data.items():
        attribute = inspect.getattr_static(algorithm_class, key, None)
        if key.startswith("__") or callable(attribute) or isinstance(attribute, (classmethod, staticmethod, property)):
            raise UnsafeFileError(
                f"Refusing to load entry '{key}' of {source}: it would replace {algorithm_class.__name__}.{key}. "
                f"{TRUST_HINT}."
            )
        if key in skip or not (isinstance(item, dict) and ":serialized:" in item):
            continue
        payload = base64.b64decode(item[":serialized:"].encode())
        decoded[key] = restricted_loads(payload, f"entry '{key}' of {source}")
    return decoded


def _read_bytes(path: str | os.PathLike | io.BufferedIOBase, suffix: str) -> bytes:
    file = open_path(path if not isinstance(path, os.PathLike) else Path(path), "r", verbose=0, suffix=suffix)
    try:
        return file.read()
    finally:
        if not isinstance(path, io.BufferedIOBase):
            file.close()


def _current_umask() -> int:
    """The process umask, read without changing it where /proc allows (``os.umask`` can only set and return it)."""
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    mask = os.umask(0o022)  # no /proc (macOS, old kernels): set and restore, briefly visible to other threads
    os.umask(mask)
    return mask


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` still runs (the current one always does; one we may not signal counts as alive)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def _remove_stale_temporaries(path: Path) -> None:
    """Delete ``.<name>.<pid>.XXXX.tmp`` files of ``path`` left by a killed save (their process is gone)."""
    pattern = re.compile(rf"\.{re.escape(path.name)}\.(\d+)\.[^.]+\.tmp")
    with contextlib.suppress(OSError):
        for candidate in path.parent.iterdir():
            match = pattern.fullmatch(candidate.name)
            if match and not pid_alive(int(match.group(1))):
                with contextlib.suppress(OSError):
                    candidate.unlink()


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):  # not every file system lets a directory be opened and synced
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike) -> Iterator[io.BufferedWriter]:
    """
    Open ``path`` for writing so that it is replaced only when the block completes: the data goes to a temporary
    file in the same directory, is flushed and fsynced, then renamed over ``path``. An exception (or a kill)
    before the rename leaves the previous file untouched.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"Cannot save to {path}: it is a directory")
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(path)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            yield file  # type: ignore[misc]
            file.flush()
            os.fsync(file.fileno())
        os.chmod(tmp_name, path.stat().st_mode & 0o777 if path.exists() else 0o666 & ~_current_umask())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    _fsync_dir(path.parent)


def _with_default_suffix(path: str | os.PathLike, suffix: str) -> Path:
    """SB3's rule: a path without a suffix gets ``suffix``."""
    path = Path(path)
    return path if path.suffix else path.with_name(path.name + suffix)


# --- Replay buffers without pickle ---------------------------------------------------------------------------


def _qualified_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _to_json(value: Any, where: str) -> Any:
    """Plain scalars and containers of them; tuples are tagged so they come back as tuples."""
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
    return value


def _buffer_state(buffer: BaseBuffer) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Split a buffer's attributes into arrays (``name`` or ``name/key`` for dicts of arrays) and JSON scalars."""
    arrays: dict[str, np.ndarray] = {}
    scalars: dict[str, Any] = {}
    name = type(buffer).__name__
    for attr, value in vars(buffer).items():
        if attr in ("observation_space", "action_space", "device"):
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
    entries = {_META_KEY: np.array(json.dumps(meta)), **arrays}
    if isinstance(path, io.BufferedIOBase):
        np.savez(path, allow_pickle=False, **entries)
        return
    with atomic_write(path) as file:
        np.savez(file, allow_pickle=False, **entries)


def _buffer_mismatch(what: str, saved: Any, expected: Any, source: str) -> ValueError:
    return ValueError(
        f"The replay buffer in {source} does not match this model: {what} is {saved} in the file but {expected} "
        "in the model; load it into a model built with the same environment spaces, number of envs and "
        "replay_buffer_class / replay_buffer_kwargs"
    )


def read_replay_buffer_into(buffer: BaseBuffer, path: str | os.PathLike | io.BufferedIOBase) -> None:
    """
    Fill ``buffer`` (the model's own, already built) from a file written by :func:`write_replay_buffer`.

    Refuses pickles and object arrays, and checks buffer class, spaces, number of envs and every array's shape and
    dtype before changing anything.
    """
    source = str(path) if not isinstance(path, io.BufferedIOBase) else "the given file"
    raw = path.read() if isinstance(path, io.BufferedIOBase) else Path(path).read_bytes()
    if not raw.startswith(b"PK"):
        raise UnsafeFileError(
            f"Refusing to load the replay buffer {source}: it is not an sb3_sacae .npz buffer "
            f"(it looks like SB3's pickle format). {TRUST_HINT}, then save_replay_buffer() again to convert it."
        )
    try:
        with np.load(io.BytesIO(raw), allow_pickle=False) as npz:
            entries = {key: npz[key] for key in npz.files}
    except ValueError as error:  # object arrays need pickle
        raise UnsafeFileError(f"Refusing to load the replay buffer {source}: {error}. {TRUST_HINT}.") from error
    if _META_KEY not in entries:
        raise ValueError(f"{source} is an .npz file but not an sb3_sacae replay buffer (no metadata)")
    meta = json.loads(str(entries.pop(_META_KEY)))
    if meta.get("format") != BUFFER_FORMAT or meta.get("version") != BUFFER_FORMAT_VERSION:
        raise ValueError(f"{source} has format {meta.get('format')} v{meta.get('version')}, expected {BUFFER_FORMAT} v1")

    checks = [
        ("the buffer class", meta["buffer_class"], _qualified_name(type(buffer))),
        ("the observation space", meta["observation_space"], _space_description(buffer.observation_space)),
        ("the action space", meta["action_space"], _space_description(buffer.action_space)),
        ("the number of envs", meta["n_envs"], buffer.n_envs),
    ]
    for what, saved, expected in checks:
        if saved != expected:
            raise _buffer_mismatch(what, saved, expected, source)
    for key, array in entries.items():
        if not isinstance(array, np.ndarray):  # np.load returns members that are not .npy files as raw bytes
            raise ValueError(
                f"{source}: member '{key}' is not a numpy array (.npy); an sb3_sacae replay buffer holds only arrays"
            )
    current_arrays, current_scalars = _buffer_state(buffer)
    if set(current_arrays) != set(entries):
        raise _buffer_mismatch("the set of arrays", sorted(entries), sorted(current_arrays), source)
    for key, array in entries.items():
        expected = current_arrays[key]
        if (array.shape, array.dtype) != (expected.shape, expected.dtype):
            raise _buffer_mismatch(f"'{key}'", f"{array.shape} {array.dtype}", f"{expected.shape} {expected.dtype}", source)
    scalars = _checked_scalars(meta.get("scalars"), current_scalars, buffer, source)

    for key, array in entries.items():
        attr, _, sub_key = key.partition("/")
        if sub_key:
            getattr(buffer, attr)[sub_key] = array
        else:
            setattr(buffer, attr, array)
    for attr, value in scalars.items():
        setattr(buffer, attr, value)


# Scalars that record the buffer's fill state; every other scalar is configuration and must equal the model's own
_STATE_SCALARS = {"pos", "full", "frame_count"}


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
        raise ValueError(f"{source}: the replay buffer metadata has no 'scalars' object; the file is corrupt")
    if set(saved) != set(current):
        raise _buffer_mismatch("the set of scalar attributes", sorted(saved), sorted(current), source)
    for attr, expected in current.items():
        value = saved[attr]
        if not _json_types_match(value, expected):
            raise ValueError(
                f"{source}: replay buffer attribute '{attr}' is {value!r} ({type(value).__name__}) in the file, expected "
                f"a {type(expected).__name__}; the file is corrupt or was not written by sb3_sacae"
            )
        if attr not in _STATE_SCALARS and json.dumps(value, sort_keys=True) != json.dumps(expected, sort_keys=True):
            raise _buffer_mismatch(f"'{attr}'", _from_json(value), _from_json(expected), source)
    buffer_size = int(buffer.buffer_size)
    if "pos" in saved and not 0 <= saved["pos"] < buffer_size:
        raise ValueError(
            f"{source}: replay buffer position {saved['pos']} is outside [0, {buffer_size}) (buffer_size {buffer_size}); "
            "the file is corrupt"
        )
    if "frame_count" in saved and saved["frame_count"] < 0:
        raise ValueError(f"{source}: replay buffer frame_count {saved['frame_count']} is negative; the file is corrupt")
    return {attr: _from_json(value) for attr, value in saved.items()}


# --- The mixin -----------------------------------------------------------------------------------------------


class SafeSerializationMixin:
    """
    Safe loading and crash-proof saving for an SB3 algorithm; put it first: ``class SACAE(SafeSerializationMixin, SAC)``.

    - ``load()`` decodes the zip's non-JSON entries with an allow-list; ``trust_remote_code=True`` restores SB3.
    - ``save()`` and ``save_replay_buffer()`` are atomic (temporary file, fsync, rename).
    - Replay buffers are ``.npz`` arrays plus JSON metadata, checked against the model on load.
    """

    replay_buffer: Any
    device: th.device

    @classmethod
    def load(  # type: ignore[override]
        cls: type[SelfSafe],
        path: str | os.PathLike | io.BufferedIOBase,
        env: Any = None,
        device: th.device | str = "auto",
        custom_objects: dict[str, Any] | None = None,
        print_system_info: bool = False,
        force_reset: bool = True,
        trust_remote_code: bool = False,
        **kwargs: Any,
    ) -> SelfSafe:
        """
        Load a model like SB3's ``load()``, without running code from the file.

        :param trust_remote_code: decode the file with cloudpickle as SB3 does (only for files you trust)
        Other parameters: see ``stable_baselines3.common.base_class.BaseAlgorithm.load``.
        """
        load_kwargs = dict(env=env, device=device, print_system_info=print_system_info, force_reset=force_reset, **kwargs)
        if trust_remote_code:
            return super().load(path, custom_objects=custom_objects, **load_kwargs)  # type: ignore[misc]
        # Decode and load the same bytes, so the file cannot change between the check and the load
        raw = _read_bytes(path, suffix="zip")
        source = str(path) if not isinstance(path, io.BufferedIOBase) else "the given file"
        try:
            with zipfile.ZipFile(io.BytesIO(raw)) as archive:
                json_text = archive.read("data").decode() if "data" in archive.namelist() else "{}"
        except zipfile.BadZipFile as error:
            raise ValueError(f"Error: the file {source} wasn't a zip-file") from error
        user_objects = dict(custom_objects or {})
        decoded = decode_model_data(json_text, cls, source, skip=set(user_objects))
        return super().load(io.BytesIO(raw), custom_objects={**decoded, **user_objects}, **load_kwargs)  # type: ignore[misc]

    def save(
        self,
        path: str | os.PathLike | io.BufferedIOBase,
        exclude: Any = None,
        include: Any = None,
    ) -> None:
        """Save like SB3's ``save()``; a path is replaced atomically (a crash mid-save keeps the old file)."""
        if isinstance(path, io.BufferedIOBase):
            super().save(path, exclude=exclude, include=include)  # type: ignore[misc]
            return
        with atomic_write(_with_default_suffix(path, ".zip")) as file:
            super().save(file, exclude=exclude, include=include)  # type: ignore[misc]

    def save_replay_buffer(self, path: str | os.PathLike | io.BufferedIOBase) -> None:
        """Save the replay buffer without pickle: an ``.npz`` (the default suffix) of arrays plus JSON metadata."""
        if self.replay_buffer is None:
            raise ValueError("The replay buffer is not defined")
        write_replay_buffer(
            self.replay_buffer, path if isinstance(path, io.BufferedIOBase) else _with_default_suffix(path, ".npz")
        )

    def load_replay_buffer(
        self,
        path: str | os.PathLike | io.BufferedIOBase,
        truncate_last_traj: bool = True,
        trust_remote_code: bool = False,
    ) -> None:
        """
        Load a buffer written by :meth:`save_replay_buffer` into the model's own buffer, after checking that its
        class, spaces, number of envs, shapes and dtypes match the model.

        :param truncate_last_traj: see SB3 (only used for pickled ``HerReplayBuffer`` files)
        :param trust_remote_code: accept SB3's pickled buffer files (only for files you trust)
        """
        if not isinstance(path, io.BufferedIOBase):
            path = Path(path)
            if not path.exists():
                candidates = [_with_default_suffix(path, ".npz"), _with_default_suffix(path, ".pkl")]
                path = next((c for c in candidates if c.exists()), path)
        if trust_remote_code and not _looks_like_npz(path):
            super().load_replay_buffer(path, truncate_last_traj)  # type: ignore[misc]
            return
        if self.replay_buffer is None:
            raise ValueError("This model has no replay buffer to load into")
        read_replay_buffer_into(self.replay_buffer, path)
        self.replay_buffer.device = self.device

    @classmethod
    def load_checkpoint(cls: type[SelfSafe], path: str | os.PathLike, env: Any, **kwargs: Any) -> SelfSafe:
        """Resume from a checkpoint bundle: see :func:`sb3_sacae.callbacks.resume_from_bundle`."""
        from sb3_sacae.callbacks import resume_from_bundle

        return resume_from_bundle(path, env, algorithm_class=cls, **kwargs)  # type: ignore[arg-type, return-value]


def _looks_like_npz(path: Path | io.BufferedIOBase) -> bool:
    if isinstance(path, io.BufferedIOBase):
        position = path.tell()
        head = path.read(2)
        path.seek(position)
        return head == b"PK"
    with open(path, "rb") as file:
        return file.read(2) == b"PK"


# --- Config files --------------------------------------------------------------------------------------------


class _ZooConfigLoader(yaml.SafeLoader):
    """yaml.SafeLoader plus the two harmless tags rl_zoo3 writes: OrderedDict (as dict) and tuple."""


def _construct_ordered_dict(loader: yaml.SafeLoader, node: yaml.Node) -> dict[Any, Any]:
    pairs = loader.construct_sequence(node, deep=True)  # type: ignore[arg-type]
    if len(pairs) == 1 and isinstance(pairs[0], list) and all(isinstance(p, (list, tuple)) and len(p) == 2 for p in pairs[0]):
        pairs = pairs[0]  # !!python/object/apply:collections.OrderedDict [[[k, v], ...]]
    return {key: value for key, value in pairs}


_ZooConfigLoader.add_constructor("tag:yaml.org,2002:python/object/apply:collections.OrderedDict", _construct_ordered_dict)
_ZooConfigLoader.add_constructor(
    "tag:yaml.org,2002:python/tuple", lambda loader, node: tuple(loader.construct_sequence(node, deep=True))
)


def safe_load_config(path: str | os.PathLike) -> Any:
    """
    Read an rl_zoo3 ``config.yml`` / ``args.yml`` without running code.

    rl_zoo3 reads them with ``yaml.UnsafeLoader``, which builds arbitrary Python objects; this loader accepts
    plain YAML plus the OrderedDict and tuple tags rl_zoo3 itself writes, and refuses any other Python tag.
    """
    with open(path, encoding="utf-8") as file:
        try:
            return yaml.load(file, Loader=_ZooConfigLoader)  # a SafeLoader subclass
        except yaml.constructor.ConstructorError as error:
            raise UnsafeFileError(f"Refusing to read {path}: {error.problem} (only plain YAML is accepted)") from error


__all__ = [
    "ALLOWED_GLOBALS",
    "SafeSerializationMixin",
    "UnsafeFileError",
    "atomic_write",
    "decode_model_data",
    "is_allowed_global",
    "read_replay_buffer_into",
    "restricted_loads",
    "safe_load_config",
    "write_replay_buffer",
]
