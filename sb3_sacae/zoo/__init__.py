"""SACAE in the RL Zoo (rl_zoo3), its Optuna searches and Hugging Face Hub sharing.

After a normal ``pip install`` the start-up hook (``sb3_sacae_zoo.pth``, see :mod:`sb3_sacae.zoo._hook`)
calls into this module as soon as rl_zoo3 is imported, so ``python -m rl_zoo3.train --algo sacae`` just works.
Where the hook is absent (editable installs, ``python -S``), call :func:`register` yourself or use the
launcher ``python -m sb3_sacae.zoo <train|enjoy|record_video|plots|push_to_hub|load_from_hub> ...``.

:func:`register` is idempotent and does, with a comment linking each upstream bug (docs/guide/zoo.md lists the
changes module by module):

* ``rl_zoo3.utils``: ``get_model_path`` / ``get_saved_hyperparams`` / ``create_test_env`` wrapped so that a log
  folder of ``--algo sacae`` is read without running code (:mod:`sb3_sacae.zoo.safety`); other algorithms keep
  rl_zoo3's functions unless ``SB3_SACAE_ZOO_ALL_ALGOS=1``;
* ``rl_zoo3.utils.ALGOS["sacae"] = SACAE`` and the pixel environment ids (``import sb3_sacae.envs``);
* ``HYPERPARAMS_SAMPLER["sacae"]`` / ``HYPERPARAMS_CONVERTER["sacae"]`` (:mod:`sb3_sacae.zoo.sampler`);
* ``ExperimentManager`` (:data:`_MANAGER_PATCHES`): the default config of ``--algo sacae`` is
  :data:`HYPERPARAMS_PATH` (shipped in the wheel) instead of ``rl_zoo3/hyperparams/sacae.yml``; ``--trial-id 0``
  is honoured; a SACAE trial that raises (``RuntimeError`` / CUDA out of memory, ``MemoryError``,
  ``FloatingPointError`` from the NaN guard, anything but ``optuna.TrialPruned``, ``KeyboardInterrupt``,
  ``SystemExit``) is marked failed with its reason in ``trial.user_attrs["fail_reason"]``, its envs closed, while
  the study goes on; an RDB ``--storage`` URL gets Optuna's heartbeat so that a killed worker's trial does not stay
  RUNNING forever; the ``vecnormalize.pkl`` beside ``-i model.zip`` is loaded only when normalizing, and gated.

A security-relevant patch that cannot apply fails closed (:func:`sb3_sacae.zoo._hook.check_patched`).
"""

from __future__ import annotations

import functools
import inspect
import os
import sys
import threading
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any

# The start-up shim loads _hook.py of the first sb3_sacae on sys.path at start-up into sys.modules; when another
# copy is imported now (a source tree ahead of an installed wheel), use this copy's hook.
_loaded_hook = sys.modules.get(f"{__name__}._hook")
if _loaded_hook is not None and os.path.realpath(getattr(_loaded_hook, "__file__", "") or "") != os.path.realpath(
    Path(__file__).with_name("_hook.py")
):
    del sys.modules[f"{__name__}._hook"]
from sb3_sacae.zoo import _hook  # noqa: E402

if _loaded_hook is not None and _loaded_hook is not _hook:  # what the other copy could not patch still counts
    for _entry in getattr(_loaded_hook, "UNPATCHED", ()):
        _hook.UNPATCHED.append(_entry) if _entry not in _hook.UNPATCHED else None

ALGO_NAME = "sacae"
#: The hyperparameter file shipped in the wheel; the repository's ``hyperparams/sacae.yml`` links to it
HYPERPARAMS_PATH = Path(__file__).parent / "hyperparams" / "sacae.yml"

# Optuna heartbeat for RDB storages (PostgreSQL, MySQL, SQLite URLs) used by `-optimize --storage URL`
HEARTBEAT_ENV_VAR = "SB3_SACAE_OPTUNA_HEARTBEAT"  # seconds between heartbeats, 0 turns it off (default 60)
GRACE_ENV_VAR = "SB3_SACAE_OPTUNA_GRACE"  # seconds without heartbeat before a RUNNING trial is failed (default 2x)
RETRY_ENV_VAR = "SB3_SACAE_OPTUNA_RETRIES"  # how often a stale trial is re-queued with its parameters (default 0)

_lock = threading.RLock()
# policy_kwargs of the config being optimized: sampled policy_kwargs are merged into them (see sampler.py)
_search_base: dict[str, Any] = {}
# envs created by the SACAE trial running in this thread (closed if the trial crashes)
_trial_envs = threading.local()


