"""
Crash-proof checkpoints during training: :class:`CheckpointBundleCallback` writes one bundle (model, replay buffer,
counters, random-number-generator states; see :mod:`sb3_sacae.checkpoints`) every N steps and a final one on
SIGTERM / SIGINT, and :func:`resume_from_bundle` continues the run exactly.
"""

import os
import signal
import sys
import threading
import warnings
from pathlib import Path
from types import FrameType
from typing import Any

from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm

from sb3_sacae import checkpoints
from sb3_sacae.checkpoints import (
    bundle_name,
    bundles_with_states,
    directory_lock,
    env_rng_states,
    list_bundles,
    prune_bundles,
    recover_interrupted_swaps,
    run_of,
    save_bundle,
)


class TrainingInterrupted(SystemExit):
    """Raised out of ``learn()`` after SIGTERM / SIGINT, once the final checkpoint is written; exit status 128+signal."""

    def __init__(self, signum: int, message: str):
        super().__init__(128 + signum)
        self.message = message

    def __str__(self) -> str:
        return self.message


def resume_from_bundle(
    path: str | os.PathLike,
    env: Any,
    algorithm_class: type[BaseAlgorithm] | None = None,
    device: Any = "auto",
    **load_kwargs: Any,
) -> BaseAlgorithm:
    """
    Rebuild a model from a checkpoint bundle (or the newest readable bundle of a checkpoint directory) so that
    ``learn(n, reset_num_timesteps=False)`` continues the run: see :func:`sb3_sacae.checkpoints.resume_from_bundle`.

    :param algorithm_class: the model's class (default: :class:`sb3_sacae.SACAE`)
    """
    if algorithm_class is None:
        from sb3_sacae.sacae import SACAE

        algorithm_class = SACAE
    return checkpoints.resume_from_bundle(path, env, algorithm_class, device=device, **load_kwargs)


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
        path = save_bundle(
            self.model,  # type: ignore[arg-type]  # BaseCallback types model as BaseAlgorithm; the bundle callback runs on off-policy models
            self.save_path / bundle_name(self.name_prefix, self.num_timesteps),
            env_rng_before_last_step=self._env_rng_before_step,
            interrupted_by=signame,
            other_run_suffix=True,  # another run's bundle at this step is kept: this one goes beside it
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
        run_id = run_of(self.model)["run_id"]
        bundles = bundles_with_states(self.save_path, self.name_prefix)
        return sorted((b for b in bundles if b[1].get("run_id") == run_id), key=lambda b: int(b[1].get("sequence", 0)))

    def _prune(self) -> None:
        prune_bundles(self.save_path, self.name_prefix, run_of(self.model)["run_id"], self.keep_last)

    def _check_other_runs(self) -> None:
        """Continue this run's sequence numbers after its bundles here; warn about other runs' bundles ahead of it."""
        run = run_of(self.model)
        own = self._own_bundles()
        if own:
            run["sequence"] = max(run["sequence"], int(own[-1][1].get("sequence", 0)))
        ahead = [
            (path, state)
            for path, state in bundles_with_states(self.save_path, self.name_prefix)
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
        """Put back bundles of writers killed mid-swap and delete their incomplete temporaries (see checkpoints)."""
        with directory_lock(self.save_path):
            recover_interrupted_swaps(self.save_path, self.name_prefix)

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
