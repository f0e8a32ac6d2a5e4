"""
Checkpoint bundles: one directory per checkpoint holding the model, the replay buffer, the step counters and every
random-number-generator state, written so that no kill, corruption or second writer loses the newest state.

A bundle is ``<name_prefix>_<num_timesteps>_steps/`` with ``model.zip``, ``replay_buffer.npz`` and ``state.json``
(written last). It is built under a temporary name (``.<name>.tmp-<pid>-...``) and renamed when complete; writing the
same name again swaps it in with two renames (the old one is moved to ``.<name>.old-<pid>`` first). Every bundle
records the run that wrote it (``run_id``, kept across resumes) and its place in that run's write order
(``sequence``), so pruning and "the newest bundle" never mix up two runs sharing a directory.

The rules that keep the newest state:

- resuming from a directory considers every complete bundle, including one left under a temporary name by a kill
  between the two renames of a swap, and takes the newest (the run written last, then that run's write order);
- a newest bundle that cannot be read falls back to the next newest, with a warning naming what was skipped;
- renames, pruning and recovery in a directory hold an exclusive lock on it, and a resume holds a shared one
  while it reads, so two writers never race a rename and no bundle is pruned while another process reads it.
"""

import contextlib
import io
import json
import os
import random
import re
import shutil
import tempfile
import time
import uuid
import warnings
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch as th
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.vec_env import VecEnv
from stable_baselines3.her.her_replay_buffer import HerReplayBuffer

from sb3_sacae.io.errors import CorruptFileError, FileMismatchError, UnsafeFileError
from sb3_sacae.io.files import atomic_write, fsync_dir, pid_alive, read_regular_file
from sb3_sacae.io.limits import MAX_METADATA_BYTES, MAX_MODEL_BYTES
from sb3_sacae.io.replay_buffers import read_replay_buffer_into, write_replay_buffer

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; one writer per directory there
    fcntl = None  # type: ignore[assignment]  # fcntl is absent on Windows: None marks the fallback