def register() -> None:
    """Register SACAE with rl_zoo3 (algorithm, Optuna sampler, default hyperparameters, upstream fixes).

    Idempotent. Also installs the start-up hook for the current process, so that scripts run afterwards with
    ``runpy`` (``python -m sb3_sacae.zoo enjoy``) get the source fixes of :data:`_hook.SOURCE_PATCHES`.
    """
    _hook.install()
    import rl_zoo3.exp_manager
    import rl_zoo3.hyperparams_opt
    import rl_zoo3.utils

    for module in (rl_zoo3.utils, rl_zoo3.hyperparams_opt, rl_zoo3.exp_manager):
        _on_zoo_module_loaded(module.__name__, module)


def _on_zoo_module_loaded(name: str, module: ModuleType) -> None:
    """Called by the start-up hook when one of ``_hook.REGISTER_AFTER`` has finished loading."""
    with _lock:
        if name == "rl_zoo3.utils":
            from sb3_sacae.zoo.safety import install_safe_readers

            install_safe_readers(module)  # no code run from config.yml / args.yml (see safety.py)
            _register_algo(module)
            from sb3_sacae.zoo.hub_check import check_zoo_script  # rl_zoo3's Hub scripts: a one-line preflight

            check_zoo_script()
        elif name == "rl_zoo3.hyperparams_opt":
            _register_sampler(module)
        elif name == "rl_zoo3.exp_manager":
            _patch_experiment_manager(module)
        from sb3_sacae.zoo.cli import after_zoo_module  # Hub preflight, search space, --hyperparams policy:MlpPolicy

        after_zoo_module(name, module)


def _register_algo(utils: ModuleType) -> None:
    from sb3_sacae import SACAE

    try:
        import sb3_sacae.envs  # noqa: F401  (registers the pixel environment ids with Gymnasium)
    except ImportError:
        pass
    utils.ALGOS[ALGO_NAME] = SACAE


def _register_sampler(hyperparams_opt: ModuleType) -> None:
    from sb3_sacae.zoo.sampler import convert_sacae_params

    hyperparams_opt.HYPERPARAMS_SAMPLER[ALGO_NAME] = _zoo_sampler
    hyperparams_opt.HYPERPARAMS_CONVERTER[ALGO_NAME] = convert_sacae_params


def _zoo_sampler(trial: Any, n_actions: int, n_envs: int, additional_args: dict[str, Any]) -> dict[str, Any]:
    """The zoo's objective replaces ``policy_kwargs`` wholesale: pass the config's ones so the sample merges in."""
    from sb3_sacae.zoo.sampler import sample_sacae_params

    return sample_sacae_params(trial, n_actions, n_envs, {**additional_args, **_search_base})


def _config_entry(manager: Any) -> dict[str, Any]:
    """The config entry the manager reads (env id, else ``default``); empty when the file cannot be read."""
    from sb3_sacae.zoo.sampler import load_yaml

    try:
        entries = load_yaml(manager.config) or {}
    except (OSError, ValueError):
        return {}
    return dict(entries.get(manager.env_name.gym_id, entries.get("default", {})) or {})


def _config_policy_kwargs(manager: Any) -> dict[str, Any]:
    """policy_kwargs of the config entry the manager reads, for ``--trial-id``."""
    policy_kwargs = _config_entry(manager).get("policy_kwargs", {})
    if isinstance(policy_kwargs, str):
        from sb3_sacae.zoo.sampler import parse_policy_kwargs

        policy_kwargs = parse_policy_kwargs(policy_kwargs)
    return dict(policy_kwargs or {})


def policy_for(observation_space: Any) -> str:
    """The SACAE policy name for an observation space: images -> CnnPolicy, Dict -> MultiInputPolicy, else MlpPolicy."""
    from gymnasium import spaces
    from stable_baselines3.common.preprocessing import is_image_space

    if isinstance(observation_space, spaces.Dict):
        return "MultiInputPolicy"
    if is_image_space(observation_space, check_channels=False):
        return "CnnPolicy"
    return "MlpPolicy"


class _TrialId(int):
    """Trial number that is truthy even when 0.

    Upstream: rl_zoo3 2.9.2 ``ExperimentManager.read_hyperparameters`` tests ``if ... and self.trial_id:``, so
    ``--trial-id 0`` silently trains with the default hyperparameters instead of the first trial's.
    https://github.com/DLR-RM/rl-baselines3-zoo/blob/v2.9.2/rl_zoo3/exp_manager.py (read_hyperparameters)
    """

    def __bool__(self) -> bool:
        return True


def _read_hyperparameters(original: Any, self: Any) -> Any:
    if self.algo == ALGO_NAME and self.env_kwargs:
        # rl_zoo3 replaces the config's env_kwargs wholesale with --env-kwargs: keep the keys not given
        config_env_kwargs = _config_entry(self).get("env_kwargs") or {}
        if isinstance(config_env_kwargs, dict):
            self.env_kwargs = {**config_env_kwargs, **self.env_kwargs}
    return original(self)


