"""
Crash-proof checkpoints: one bundle (model, replay buffer, counters, random-number-generator states) every N steps,
a final one on SIGTERM / SIGINT, and an exact resume.

A bundle is a directory ``<name_prefix>_<num_timesteps>_steps/`` holding ``model.zip``, ``replay_buffer.npz`` and
``state.json``; it is written under a temporary name and renamed when complete, so a kill mid-write leaves only
complete bundles behind.
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
import warnings
from pathlib import Path
from types import FrameType
from typing import Any

import numpy as np
import torch as th
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.vec_env import VecEnv

from sb3_sacae.serialization import _fsync_dir, atomic_write, read_replay_buffer_into, write_replay_buffer

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


def _bundle_name(name_prefix: str, num_timesteps: int) -> str:
    return f"{name_prefix}_{num_timesteps}_steps"


def list_bundles(save_path: str | os.PathLike, name_prefix: str = "checkpoint") -> list[Path]:
    """Complete bundles in ``save_path`` written with ``name_prefix``, oldest first."""
    pattern = re.compile(rf"{re.escape(name_prefix)}_(\d+)_steps")
    found = []
    for path in Path(save_path).glob(f"{name_prefix}_*_steps"):
        match = pattern.fullmatch(path.name)
        if match and (path / STATE_FILE).is_file():
            found.append((int(match.group(1)), path))
    return [path for _, path in sorted(found)]


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
    return bundle_path


def _resolve_bundle(path: str | os.PathLike) -> Path:
    path = Path(path)
    if (path / STATE_FILE).is_file():
        return path
    bundles = sorted(
        (p for p in path.glob("*_steps") if (p / STATE_FILE).is_file()),
        key=lambda p: json.loads((p / STATE_FILE).read_text())["num_timesteps"],
    )
    if not bundles:
        raise FileNotFoundError(f"No checkpoint bundle (a directory with {STATE_FILE}) at {path}")
    return bundles[-1]


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

    :param save_freq: environment steps between bundles
    :param save_path: directory for the bundles
    :param keep_last: how many bundles to keep (older ones are deleted once a newer one is complete)
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
        self._previous_handlers: dict[int, Any] = {}
        self._env_rng_before_step: list[dict[str, Any] | None] | None = None

    def _on_training_start(self) -> None:
        if not isinstance(self.model, OffPolicyAlgorithm):
            raise TypeError("CheckpointBundleCallback needs an off-policy algorithm (one with a replay buffer)")
        self.save_path.mkdir(parents=True, exist_ok=True)
        self._remove_stale_temporaries()
        self._next_save = (self.num_timesteps // self.save_freq + 1) * self.save_freq
        self._due = False
        self._signal = None
        if self.handle_signals and threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGTERM, signal.SIGINT):
                self._previous_handlers[signum] = signal.signal(signum, self._on_signal)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
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
            self._restore_signal_handlers()

    def _checkpoint_if_needed(self) -> None:
        if not (self._due or self._signal is not None):
            return
        signame = signal.Signals(self._signal).name if self._signal is not None else None
        path = save_bundle(
            self.model,  # type: ignore[arg-type]
            self.save_path / _bundle_name(self.name_prefix, self.num_timesteps),
            env_rng_before_last_step=self._env_rng_before_step,
            interrupted_by=signame,
        )
        self._due = False
        self._prune()
        if self.verbose >= 1:
            print(f"Checkpoint bundle written to {path}")
        if self._signal is not None:
            self._restore_signal_handlers()
            message = (
                f"Training interrupted by {signame} at step {self.num_timesteps}; checkpoint written to {path}. "
                f"Resume with sb3_sacae.callbacks.resume_from_bundle('{path}', env) and "
                "learn(..., reset_num_timesteps=False)"
            )
            print(message, file=sys.stderr, flush=True)
            raise TrainingInterrupted(self._signal, message)

    def _prune(self) -> None:
        for old in list_bundles(self.save_path, self.name_prefix)[: -self.keep_last]:
            shutil.rmtree(old)

    def _remove_stale_temporaries(self) -> None:
        """Delete half-written bundles left by killed runs (their process is gone)."""
        pattern = re.compile(rf"\.{re.escape(self.name_prefix)}_\d+_steps\.(?:tmp|old)-(\d+)(?:-.*)?")
        for path in self.save_path.iterdir():
            match = pattern.fullmatch(path.name)
            if match and not _process_alive(int(match.group(1))):
                shutil.rmtree(path, ignore_errors=True)

    def _restore_signal_handlers(self) -> None:
        for signum, handler in self._previous_handlers.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
        self._previous_handlers.clear()


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


__all__ = [
    "CheckpointBundleCallback",
    "TrainingInterrupted",
    "list_bundles",
    "resume_from_bundle",
    "save_bundle",
]
