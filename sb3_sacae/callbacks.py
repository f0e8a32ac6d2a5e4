"""
Crash-proof checkpoints: one bundle (model, replay buffer, counters, random-number-generator states) every N steps,
a final one on SIGTERM / SIGINT, and an exact resume.

A bundle is a directory ``<name_prefix>_<num_timesteps>_steps/`` holding ``model.zip``, ``replay_buffer.npz`` and
``state.json``; it is written under a temporary name and renamed when complete, so a kill mid-write leaves only
complete bundles behind.

Every bundle records the run that wrote it (``run_id``, a uuid kept across resumes) and its place in that run's
write order (``sequence``), so keep-last-K pruning and "the newest bundle of a directory" never mix up two runs that
share a directory (a bundle of another run at the same step is written as ``<name>-<first 8 hex of the run id>``).
"""

import json
import os
import random
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
import uuid
import warnings
import weakref
from pathlib import Path
from types import FrameType
from typing import Any

import numpy as np
import torch as th
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.vec_env import VecEnv

from sb3_sacae.io.files import atomic_write, pid_alive
from sb3_sacae.io.files import fsync_dir as _fsync_dir
from sb3_sacae.io.replay_buffers import read_replay_buffer_into, write_replay_buffer

CHECKPOINT_FORMAT = "sb3_sacae.checkpoint"
CHECKPOINT_FORMAT_VERSION = 1
MODEL_FILE, BUFFER_FILE, STATE_FILE = "model.zip", "replay_buffer.npz", "state.json"
_BIT_GENERATORS = {name: getattr(np.random, name) for name in ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")}


class TrainingInterrupted(SystemExit):
    """Raised out of ``learn()`` after SIGTERM / SIGINT, once the final checkpoint is written; exit status 128+signal."""

    def __init__(self, signum: int, message: str):
        super().__init__(128 + signum)
        self.message = message

    def __str__(self) -> str:
        return self.message


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


def _set_env_rng_states(env: VecEnv, states: list[dict[str, Any] | None]) -> None:
    for index, state in enumerate(states):
        if state is not None:
            env.set_attr("np_random", _generator_from_state(state), indices=[index])


def global_rng_states() -> dict[str, Any]:
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


def set_global_rng_states(states: dict[str, Any]) -> None:
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
    numpy_state = dict(states["numpy"])
    numpy_state["state"] = {**numpy_state["state"], "key": np.array(numpy_state["state"]["key"], dtype=np.uint32)}
    np.random.set_state(numpy_state)
    th.set_rng_state(th.tensor(states["torch"], dtype=th.uint8))
    if "torch_cuda" in states and th.cuda.is_available():
        th.cuda.set_rng_state_all([th.tensor(state, dtype=th.uint8) for state in states["torch_cuda"]])


# --- Writing and finding bundles ----------------------------------------------------------------------------------

# The run each model belongs to: {"run_id": uuid hex, "sequence": last bundle written}; set by resume_from_bundle
_RUNS: "weakref.WeakKeyDictionary[BaseAlgorithm, dict[str, Any]]" = weakref.WeakKeyDictionary()


def _run_of(model: BaseAlgorithm) -> dict[str, Any]:
    if model not in _RUNS:
        _RUNS[model] = {"run_id": uuid.uuid4().hex, "sequence": 0}
    return _RUNS[model]


def _bundle_name(name_prefix: str, num_timesteps: int, run_id: str | None = None) -> str:
    return f"{name_prefix}_{num_timesteps}_steps" + (f"-{run_id[:8]}" if run_id else "")


def _read_state(bundle: Path) -> dict[str, Any] | None:
    """A bundle's state.json, or None when it is missing or unreadable."""
    try:
        state = json.loads((bundle / STATE_FILE).read_text())
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) else None


def _write_order(state: dict[str, Any]) -> tuple[float, int, int]:
    """Sort key: wall-clock write time, then the run's sequence number (bundles from before both: the step)."""
    return (float(state.get("written_at", 0.0)), int(state.get("sequence", 0)), int(state.get("num_timesteps", 0)))