def _preprocess_action_noise(
    original: Any, self: Any, hyperparams: dict[str, Any], saved_hyperparams: dict[str, Any], env: Any
) -> Any:
    if self.algo == ALGO_NAME and "policy" not in hyperparams:
        # the config names no policy: choose it from the observations (vector Pendulum-v1 -> MlpPolicy)
        hyperparams["policy"] = saved_hyperparams["policy"] = policy_for(env.observation_space)
    return original(self, hyperparams, saved_hyperparams, env)


def _create_envs(original: Any, self: Any, *args: Any, **kwargs: Any) -> Any:
    env = original(self, *args, **kwargs)
    tracked = getattr(_trial_envs, "envs", None)
    if tracked is not None:
        tracked.append(env)
    return env


def _maybe_normalize(original: Any, self: Any, env: Any, eval_env: bool) -> Any:
    """Never unpickle the ``vecnormalize.pkl`` beside ``-i model.zip`` unless normalizing, and then gated as enjoy.

    Upstream: rl_zoo3 2.9.2 ``ExperimentManager._maybe_normalize`` loads ``<dirname(trained_agent)>/<env>/
    vecnormalize.pkl`` whenever it exists, whatever ``normalize`` says (and, with no ``-i``, a file of that name in
    the working directory). https://github.com/DLR-RM/rl-baselines3-zoo/blob/v2.9.2/rl_zoo3/exp_manager.py
    """
    from sb3_sacae.zoo.safety import check_vecnormalize_file, ignore_stale_vecnormalize

    stats = os.path.join(os.path.dirname(self.trained_agent), self.env_name, "vecnormalize.pkl")
    if not _hook.in_scope(self.algo) or not os.path.exists(stats):
        return original(self, env, eval_env)
    if self.normalize and self.continue_training:
        check_vecnormalize_file(stats)  # the gate of enjoy: refused unless SB3_SACAE_TRUST_VECNORMALIZE=1
        return original(self, env, eval_env)
    ignore_stale_vecnormalize(stats)
    if not self.normalize:
        return env
    from stable_baselines3.common.vec_env import VecNormalize

    # upstream's branch for a run without saved statistics
    normalize_kwargs = self.normalize_kwargs.copy()
    if eval_env:
        normalize_kwargs.update(norm_reward=False, training=False)
    return VecNormalize(env, **normalize_kwargs)


def _manager_init(original: Any, self: Any, args: Any, algo: str, *rest: Any, **kwargs: Any) -> None:
    _hook.check_patched(algo)  # fail closed: a security patch that did not apply refuses the algorithm
    original(self, args, algo, *rest, **kwargs)
    if algo != ALGO_NAME:
        return
    # rl_zoo3 only looks for hyperparams/{algo}.yml inside its own package: use the file sb3-sacae ships
    config = inspect.signature(original).bind(self, args, algo, *rest, **kwargs).arguments.get("config")
    if config is None and not Path(self.config).is_file():
        self.config = str(HYPERPARAMS_PATH)
    if self.trial_id is not None:
        self.trial_id = _TrialId(self.trial_id)


def _load_trial(
    original: Any, self: Any, storage: str, study_name: str, trial_id: int | None = None, convert: bool = True
) -> Any:
    params = original(self, storage, study_name, trial_id, convert)
    if self.algo == ALGO_NAME and convert and "policy_kwargs" in params:
        # The search merged the trial's policy_kwargs into the command line's (--hyperparams policy_kwargs:...), else
        # into the config's: do the same when replaying it. rl_zoo3 applies --hyperparams after the trial's values,
        # replacing policy_kwargs whole, so the command line's entry gets the merged dict too.
        custom = self.custom_hyperparams if isinstance(self.custom_hyperparams, dict) else {}
        base = custom["policy_kwargs"] if isinstance(custom.get("policy_kwargs"), dict) else _config_policy_kwargs(self)
        params["policy_kwargs"] = {**base, **params["policy_kwargs"]}
        if "policy_kwargs" in custom:
            self.custom_hyperparams = {**custom, "policy_kwargs": params["policy_kwargs"]}
    return params


def _objective(original: Any, self: Any, trial: Any) -> float:
    if self.algo != ALGO_NAME:
        return original(self, trial)
    import optuna

    # the envs rl_zoo3 creates for this trial are locals of its objective: track them, to close them when the
    # trial crashes before rl_zoo3 does (e.g. MemoryError from the replay buffer guard in the model constructor)
    created: list[Any] = []
    _trial_envs.envs = created  # per thread: rl_zoo3's --n-jobs runs trials in threads
    try:
        return original(self, trial)
    except (optuna.TrialPruned, KeyboardInterrupt, SystemExit):
        raise  # pruned trials closed their envs already; interrupts end the search
    except Exception as error:  # RuntimeError (CUDA OOM), MemoryError, FloatingPointError (NaN guard), ...
        from sb3_sacae.zoo.sampler import record_failed_trial

        _close_all(created)
        # NaN makes Optuna mark the trial FAIL and go on; raising would stop this worker's whole study
        return record_failed_trial(trial, error)
    finally:
        _trial_envs.envs = None


