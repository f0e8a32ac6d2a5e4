"""What ``--algo sacae -optimize`` adds to rl_zoo3's Optuna search (installed by :mod:`sb3_sacae.zoo.cli`).

* **Your search space.** A config entry's ``search_space`` mapping (or ``--hyperparams search_space:"dict(...)"``)
  bounds, narrows or fixes any parameter the sampler draws (:func:`sb3_sacae.zoo.sampler.sample_search_space`), and
  a searched constructor argument given with ``--hyperparams`` (``batch_size:64``, ``policy_kwargs:"dict(net_arch=
  [64, 64])"``) is fixed to that value. ``search_space`` never reaches the SACAE constructor.
* **A configuration error stops the search at the first trial** with the real cause (Optuna logs its traceback,
  then one line),
  instead of failing every trial and crashing at ``study.best_trial`` with "No trials are completed yet"; when every
  trial failed for reasons that depend on the sample (out of memory, divergence), one line lists them.
* **The evaluation env gets the config's** ``env_kwargs`` (rl_zoo3 gives them to the training env only, unless
  ``--env-kwargs`` is on the command line).
* **Workers started together on a fresh database** (``--storage postgresql+psycopg2://...``) do not race to
  create Optuna's tables: the tables are created before the study, and a worker that loses the race retries.
"""

from __future__ import annotations

import functools
import random
import time
from collections import Counter
from types import ModuleType
from typing import Any

ALGO = "sacae"
SCHEMA_ATTEMPTS = 8


def patch_experiment_manager(exp_manager: ModuleType) -> None:
    """Wrap ``ExperimentManager`` (idempotent); every wrapper leaves other algorithms to rl_zoo3 untouched."""
    manager_cls = exp_manager.ExperimentManager
    if getattr(manager_cls, "_sb3_sacae_search", False):
        return
    original_preprocess = manager_cls._preprocess_hyperparams
    original_objective = manager_cls.objective
    original_optimization = manager_cls.hyperparameters_optimization

    @functools.wraps(original_preprocess)
    def _preprocess_hyperparams(self: Any, hyperparams: dict[str, Any]) -> Any:
        if self.algo != ALGO:
            return original_preprocess(self, hyperparams)
        if "search_space" in hyperparams:
            hyperparams = dict(hyperparams)
            self._sacae_search_space = hyperparams.pop("search_space")  # the sampler's, not a constructor argument
        from_config = "env_kwargs" in hyperparams  # rl_zoo3 pops it
        result = original_preprocess(self, hyperparams)
        if getattr(self, "_eval_env_kwargs_args", None) is None and from_config:
            # Upstream: rl_zoo3 2.9.2 rebinds self.env_kwargs to the config's env_kwargs here but leaves the
            # evaluation env's kwargs empty unless --env-kwargs is given: a config's image_size then gives the
            # evaluation env (EvalCallback, every Optuna trial) other observations than the training env.
            self.eval_env_kwargs = self.env_kwargs
        return result

    @functools.wraps(original_objective)
    def objective(self: Any, trial: Any) -> float:
        if self.algo != ALGO:
            return original_objective(self, trial)
        from sb3_sacae.zoo.sampler import search_settings

        fixed = dict(self.custom_hyperparams or {})
        with search_settings(getattr(self, "_sacae_search_space", None), fixed):
            return original_objective(self, trial)

    @functools.wraps(original_optimization)
    def hyperparameters_optimization(self: Any) -> None:
        if self.algo != ALGO:
            return original_optimization(self)
        from sb3_sacae.zoo.sampler import SearchConfigurationError, failed_trial_reasons

        if is_rdb_url(self.storage):
            create_tables(self.storage)
        already_failed = len(failed_trial_reasons())
        try:
            return original_optimization(self)
        except SearchConfigurationError as error:  # Optuna has logged the cause with its traceback
            raise SystemExit(f"sb3-sacae: the search stopped. {error}") from None
        except ValueError as error:
            if "No trials are completed yet" not in str(error):
                raise
            raise SystemExit(all_trials_failed(failed_trial_reasons()[already_failed:])) from None

    manager_cls._preprocess_hyperparams = _preprocess_hyperparams
    manager_cls.objective = objective
    manager_cls.hyperparameters_optimization = hyperparameters_optimization
    manager_cls._sb3_sacae_search = True


def all_trials_failed(reasons: list[str]) -> str:
    """One line: no trial completed, and why the trials of this process failed (most frequent first)."""
    if not reasons:  # rl_zoo3 prunes a trial whose learn() raised ValueError / AssertionError, and prints why
        return (
            "sb3-sacae: no trial completed, so there is no best trial: every trial was pruned (rl_zoo3 prunes a trial "
            "whose training raises ValueError or AssertionError; the reasons are printed above)"
        )
    counted = Counter(reason.splitlines()[0][:200] for reason in reasons)
    listed = "; ".join(f"{reason} (x{count})" if count > 1 else reason for reason, count in counted.most_common(3))
    return (
        f"sb3-sacae: no trial completed, so there is no best trial: {listed}. Narrow the search space (search_space "
        "in the config, or --hyperparams) or give the trials more memory"
    )


def is_rdb_url(storage: Any) -> bool:
    return isinstance(storage, str) and "://" in storage and not storage.startswith(("redis://", "rediss://"))


def create_tables(url: str, attempts: int = SCHEMA_ATTEMPTS) -> None:
    """Create Optuna's tables in the database at ``url`` (nothing when they exist), retrying a lost race.

    Workers started together on a fresh database all try to create the same tables; all but one fail with an
    integrity or "already exists" error from the database. Such a worker waits a moment and tries again, by which
    time the tables exist.
    """
    import optuna

    for attempt in range(1, attempts + 1):
        try:
            optuna.storages.RDBStorage(url).remove_session()
            return
        except Exception as error:
            if attempt == attempts or not _is_creation_race(error):
                raise
            time.sleep(random.uniform(0.2, 0.6) * attempt)


def _is_creation_race(error: BaseException) -> bool:
    """Errors of two processes creating one schema (SQLAlchemy / psycopg / Optuna wrap them differently)."""
    current: BaseException | None = error
    while current is not None:
        text = f"{type(current).__name__}: {current}".lower()
        if any(word in text for word in ("integrityerror", "already exists", "duplicate", "uniqueviolation")):
            return True
        current = current.__cause__ or current.__context__
    return False