def _bundles_with_states(save_path: str | os.PathLike, name_prefix: str | None) -> list[tuple[Path, dict[str, Any]]]:
    prefix = re.escape(name_prefix) if name_prefix is not None else r".+"
    pattern = re.compile(rf"{prefix}_\d+_steps(?:-[0-9a-f]{{8}})?")
    found = []
    directory = Path(save_path)
    if not directory.is_dir():
        return []
    for path in directory.iterdir():
        if pattern.fullmatch(path.name) and path.is_dir():
            state = _read_state(path)
            if state is not None:
                found.append((path, state))
    return sorted(found, key=lambda item: _write_order(item[1]))


def list_bundles(save_path: str | os.PathLike, name_prefix: str = "checkpoint") -> list[Path]:
    """Complete bundles in ``save_path`` written with ``name_prefix`` (by any run), oldest first in write order."""
    return [path for path, _ in _bundles_with_states(save_path, name_prefix)]


def save_bundle(
    model: OffPolicyAlgorithm,
    bundle_path: str | os.PathLike,
    env_rng_before_last_step: list[dict[str, Any] | None] | None = None,
    interrupted_by: str | None = None,
) -> Path:
    """
    Write one checkpoint bundle for ``model`` at ``bundle_path`` (a directory, replaced atomically if it exists).

    Call it between steps (SB3 calls ``on_rollout_start`` there), not from ``on_step``: SB3 calls ``on_step``
    before it stores the step's transition and trains on it.

    :param env_rng_before_last_step: env RNG states before the last ``env.step``; they let a resume redo the
        episode-boundary reset exactly (see :func:`resume_from_bundle`)
    :param interrupted_by: name of the signal that stopped the run, recorded in ``state.json``
    """
    buffer = model.replay_buffer
    if buffer is None:
        raise ValueError("Cannot checkpoint a model without a replay buffer")
    bundle_path = Path(bundle_path)
    run = _run_of(model)
    existing = _read_state(bundle_path) if bundle_path.exists() else None
    if existing is not None and existing.get("run_id") != run["run_id"]:
        raise FileExistsError(
            f"{bundle_path} holds a bundle of another run ({existing.get('run_id')}); not replacing it: "
            "save this run's bundles under another name or directory"
        )
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
        _fsync_dir(tmp_dir)
        if bundle_path.exists():  # the same step written again (e.g. after a resume): swap, then drop the old one
            old = bundle_path.with_name(f".{bundle_path.name}.old-{os.getpid()}")
            os.rename(bundle_path, old)
            os.rename(tmp_dir, bundle_path)
            shutil.rmtree(old)
        else:
            os.rename(tmp_dir, bundle_path)
        _fsync_dir(bundle_path.parent)
    except BaseException:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise
    run["sequence"] += 1
    return bundle_path


def _resolve_bundle(path: str | os.PathLike) -> Path:
    """A bundle directory as is; for a checkpoint directory, the last bundle written by the last run that wrote one."""
    path = Path(path)
    if (path / STATE_FILE).is_file():
        return path
    bundles = _bundles_with_states(path, None)
    if not bundles:
        raise FileNotFoundError(f"No checkpoint bundle (a directory with {STATE_FILE}) at {path}")
    latest_run = bundles[-1][1].get("run_id")
    same_run = [(p, state) for p, state in bundles if state.get("run_id") == latest_run]
    # within one run the sequence number is the write order even if the wall clock jumped
    return max(same_run, key=lambda item: (int(item[1].get("sequence", 0)), _write_order(item[1])))[0]