def _hyperparameters_optimization(original: Any, self: Any) -> None:
    if self.algo != ALGO_NAME:
        return original(self)
    with _lock:
        _search_base.clear()
        policy_kwargs = self._hyperparams.get("policy_kwargs")
        if isinstance(policy_kwargs, dict):
            _search_base["policy_kwargs"] = dict(policy_kwargs)
    if not _is_rdb_url(self.storage) or _heartbeat_interval() == 0:
        return original(self)
    # rl_zoo3 hands the URL string to optuna.create_study, which builds an RDBStorage without heartbeat:
    # give exp_manager (only it, only for this call) an optuna whose create_study builds one with heartbeat.
    exp_manager = sys.modules[original.__module__]
    real_optuna = exp_manager.optuna  # type: ignore[attr-defined]  # rl_zoo3 ships no type stubs for its module attributes
    exp_manager.optuna = _OptunaWithHeartbeat(real_optuna)  # type: ignore[attr-defined]  # rl_zoo3 ships no type stubs for its module attributes
    try:
        return original(self)
    finally:
        exp_manager.optuna = real_optuna  # type: ignore[attr-defined]  # rl_zoo3 ships no type stubs for its module attributes


#: ExperimentManager method -> (replacement taking the original first, whether safety depends on it)
_MANAGER_PATCHES: dict[str, tuple[Any, bool]] = {
    "__init__": (_manager_init, True),
    "_maybe_normalize": (_maybe_normalize, True),
    "read_hyperparameters": (_read_hyperparameters, False),
    "_preprocess_action_noise": (_preprocess_action_noise, False),
    "create_envs": (_create_envs, False),
    "load_trial": (_load_trial, False),
    "objective": (_objective, False),
    "hyperparameters_optimization": (_hyperparameters_optimization, False),
}


def _bind(replacement: Any, original: Any) -> Any:
    @functools.wraps(original)
    def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        return replacement(original, self, *args, **kwargs)

    return method


def _patch_experiment_manager(exp_manager: ModuleType) -> None:
    """Wrap the methods of :data:`_MANAGER_PATCHES`; a missing security-relevant one fails closed (``_hook.UNPATCHED``)."""
    manager_cls = exp_manager.ExperimentManager
    if getattr(manager_cls, "_sb3_sacae_patched", False):
        return
    for name, (replacement, security) in _MANAGER_PATCHES.items():
        original = manager_cls.__dict__.get(name)
        if not callable(original):
            if security:
                _hook.record_unpatched(f"{exp_manager.__name__}.ExperimentManager", f"no method {name}")
            else:
                warnings.warn(f"sb3-sacae could not patch ExperimentManager.{name} (not in this rl_zoo3)", RuntimeWarning)
            continue
        setattr(manager_cls, name, _bind(replacement, original))
    manager_cls._sb3_sacae_patched = True


def _close_all(envs: list[Any]) -> None:
    """Close the envs of a crashed trial (closing twice is harmless for SB3 VecEnvs; errors are ignored)."""
    for env in envs:
        try:
            env.close()
        except Exception:
            pass


def _is_rdb_url(storage: Any) -> bool:
    return isinstance(storage, str) and "://" in storage and not storage.startswith(("redis://", "rediss://"))


def _heartbeat_interval() -> int:
    return int(os.environ.get(HEARTBEAT_ENV_VAR, "60"))


class _OptunaWithHeartbeat:
    """The ``optuna`` module as rl_zoo3's exp_manager sees it during a SACAE search with an RDB URL."""

    def __init__(self, optuna: ModuleType) -> None:
        self._optuna = optuna

    def __getattr__(self, name: str) -> Any:
        return getattr(self._optuna, name)

    def create_study(self, *args: Any, storage: Any = None, **kwargs: Any) -> Any:
        from sb3_sacae.zoo.sampler import make_storage

        if _is_rdb_url(storage):
            interval = _heartbeat_interval()
            grace = int(os.environ.get(GRACE_ENV_VAR, str(2 * interval)))
            retries = int(os.environ.get(RETRY_ENV_VAR, "0"))
            storage = make_storage(storage, heartbeat_interval=interval, grace_period=grace, max_retry=retries)
        return self._optuna.create_study(*args, storage=storage, **kwargs)


__all__ = ["ALGO_NAME", "HYPERPARAMS_PATH", "register"]