CHECKPOINT_FORMAT = "sb3_sacae.checkpoint"
CHECKPOINT_FORMAT_VERSION = 1
MODEL_FILE, BUFFER_FILE, STATE_FILE = "model.zip", "replay_buffer.npz", "state.json"
_BIT_GENERATORS = {name: getattr(np.random, name) for name in ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")}
_BUNDLE = re.compile(r".+_\d+_steps(?:-[0-9a-f]{8})?")
_TEMPORARY = re.compile(r"\.(?P<name>.+_\d+_steps(?:-[0-9a-f]{8})?)\.(?P<kind>tmp|old)-(?P<pid>\d+)(?:-.*)?")


# --- Random-number-generator states as JSON -----------------------------------------------------------------------


def _generator_state(generator: np.random.Generator) -> dict[str, Any]:
    return dict(generator.bit_generator.state)


def _generator_from_state(state: dict[str, Any]) -> np.random.Generator:
    name = state["bit_generator"]
    if name not in _BIT_GENERATORS:
        raise ValueError(f"Unknown bit generator {name!r} in checkpoint; expected one of {sorted(_BIT_GENERATORS)}")
    bit_generator = _BIT_GENERATORS[name]()
    bit_generator.state = state
    return np.random.Generator(bit_generator)


def env_rng_states(env: VecEnv) -> list[dict[str, Any] | None] | None:
    """The ``np_random`` state of each sub-environment, or None when the envs do not expose one."""
    try:
        generators = env.get_attr("np_random")
    except Exception:  # any VecEnv / env combination may lack it; env RNGs are saved only when reachable
        return None
    return [_generator_state(g) if isinstance(g, np.random.Generator) else None for g in generators]


def _check_env_rng_states(key: str, states: Any, env: VecEnv | None) -> None:
    """Check (without applying them) saved env RNG states: one per env of ``env``, each None or a generator state."""
    if states is None:
        return
    if not isinstance(states, list):
        raise TypeError(f"its env RNG states '{key}' are a {type(states).__name__}, not a list")
    if env is not None and len(states) != env.num_envs:
        raise ValueError(f"it holds {len(states)} env RNG states ('{key}') for an env of {env.num_envs} envs")
    for item in states:
        if item is not None:
            _generator_from_state(item)


def _set_env_rng_states(env: VecEnv, states: list[dict[str, Any] | None]) -> None:
    for index, state in enumerate(states):
        if state is not None:
            env.set_attr("np_random", _generator_from_state(state), indices=[index])


def global_rng_states() -> dict[str, Any]:
    """The python, numpy and torch (CPU and, when initialised, CUDA) global generator states, as JSON values."""
    numpy_state = np.random.get_state(legacy=False)
    numpy_state["state"]["key"] = numpy_state["state"]["key"].tolist()
    version, internal, gauss = random.getstate()
    states: dict[str, Any] = {
        "python": [version, list(internal), gauss],
        "numpy": numpy_state,
        "torch": th.get_rng_state().tolist(),
    }
    if th.cuda.is_available() and th.cuda.is_initialized():
        states["torch_cuda"] = [state.tolist() for state in th.cuda.get_rng_state_all()]
    return states


def _parse_global_rng_states(states: dict[str, Any]) -> Callable[[], None]:
    """Check and convert the saved global states; the returned function applies them (nothing changes before)."""
    version, internal, gauss = states["python"]
    python_state = (version, tuple(internal), gauss)
    random.Random().setstate(python_state)  # validates without touching the global generator
    numpy_state = dict(states["numpy"])
    numpy_state["state"] = {**numpy_state["state"], "key": np.array(numpy_state["state"]["key"], dtype=np.uint32)}
    np.random.RandomState().set_state(numpy_state)
    torch_state = th.tensor(states["torch"], dtype=th.uint8)
    th.Generator().set_state(torch_state)  # validates the size without touching the global generator
    cuda_states = [th.tensor(state, dtype=th.uint8) for state in states.get("torch_cuda", [])]
    if any(state.dim() != 1 for state in cuda_states):
        raise ValueError("its CUDA RNG states are not byte vectors")
    if th.cuda.is_available():
        # One per device of the machine that wrote it: those of devices this machine lacks are not restored
        cuda_states = cuda_states[: th.cuda.device_count()]
        for index, state in enumerate(cuda_states):
            th.Generator(device=f"cuda:{index}").set_state(state)  # validates without touching the device's generator

    def apply() -> None:
        random.setstate(python_state)
        np.random.set_state(numpy_state)
        th.set_rng_state(torch_state)
        if cuda_states and th.cuda.is_available():
            th.cuda.set_rng_state_all(cuda_states)

    return apply


def set_global_rng_states(states: dict[str, Any]) -> None:
    """Restore what :func:`global_rng_states` returned."""
    _parse_global_rng_states(states)()


# --- Locks and the bundles of a directory -------------------------------------------------------------------------


@contextlib.contextmanager
def directory_lock(directory: str | os.PathLike, exclusive: bool = True) -> Iterator[None]:
    """
    Hold an advisory lock on ``directory`` itself (no lock file): exclusive for renames, pruning and recovery,
    shared while a resume reads a bundle. The kernel drops it when the process dies, so a kill leaves no stale lock.
    Where locks are unavailable (Windows, some network file systems, a directory that cannot be opened), nothing
    is locked: use one writer per directory there.
    """
    fd = None
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
    try:
        if fd is not None and fcntl is not None:
            with contextlib.suppress(OSError):  # e.g. NFS, where flock needs a file opened for writing
                fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        if fd is not None:
            os.close(fd)  # releases the lock


# The run each model belongs to: {"run_id": uuid hex, "sequence": last bundle written}; set by resume_from_bundle
_RUNS: "weakref.WeakKeyDictionary[BaseAlgorithm, dict[str, Any]]" = weakref.WeakKeyDictionary()


def run_of(model: BaseAlgorithm) -> dict[str, Any]:
    """The run ``model`` belongs to: ``{"run_id": ..., "sequence": ...}`` (a new run unless it was resumed)."""
    if model not in _RUNS:
        _RUNS[model] = {"run_id": uuid.uuid4().hex, "sequence": 0}
    return _RUNS[model]


def bundle_name(name_prefix: str, num_timesteps: int, run_id: str | None = None) -> str:
    """``<name_prefix>_<num_timesteps>_steps``, with ``-<first 8 hex of run_id>`` for another run's same step."""
    return f"{name_prefix}_{num_timesteps}_steps" + (f"-{run_id[:8]}" if run_id else "")


def read_state(bundle: Path) -> dict[str, Any] | None:
    """A bundle's state.json, or None when it is missing, unreadable, not a regular file or not a JSON object."""
    try:
        state = json.loads(read_regular_file(bundle / STATE_FILE, "the bundle state", MAX_METADATA_BYTES, False))
    except (OSError, ValueError, RecursionError):  # UnsafeFileError is a ValueError
        return None
    return state if isinstance(state, dict) else None


def _write_order(state: dict[str, Any]) -> tuple[float, int, int]:
    """Sort key: wall-clock write time, then the run's sequence number (bundles from before both: the step)."""
    try:
        return (float(state.get("written_at", 0.0)), int(state.get("sequence", 0)), int(state.get("num_timesteps", 0)))
    except (TypeError, ValueError, OverflowError):
        return (0.0, 0, 0)


def _sequence(state: dict[str, Any]) -> int:
    try:
        return int(state.get("sequence", 0))
    except (TypeError, ValueError, OverflowError):
        return 0


def bundles_with_states(
    save_path: str | os.PathLike, name_prefix: str | None, include_temporaries: bool = False
) -> list[tuple[Path, dict[str, Any]]]:
    """
    Complete bundles (their state.json readable) in ``save_path``, oldest first in write order; with
    ``include_temporaries``, complete bundles left under a temporary name by a kill mid-swap too.
    """
    prefix = re.escape(name_prefix) if name_prefix is not None else r".+"
    pattern = re.compile(rf"{prefix}_\d+_steps(?:-[0-9a-f]{{8}})?")
    directory = Path(save_path)
    if not directory.is_dir():
        return []
    found = []
    for path in directory.iterdir():
        temporary = _TEMPORARY.fullmatch(path.name)
        name = temporary.group("name") if temporary else path.name
        if (temporary and not include_temporaries) or not pattern.fullmatch(name) or path.is_symlink():
            continue
        state = read_state(path) if path.is_dir() else None
        if state is not None:
            found.append((path, state))
    return sorted(found, key=lambda item: _write_order(item[1]))


def list_bundles(save_path: str | os.PathLike, name_prefix: str = "checkpoint") -> list[Path]:
    """Complete bundles in ``save_path`` written with ``name_prefix`` (by any run), oldest first in write order."""
    return [path for path, _ in bundles_with_states(save_path, name_prefix)]


def newest_first(bundles: list[tuple[Path, dict[str, Any]]]) -> list[tuple[Path, dict[str, Any]]]:
    """The run written last first, newest of its bundles first (by sequence, robust to clock jumps), then the rest."""
    if not bundles:
        return []
    latest_run = bundles[-1][1].get("run_id")
    same_run = [item for item in bundles if item[1].get("run_id") == latest_run]
    others = [item for item in bundles if item[1].get("run_id") != latest_run]
    same_run.sort(key=lambda item: (_sequence(item[1]), _write_order(item[1])), reverse=True)
    others.sort(key=lambda item: _write_order(item[1]), reverse=True)
    return same_run + others


def recover_interrupted_swaps(save_path: Path, name_prefix: str) -> None:
    """
    Clean up after writers killed mid-save (their process is gone): a complete temporary or replaced bundle whose
    final name is missing (killed between the renames of a swap) is put back, newest first; the rest is deleted.
    Call it with the directory's exclusive lock held.
    """
    found = []
    for path in save_path.iterdir():
        match = _TEMPORARY.fullmatch(path.name)
        if match and match.group("name").startswith(name_prefix + "_") and not pid_alive(int(match.group("pid"))):
            found.append((match.group("kind") != "tmp", path, match.group("name")))  # tmp (newer) first
    for _, path, name in sorted(found):
        final = save_path / name
        if not final.exists() and path.is_dir() and not path.is_symlink() and read_state(path) is not None:
            os.rename(path, final)  # state.json is written last: the bundle is complete
            fsync_dir(save_path)
        else:
            shutil.rmtree(path, ignore_errors=True)


# --- Writing ------------------------------------------------------------------------------------------------------


def save_bundle(
    model: OffPolicyAlgorithm,
    bundle_path: str | os.PathLike,
    env_rng_before_last_step: list[dict[str, Any] | None] | None = None,
    interrupted_by: str | None = None,
    other_run_suffix: bool = False,
) -> Path:
    """
    Write one checkpoint bundle for ``model`` at ``bundle_path`` (a directory, replaced atomically if it exists).

    Call it between steps (SB3 calls ``on_rollout_start`` there), not from ``on_step``: SB3 calls ``on_step``
    before it stores the step's transition and trains on it.

    :param env_rng_before_last_step: env RNG states before the last ``env.step``; they let a resume redo the
        episode-boundary reset exactly (see :func:`resume_from_bundle`)
    :param interrupted_by: name of the signal that stopped the run, recorded in ``state.json``
    :param other_run_suffix: when ``bundle_path`` holds another run's bundle, write this one beside it as
        ``<name>-<first 8 hex of the run id>`` instead of raising ``FileExistsError``
    :return: the path written
    """
    buffer = model.replay_buffer
    if buffer is None:
        raise ValueError("Cannot checkpoint a model without a replay buffer")
    bundle_path = Path(bundle_path)
    run = run_of(model)
    bundle_path.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = Path(tempfile.mkdtemp(dir=bundle_path.parent, prefix=f".{bundle_path.name}.tmp-{os.getpid()}-"))
    try:
        model.save(tmp_dir / MODEL_FILE)
        write_replay_buffer(buffer, tmp_dir / BUFFER_FILE)
        # SB3's off-policy loop does not track episode starts: the last stored transition's done flags tell
        last_dones = buffer.dones[(buffer.pos - 1) % buffer.buffer_size] if buffer.pos > 0 or buffer.full else True
        state = {
            "format": CHECKPOINT_FORMAT,
            "version": CHECKPOINT_FORMAT_VERSION,
            "algorithm": f"{type(model).__module__}.{type(model).__qualname__}",
            "num_timesteps": int(model.num_timesteps),
            "n_updates": int(model._n_updates),
            "episode_num": int(model._episode_num),
            "at_episode_boundary": bool(np.all(last_dones)),
            "interrupted_by": interrupted_by,
            "run_id": run["run_id"],
            "sequence": run["sequence"] + 1,
            "written_at": time.time(),
            "rng": {
                **global_rng_states(),
                "action_space": _generator_state(model.action_space.np_random),
                "envs": env_rng_states(model.env) if model.env is not None else None,
                "envs_before_last_step": env_rng_before_last_step,
            },
        }
        with atomic_write(tmp_dir / STATE_FILE) as file:
            file.write(json.dumps(state).encode())
        fsync_dir(tmp_dir)
        with directory_lock(bundle_path.parent):
            bundle_path = _place(tmp_dir, bundle_path, run["run_id"], other_run_suffix)
    except BaseException:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise
    run["sequence"] += 1
    return bundle_path


def _place(tmp_dir: Path, bundle_path: Path, run_id: str, other_run_suffix: bool) -> Path:
    """Rename a complete temporary bundle to its final name (the directory's exclusive lock is held)."""
    existing = read_state(bundle_path) if bundle_path.exists() else None
    if existing is not None and existing.get("run_id") != run_id:
        if not other_run_suffix:
            raise FileExistsError(
                f"{bundle_path} holds a bundle of another run ({existing.get('run_id')}); not replacing it: "
                "save this run's bundles under another name or directory"
            )
        bundle_path = bundle_path.with_name(f"{bundle_path.name}-{run_id[:8]}")
    if bundle_path.exists() or bundle_path.is_symlink():  # the same step written again (e.g. after a resume): swap
        old = bundle_path.with_name(f".{bundle_path.name}.old-{os.getpid()}")
        os.rename(bundle_path, old)
        os.rename(tmp_dir, bundle_path)  # a kill before this line leaves two complete temporaries: see resume
        fsync_dir(bundle_path.parent)
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink()
    else:
        os.rename(tmp_dir, bundle_path)
        fsync_dir(bundle_path.parent)
    return bundle_path


def prune_bundles(save_path: Path, name_prefix: str, run_id: str, keep_last: int) -> list[Path]:
    """Delete all but the newest ``keep_last`` bundles of run ``run_id`` (under the directory's exclusive lock)."""
    with directory_lock(save_path):
        own = [item for item in bundles_with_states(save_path, name_prefix) if item[1].get("run_id") == run_id]
        own.sort(key=lambda item: _sequence(item[1]))
        removed = [path for path, _ in own[:-keep_last]]
        for path in removed:
            shutil.rmtree(path, ignore_errors=True)
    return removed


# --- Resuming -----------------------------------------------------------------------------------------------------


def resume_from_bundle(
    path: str | os.PathLike,
    env: Any,
    algorithm_class: type[BaseAlgorithm],
    device: th.device | str = "auto",
    **load_kwargs: Any,
) -> BaseAlgorithm:
    """
    Rebuild a model from a checkpoint bundle so that ``learn(n, reset_num_timesteps=False)`` continues the run.

    Restores the weights, optimizers, step counters and schedules (``model.zip``), the replay buffer (checked against
    the model), and the python, numpy, torch, action-space and env random-number generators; the warm-up
    (``learning_starts``) is not repeated. The env is reset here, as SB3's ``learn()`` would: at an episode boundary
    the reset is redone from the env RNG state of the checkpointed run, so the resumed run equals an uninterrupted
    one on CPU (when the env draws from its RNG only in ``reset()``; otherwise, and for a bundle written
    mid-episode, a warning says the first resumed episode differs).

    :param path: a bundle directory, or a checkpoint directory: its newest complete bundle (also one left under a
        temporary name by a kill mid-swap) is used, falling back to the next newest with a warning when a bundle
        cannot be read
    :param env: the environment to continue training on
    :param algorithm_class: the model's class
    :param device: device for the model
    :param load_kwargs: passed to ``algorithm_class.load`` (e.g. ``trust_remote_code``). A class without sb3_sacae's
        safe loader (SB3's own ``SAC``, say) loads ``model.zip`` with SB3's cloudpickle, which runs code from the
        file: refused unless ``trust_remote_code=True``
    """
    load_kwargs = _checked_trust(algorithm_class, load_kwargs)
    path = Path(path)
    if (path / STATE_FILE).exists() or (path / STATE_FILE).is_symlink():
        with directory_lock(path.parent, exclusive=False):
            return _resume(path, env, algorithm_class, device, load_kwargs)
    if not path.is_dir():
        raise FileNotFoundError(f"No checkpoint bundle or checkpoint directory at {path}")
    with directory_lock(path, exclusive=False):  # no writer renames or prunes while the bundle is read
        candidates = newest_first(bundles_with_states(path, None, include_temporaries=True))
        readable = {bundle for bundle, _ in candidates}
        skipped = [
            f"{bundle.name} (its {STATE_FILE} cannot be read)"
            for bundle in sorted(path.iterdir())
            if _BUNDLE.fullmatch(bundle.name) and bundle not in readable
        ]
        for bundle, _ in candidates:
            try:
                model = _resume(bundle, env, algorithm_class, device, load_kwargs)
            except FileMismatchError:
                raise  # the bundle is fine but the env or class is not: an older bundle would not fit either
            except (UnsafeFileError, OSError) as error:
                skipped.append(f"{bundle.name} ({error})")
                continue
            if skipped:
                warnings.warn(f"Resumed from {bundle}, skipping bundle(s) that could not be read: " + "; ".join(skipped))
            return model
    if skipped:
        raise CorruptFileError(f"No readable checkpoint bundle in {path}; skipped: " + "; ".join(skipped))
    raise FileNotFoundError(f"No checkpoint bundle (a directory with {STATE_FILE}) in {path}")


def _checked_trust(algorithm_class: type[BaseAlgorithm], load_kwargs: dict[str, Any]) -> dict[str, Any]:
    """
    ``load_kwargs`` for ``algorithm_class.load``: a class with the safe loader takes them as given; any other loads
    the bundle's model with SB3's cloudpickle, only with ``trust_remote_code=True`` (which SB3's ``load`` does not
    take: it would set it as an attribute of the model).
    """
    if getattr(algorithm_class, "loads_safely", False) is True:  # SafeSerializationMixin's classes
        return load_kwargs
    name = f"{algorithm_class.__module__}.{algorithm_class.__qualname__}"
    if not load_kwargs.get("trust_remote_code"):
        raise UnsafeFileError(
            f"Refusing to resume with algorithm_class={name}: its load() decodes the bundle's model.zip with SB3's "
            "cloudpickle, which runs code from the file. Pass trust_remote_code=True for bundles you trust, or resume "
            "with a class that loads safely (sb3_sacae.SACAE)"
        )
    return {key: value for key, value in load_kwargs.items() if key != "trust_remote_code"}


def _check_bundle_files(bundle: Path) -> None:
    """A bundle holds regular files only: a symlink (e.g. to a device) or a FIFO is refused before reading."""
    if bundle.is_symlink():
        raise UnsafeFileError(f"Refusing the checkpoint bundle {bundle}: it is a symbolic link")
    for name in (MODEL_FILE, BUFFER_FILE, STATE_FILE):
        file = bundle / name
        if not file.is_symlink() and not file.exists():
            raise CorruptFileError(f"Refusing the checkpoint bundle {bundle}: {name} is missing")


def _resume(
    bundle: Path, env: Any, algorithm_class: type[BaseAlgorithm], device: th.device | str, load_kwargs: dict[str, Any]
) -> BaseAlgorithm:
    _check_bundle_files(bundle)
    try:
        state = json.loads(read_regular_file(bundle / STATE_FILE, "the bundle state", MAX_METADATA_BYTES, False))
    except (ValueError, RecursionError) as error:
        if isinstance(error, UnsafeFileError):
            raise
        raise CorruptFileError(f"{bundle}: {STATE_FILE} is not JSON ({error})") from error
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CorruptFileError(f"{bundle} is not an sb3_sacae checkpoint bundle (no valid {STATE_FILE})")
    if state.get("version") != CHECKPOINT_FORMAT_VERSION:
        raise FileMismatchError(f"{bundle} has checkpoint format version {state.get('version')}, this release reads 1")
    expected = f"{algorithm_class.__module__}.{algorithm_class.__qualname__}"
    if state.get("algorithm") != expected:
        raise FileMismatchError(
            f"{bundle} was written by {state.get('algorithm')}: pass algorithm_class=<that class>, not {expected}"
        )
    model_bytes = read_regular_file(bundle / MODEL_FILE, "the bundle model", MAX_MODEL_BYTES, False)
    model = algorithm_class.load(io.BytesIO(model_bytes), env=env, device=device, **load_kwargs)
    if not isinstance(model, OffPolicyAlgorithm) or model.replay_buffer is None:
        raise TypeError(f"{expected} is not an off-policy algorithm with a replay buffer")
    read_replay_buffer_into(model.replay_buffer, bundle / BUFFER_FILE, follow_symlinks=False)
    model.replay_buffer.device = model.device
    if isinstance(model.replay_buffer, HerReplayBuffer):
        # The env starts new episodes: an episode the bundle cut ends where it ends (as SB3's load_replay_buffer
        # does), so that relabelling never takes a goal from the next one; nothing changes at an episode boundary.
        # SB3's warning names an option of its load_replay_buffer, not of this function: the resume warns itself
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="The last trajectory in the replay buffer will be truncated")
            model.replay_buffer.truncate_last_trajectory()
    try:
        counters = (state["num_timesteps"], state["n_updates"], state["episode_num"])
        apply_global = _parse_global_rng_states(state["rng"])
        action_rng = _generator_from_state(state["rng"]["action_space"])
        sequence = int(state.get("sequence", 0))
        boundary = bool(state["at_episode_boundary"])
        env_states = [state["rng"].get("envs_before_last_step"), state["rng"].get("envs")]
        for key, states in zip(("envs_before_last_step", "envs"), env_states, strict=True):
            _check_env_rng_states(key, states, model.env)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, OverflowError, RuntimeError) as error:
        raise CorruptFileError(f"{bundle}: {STATE_FILE} is malformed ({type(error).__name__}: {error})") from error
    if (model.num_timesteps, model._n_updates, model._episode_num) != counters:
        raise CorruptFileError(f"{bundle}: model.zip and {STATE_FILE} disagree on the step counters; the bundle is corrupt")

    _reset_env_as_checkpointed(model, boundary, *env_states)
    apply_global()
    model.action_space._np_random = action_rng  # gymnasium spaces have no setter
    # the resumed model continues the checkpointed run: its bundles prune (and resolve) together with the earlier ones
    _RUNS[model] = {"run_id": state.get("run_id") or uuid.uuid4().hex, "sequence": sequence}
    return model