def resume_from_bundle(
    path: str | os.PathLike,
    env: Any,
    algorithm_class: type[BaseAlgorithm] | None = None,
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

    :param path: a bundle directory, or a checkpoint directory (its bundle with the most steps is used)
    :param env: the environment to continue training on
    :param algorithm_class: the model's class (default: :class:`sb3_sacae.SACAE`)
    :param device: device for the model
    :param load_kwargs: passed to ``algorithm_class.load`` (e.g. ``trust_remote_code``)
    """
    bundle = _resolve_bundle(path)
    state = json.loads((bundle / STATE_FILE).read_text())
    if state.get("format") != CHECKPOINT_FORMAT or state.get("version") != CHECKPOINT_FORMAT_VERSION:
        raise ValueError(f"{bundle} is not an sb3_sacae checkpoint bundle (format {state.get('format')})")
    if algorithm_class is None:
        from sb3_sacae.sacae import SACAE

        algorithm_class = SACAE
    expected = f"{algorithm_class.__module__}.{algorithm_class.__qualname__}"
    if state["algorithm"] != expected:
        raise ValueError(f"{bundle} was written by {state['algorithm']}: pass algorithm_class=<that class>, not {expected}")

    model = algorithm_class.load(bundle / MODEL_FILE, env=env, device=device, **load_kwargs)
    if not isinstance(model, OffPolicyAlgorithm) or model.replay_buffer is None:
        raise TypeError(f"{expected} is not an off-policy algorithm with a replay buffer")
    read_replay_buffer_into(model.replay_buffer, bundle / BUFFER_FILE)
    model.replay_buffer.device = model.device
    counters = (model.num_timesteps, model._n_updates, model._episode_num)
    if counters != (state["num_timesteps"], state["n_updates"], state["episode_num"]):
        raise ValueError(f"{bundle}: model.zip and {STATE_FILE} disagree on the step counters; the bundle is corrupt")

    _reset_env_as_checkpointed(model, state)
    rng = state["rng"]
    set_global_rng_states(rng)
    model.action_space._np_random = _generator_from_state(rng["action_space"])  # gymnasium spaces have no setter
    # the resumed model continues the checkpointed run: its bundles prune (and resolve) together with the earlier ones
    _RUNS[model] = {"run_id": state.get("run_id") or uuid.uuid4().hex, "sequence": int(state.get("sequence", 0))}
    return model


def _reset_env_as_checkpointed(model: OffPolicyAlgorithm, state: dict[str, Any]) -> None:
    """Reset the env the way SB3's ``_setup_learn`` does, replaying the checkpointed run's episode-boundary reset."""
    env = model.env
    if env is None:
        raise ValueError("resume_from_bundle needs the environment to continue training on: pass env=...")
    # load() re-seeded the env (when the model has a seed): a seeded reset would restart the env's RNG stream
    env.unwrapped._reset_seeds()  # type: ignore[attr-defined]
    rng = state["rng"]
    before, after = rng.get("envs_before_last_step"), rng.get("envs")
    if before is not None:
        _set_env_rng_states(env, before)
    model._last_obs = env.reset()  # type: ignore[assignment]
    model._last_episode_starts = np.ones((env.num_envs,), dtype=bool)
    if model._vec_normalize_env is not None:
        model._last_original_obs = model._vec_normalize_env.get_original_obs()

    exact = state["at_episode_boundary"] and before is not None and after is not None and env_rng_states(env) == after
    if after is not None:
        _set_env_rng_states(env, after)  # later episodes draw from the checkpointed run's stream either way
    if not exact:
        reason = (
            "the checkpoint was written mid-episode, and the env cannot be restored mid-episode"
            if not state["at_episode_boundary"]
            else "the env RNG states could not replay the checkpointed reset"
        )
        warnings.warn(f"Resumed with a fresh env reset: {reason}; the first resumed episode differs from the original run")


# --- The callback -------------------------------------------------------------------------------------------------


class CheckpointBundleCallback(BaseCallback):
    """
    Write a checkpoint bundle every ``save_freq`` environment steps, keep the last ``keep_last``, and on SIGTERM or
    SIGINT write a final one and stop with :class:`TrainingInterrupted` (exit status 128 + signal number).

    Bundles are written at the first step boundary after each multiple of ``save_freq`` timesteps (counted by
    ``model.num_timesteps``, so a resumed run keeps the same schedule); at that point the last transition is stored
    and trained on, which makes the bundle a consistent state to resume from (:func:`resume_from_bundle`).
    Usable from rl_zoo3: ``callback: [{sb3_sacae.callbacks.CheckpointBundleCallback: {save_freq: 10000, ...}}]``.

    ``keep_last`` counts this run's bundles only (a resumed run continues the run it resumed); bundles of other runs
    in ``save_path`` are never deleted, and a warning says when they have more steps than this run.

    A signal is acted on at the next rollout boundary (after at most ``train_freq`` steps and their gradient steps),
    not by returning False from ``on_step``: SB3 then drops the step it has just taken without storing it, so the
    final bundle could not resume the run exactly. After ``learn()`` has ended (also by an exception, when SB3 skips
    ``on_training_end``), the handlers hand any signal to the handler they replaced and restore it.

    :param save_freq: environment steps between bundles
    :param save_path: directory for the bundles
    :param keep_last: how many of this run's bundles to keep (older ones are deleted once a newer one is complete)
    :param name_prefix: bundle names are ``<name_prefix>_<num_timesteps>_steps``
    :param handle_signals: install SIGTERM / SIGINT handlers during ``learn()`` (main thread only)
    :param verbose: 1 prints where each bundle is written
    """

    def __init__(
        self,
        save_freq: int,
        save_path: str | os.PathLike,
        keep_last: int = 3,
        name_prefix: str = "checkpoint",
        handle_signals: bool = True,
        verbose: int = 0,
    ):
        super().__init__(verbose)
        if int(save_freq) < 1:
            raise ValueError(f"save_freq must be a positive number of steps, got {save_freq}")
        if int(keep_last) < 1:
            raise ValueError(f"keep_last must be at least 1 (the newest bundle), got {keep_last}")
        self.save_freq = int(save_freq)
        self.save_path = Path(save_path)
        self.keep_last = int(keep_last)
        self.name_prefix = name_prefix
        self.handle_signals = handle_signals
        self._next_save = 0
        self._due = False
        self._signal: int | None = None
        self._in_learn = False
        self._previous_handlers: dict[int, Any] = {}
        self._env_rng_before_step: list[dict[str, Any] | None] | None = None

    def _on_training_start(self) -> None:
        if not isinstance(self.model, OffPolicyAlgorithm):
            raise TypeError("CheckpointBundleCallback needs an off-policy algorithm (one with a replay buffer)")
        self.save_path.mkdir(parents=True, exist_ok=True)
        self._recover_interrupted_swaps()
        self._check_other_runs()
        self._next_save = (self.num_timesteps // self.save_freq + 1) * self.save_freq
        self._due = False
        self._signal = None
        self._in_learn = True
        if self.handle_signals and threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGTERM, signal.SIGINT):
                # still installed when an earlier learn() raised: keep the handler that was there before it
                if signal.getsignal(signum) != self._on_signal:
                    self._previous_handlers[signum] = signal.signal(signum, self._on_signal)

    def _inside_learn(self, frame: FrameType | None) -> bool:
        """Whether the interrupted code runs inside this model's ``learn()`` (False once it returned or raised)."""
        if not self._in_learn:
            return False
        while frame is not None:
            if frame.f_code.co_name == "learn" and frame.f_locals.get("self") is self.model:
                return True
            frame = frame.f_back
        return False

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if not self._inside_learn(frame if frame is not None else sys._getframe(1)):
            # learn() is over (it raised past on_training_end): behave as if never installed
            self._in_learn = False
            previous = self._previous_handlers.get(signum)
            self._restore_signal_handlers()
            if callable(previous):
                previous(signum, frame)
            elif previous != signal.SIG_IGN:
                signal.signal(signum, signal.SIG_DFL)
                os.kill(os.getpid(), signum)
            return
        # Only note it: the bundle is written at the next step boundary, outside the signal handler.
        self._signal = signum
        # A second signal gets the previous behaviour (e.g. Ctrl-C twice stops at once)
        signal.signal(signum, self._previous_handlers.get(signum) or signal.SIG_DFL)

    def _on_step(self) -> bool:
        if self.num_timesteps >= self._next_save:
            self._due = True
            self._next_save = (self.num_timesteps // self.save_freq + 1) * self.save_freq
        return True

    def _on_rollout_start(self) -> None:
        # Between steps: the previous step is stored and trained on, the next one not taken yet
        self._checkpoint_if_needed()
        self._env_rng_before_step = env_rng_states(self.training_env)

    def _on_training_end(self) -> None:
        try:
            self._checkpoint_if_needed()
        finally:
            self._in_learn = False
            self._restore_signal_handlers()

    def _checkpoint_if_needed(self) -> None:
        if not (self._due or self._signal is not None):
            return
        signame = signal.Signals(self._signal).name if self._signal is not None else None
        run_id = _run_of(self.model)["run_id"]
        path = self.save_path / _bundle_name(self.name_prefix, self.num_timesteps)
        existing = _read_state(path) if path.exists() else None
        if existing is not None and existing.get("run_id") != run_id:
            path = self.save_path / _bundle_name(self.name_prefix, self.num_timesteps, run_id)  # keep the other run's
        path = save_bundle(
            self.model,  # type: ignore[arg-type]
            path,
            env_rng_before_last_step=self._env_rng_before_step,
            interrupted_by=signame,
        )
        self._due = False
        self._prune()
        if self.verbose >= 1:
            print(f"Checkpoint bundle written to {path}")
        if self._signal is not None:
            self._in_learn = False
            self._restore_signal_handlers()
            message = (
                f"Training interrupted by {signame} at step {self.num_timesteps}; checkpoint written to {path}. "
                f"Resume with sb3_sacae.callbacks.resume_from_bundle('{path}', env) and "
                "learn(..., reset_num_timesteps=False)"
            )
            print(message, file=sys.stderr, flush=True)
            raise TrainingInterrupted(self._signal, message)

    def _own_bundles(self) -> list[tuple[Path, dict[str, Any]]]:
        run_id = _run_of(self.model)["run_id"]
        bundles = _bundles_with_states(self.save_path, self.name_prefix)
        return sorted((b for b in bundles if b[1].get("run_id") == run_id), key=lambda b: int(b[1].get("sequence", 0)))

    def _prune(self) -> None:
        for old, _ in self._own_bundles()[: -self.keep_last]:
            shutil.rmtree(old)

    def _check_other_runs(self) -> None:
        """Continue this run's sequence numbers after its bundles here; warn about other runs' bundles ahead of it."""
        run = _run_of(self.model)
        own = self._own_bundles()
        if own:
            run["sequence"] = max(run["sequence"], int(own[-1][1].get("sequence", 0)))
        ahead = [
            (path, state)
            for path, state in _bundles_with_states(self.save_path, self.name_prefix)
            if state.get("run_id") != run["run_id"] and int(state.get("num_timesteps", 0)) > self.num_timesteps
        ]
        if ahead:
            most = max(int(state.get("num_timesteps", 0)) for _, state in ahead)
            warnings.warn(
                f"{self.save_path} holds {len(ahead)} checkpoint bundle(s) of another run, up to step {most}, ahead of "
                f"this run (step {self.num_timesteps}). They are kept (keep_last counts this run's bundles only) and "
                "resume_from_bundle on the directory picks the run written last; to resume the other run, pass its "
                "bundle to resume_from_bundle, or give each run its own save_path"
            )

    def _recover_interrupted_swaps(self) -> None:
        """
        Clean up after runs killed mid-save (their process is gone): a complete temporary or replaced bundle whose
        final directory is missing (killed between the renames of a swap) is put back; anything else is deleted.
        """
        pattern = re.compile(
            rf"\.(?P<name>{re.escape(self.name_prefix)}_\d+_steps(?:-[0-9a-f]{{8}})?)\.(?P<kind>tmp|old)-(?P<pid>\d+)(?:-.*)?"
        )
        found = []
        for path in self.save_path.iterdir():
            match = pattern.fullmatch(path.name)
            if match and not pid_alive(int(match.group("pid"))):
                found.append((match.group("kind") != "tmp", path, match.group("name")))  # tmp (newer) first
        for _, path, name in sorted(found):
            final = self.save_path / name
            if not final.exists() and path.is_dir() and _read_state(path) is not None:
                os.rename(path, final)  # state.json is written last: the bundle is complete
                _fsync_dir(self.save_path)
            else:
                shutil.rmtree(path, ignore_errors=True)

    def _restore_signal_handlers(self) -> None:
        for signum, handler in self._previous_handlers.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
        self._previous_handlers.clear()


__all__ = [
    "CheckpointBundleCallback",
    "TrainingInterrupted",
    "list_bundles",
    "resume_from_bundle",
    "save_bundle",
]