def _reset_env_as_checkpointed(
    model: OffPolicyAlgorithm,
    at_episode_boundary: bool,
    before: list[dict[str, Any] | None] | None,
    after: list[dict[str, Any] | None] | None,
) -> None:
    """Reset the env the way SB3's ``_setup_learn`` does, replaying the checkpointed run's episode-boundary reset."""
    env = model.env
    if env is None:
        raise ValueError("resume_from_bundle needs the environment to continue training on: pass env=...")
    # load() re-seeded the env (when the model has a seed): a seeded reset would restart the env's RNG stream
    env.unwrapped._reset_seeds()
    if before is not None:
        _set_env_rng_states(env, before)
    model._last_obs = env.reset()  # type: ignore[assignment]  # VecEnv.reset is typed as a union including tuples; SB3 VecEnvs return arrays or dicts
    model._last_episode_starts = np.ones((env.num_envs,), dtype=bool)
    if model._vec_normalize_env is not None:
        model._last_original_obs = model._vec_normalize_env.get_original_obs()

    exact = at_episode_boundary and before is not None and after is not None and env_rng_states(env) == after
    if after is not None:
        _set_env_rng_states(env, after)  # later episodes draw from the checkpointed run's stream either way
    if not exact:
        reason = (
            "the checkpoint was written mid-episode, and the env cannot be restored mid-episode"
            if not at_episode_boundary
            else "the env RNG states could not replay the checkpointed reset"
        )
        warnings.warn(f"Resumed with a fresh env reset: {reason}; the first resumed episode differs from the original run")


__all__ = [
    "BUFFER_FILE",
    "MODEL_FILE",
    "STATE_FILE",
    "bundle_name",
    "bundles_with_states",
    "directory_lock",
    "env_rng_states",
    "global_rng_states",
    "list_bundles",
    "newest_first",
    "prune_bundles",
    "read_state",
    "recover_interrupted_swaps",
    "resume_from_bundle",
    "run_of",
    "save_bundle",
    "set_global_rng_states",
]
