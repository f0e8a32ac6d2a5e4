"""Optuna search space of SACAE for ``python -m rl_zoo3.train --algo sacae -optimize``.

:func:`sample_sacae_params` draws the SAC knobs and the SAC-AE ones (encoder/decoder learning rates,
``encoder_tau``, latent and weight penalties, feature size, update intervals); :func:`convert_sacae_params`
turns a trial's raw ``params`` back into constructor arguments, which is what ``--trial-id N`` replays
(rl_zoo3 looks it up in ``HYPERPARAMS_CONVERTER["sacae"]``). Round trip: ``convert(trial.params)`` equals what
the sampler returned for that trial. A config's ``search_space`` entry bounds, narrows or fixes any sampled
parameter (:func:`sample_search_space`), and searched constructor arguments given with ``--hyperparams`` are fixed
(:data:`SAMPLED_FROM`); :mod:`sb3_sacae.zoo.search` hands both to the sampler.

Distributed search (every worker runs the same command)::

    # one machine, several processes: a journal file
    python -m rl_zoo3.train --algo sacae --env PendulumPixels-v1 -optimize --storage logs/sacae.log \
        --study-name sacae-pendulum --n-trials 20
    # several machines: a PostgreSQL URL (pip install psycopg2-binary; plain postgresql:// needs psycopg 3)
    ... --storage postgresql+psycopg2://user:password@host:5432/optuna --study-name sacae-pendulum

With an RDB URL, :mod:`sb3_sacae.zoo` builds the storage with Optuna's heartbeat (``SB3_SACAE_OPTUNA_HEARTBEAT``
seconds, default 60; ``SB3_SACAE_OPTUNA_GRACE``; ``SB3_SACAE_OPTUNA_RETRIES``), so the trial of a killed worker
is marked FAIL (and optionally re-queued) by the next worker instead of staying RUNNING.
"""

from __future__ import annotations

import ast
import contextlib
import gc
import math
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna

NET_ARCHS: dict[str, list[int]] = {"small": [256, 256], "medium": [512, 512], "big": [1024, 1024]}
FEATURES_DIMS = (32, 50, 64, 128)

#: What the sampler searches: name -> ("float" | "int", low, high, log) or ("categorical", choices). A config's
#: ``search_space`` entry (or ``--hyperparams search_space:"dict(...)"``) bounds, narrows or fixes any of them.
SEARCH_SPACE: dict[str, tuple[Any, ...]] = {
    "one_minus_gamma": ("float", 1e-3, 0.05, True),
    "learning_rate": ("float", 1e-4, 3e-3, True),
    "batch_size_pow": ("int", 5, 8, False),  # 32 .. 256
    "train_freq": ("int", 1, 4, False),
    "tau": ("float", 0.002, 0.05, True),
    "init_temperature": ("float", 0.01, 1.0, True),
    "encoder_tau": ("float", 0.01, 0.2, True),
    "encoder_lr": ("float", 1e-4, 3e-3, True),
    "decoder_lr": ("float", 1e-4, 3e-3, True),
    "decoder_latent_lambda": ("float", 1e-8, 1e-4, True),
    "decoder_weight_lambda": ("float", 1e-9, 1e-5, True),
    "features_dim": ("categorical", FEATURES_DIMS),
    "net_arch": ("categorical", tuple(NET_ARCHS)),
    "actor_update_interval": ("int", 1, 4, False),
    "target_update_interval": ("int", 1, 4, False),
    "decoder_update_interval": ("int", 1, 4, False),
}

#: Constructor argument (``policy_kwargs`` key for the last two) -> the sampled parameter it comes from. Giving one
#: of them with ``--hyperparams`` during a search fixes it: the parameter is not searched, the value given is used.
SAMPLED_FROM: dict[str, str] = {
    "gamma": "one_minus_gamma",
    "learning_rate": "learning_rate",
    "batch_size": "batch_size_pow",
    "train_freq": "train_freq",
    "tau": "tau",
    "ent_coef": "init_temperature",
    **{name: name for name in ("encoder_tau", "encoder_lr", "decoder_lr", "decoder_latent_lambda")},
    **{name: name for name in ("decoder_weight_lambda", "actor_update_interval", "target_update_interval")},
    "decoder_update_interval": "decoder_update_interval",
    "features_dim": "features_dim",
    "net_arch": "net_arch",
}


# search_space and fixed arguments of the search running in this thread (rl_zoo3's --n-jobs runs trials in threads)
_settings = threading.local()
# reasons of the trials that failed in this process, for the message when none completed
_failed_reasons: list[str] = []


@contextlib.contextmanager
def search_settings(search_space: dict[str, Any] | None, fixed: dict[str, Any] | None) -> Iterator[None]:
    """Make :func:`sample_sacae_params` use ``search_space`` and ``fixed`` in this thread (rl_zoo3's sampler call
    passes neither)."""
    previous = getattr(_settings, "value", None)
    _settings.value = {"search_space": search_space, "fixed": fixed}
    try:
        yield
    finally:
        _settings.value = previous


def failed_trial_reasons() -> list[str]:
    """Why the trials of this process failed (see :func:`record_failed_trial`)."""
    return list(_failed_reasons)


class SearchSpaceError(ValueError):
    """A ``search_space`` entry that names no sampled parameter, or bounds the sampler cannot use."""


def sample_sacae_params(trial: optuna.Trial, n_actions: int, n_envs: int, additional_args: dict[str, Any]) -> dict[str, Any]:
    """Sample SACAE hyperparameters (rl_zoo3 sampler signature).

    :param trial: the Optuna trial
    :param n_actions: size of the action space (unused: SAC-AE adds no action noise)
    :param n_envs: number of environments (unused)
    :param additional_args: rl_zoo3's extra arguments; ``policy_kwargs`` there (the config's) are kept and
        the sampled ``features_dim`` / ``net_arch`` override them; ``search_space`` (see
        :func:`sample_search_space`) bounds or fixes sampled parameters; ``fixed`` (constructor arguments given on
        the command line, see :data:`SAMPLED_FROM`) are used as given instead of searched
    :return: constructor keyword arguments
    """
    additional_args = {**(getattr(_settings, "value", None) or {}), **additional_args}
    fixed = dict(additional_args.get("fixed") or {})
    fixed_policy = {key: value for key, value in (fixed.get("policy_kwargs") or {}).items() if key in SAMPLED_FROM}
    skip = {SAMPLED_FROM[key] for key in [*fixed, *fixed_policy] if key in SAMPLED_FROM and key != "policy_kwargs"}
    params = sample_search_space(trial, additional_args.get("search_space"), skip=skip)
    hyperparams = convert_sacae_params(params)
    if "gamma" in hyperparams:
        trial.set_user_attr("gamma", hyperparams["gamma"])
    if "batch_size" in hyperparams:
        trial.set_user_attr("batch_size", hyperparams["batch_size"])
    if skip:
        trial.set_user_attr("fixed", sorted(skip))
    base = dict(additional_args.get("policy_kwargs") or {})
    hyperparams["policy_kwargs"] = {**base, **hyperparams["policy_kwargs"], **fixed_policy}
    hyperparams.update({key: value for key, value in fixed.items() if key in SAMPLED_FROM})
    return hyperparams


def sample_search_space(
    trial: optuna.Trial, overrides: dict[str, Any] | None = None, skip: set[str] | frozenset[str] = frozenset()
) -> dict[str, Any]:
    """Draw every parameter of :data:`SEARCH_SPACE` (but ``skip``), as bounded or fixed by ``overrides``.

    ``overrides`` maps a parameter name to:

    * a number (for ``net_arch`` also a list of layer sizes or a name of :data:`NET_ARCHS`): fixed to that value;
    * ``[low, high]`` (numeric parameters) or ``{"low": low, "high": high}``: searched between those bounds, on
      the parameter's own scale (log or linear);
    * a list of values (``features_dim``; ``net_arch``: names or lists of layer sizes): searched among those.

    Fixed values are still recorded as single-value distributions, so ``--trial-id`` replays them.

    :raises SearchSpaceError: an unknown name or a value that does not fit the parameter
    """
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(SEARCH_SPACE))
    if unknown:
        raise SearchSpaceError(
            f"search_space names {unknown}, which SACAE's sampler does not draw: use {sorted(SEARCH_SPACE)}"
        )
    return {name: _suggest(trial, name, spec, overrides.get(name)) for name, spec in SEARCH_SPACE.items() if name not in skip}


def _suggest(trial: optuna.Trial, name: str, spec: tuple[Any, ...], override: Any) -> Any:
    if spec[0] == "categorical":
        return trial.suggest_categorical(name, _choices(name, spec[1], override))
    kind, low, high, log = spec
    if override is not None:
        low, high = _bounds(name, override)
        if log and low <= 0:
            raise SearchSpaceError(f"search_space {name}: the sampler draws it on a log scale, bounds must be > 0")
        if low > high:
            raise SearchSpaceError(f"search_space {name}: low {low} is above high {high}")
    if kind == "int":
        return trial.suggest_int(name, int(low), int(high), log=log)
    return trial.suggest_float(name, float(low), float(high), log=log)


def _bounds(name: str, override: Any) -> tuple[float, float]:
    if isinstance(override, dict) and set(override) <= {"low", "high"} and override:
        default = SEARCH_SPACE[name]
        return override.get("low", default[1]), override.get("high", default[2])
    if isinstance(override, (list, tuple)) and len(override) == 2 and all(_is_number(value) for value in override):
        return override[0], override[1]
    if _is_number(override):
        return override, override
    raise SearchSpaceError(
        f"search_space {name}: give a number (fixed), [low, high] or {{low: ..., high: ...}}, got {override!r}"
    )


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _choices(name: str, default: tuple[Any, ...], override: Any) -> list[Any]:
    if override is None:
        return list(default)
    if name == "net_arch":
        if isinstance(override, str) or (isinstance(override, (list, tuple)) and all(_is_number(x) for x in override)):
            override = [override]  # one architecture: fixed
        return [_net_arch_choice(choice) for choice in override]
    choices = list(override) if isinstance(override, (list, tuple)) else [override]
    if not choices or not all(_is_number(choice) for choice in choices):
        raise SearchSpaceError(f"search_space {name}: give a number (fixed) or a list of numbers, got {override!r}")
    return choices


def _net_arch_choice(choice: Any) -> str:
    """A ``net_arch`` choice as Optuna stores it: a name of :data:`NET_ARCHS` or layer sizes joined by ``-``."""
    if isinstance(choice, str) and (choice in NET_ARCHS or _parse_net_arch(choice) is not None):
        return choice
    if isinstance(choice, (list, tuple)) and choice and all(isinstance(size, int) and size > 0 for size in choice):
        return "-".join(str(size) for size in choice)
    raise SearchSpaceError(
        f"search_space net_arch: give layer sizes such as [64, 64] or one of {list(NET_ARCHS)}, got {choice!r}"
    )


def _parse_net_arch(text: str) -> list[int] | None:
    parts = text.split("-")
    return [int(part) for part in parts] if all(part.isdigit() and int(part) > 0 for part in parts) else None


#: Largest ``batch_size_pow`` a stored trial may hold (a batch of 2**30 samples; 2**n is computed from the file)
MAX_BATCH_SIZE_POW = 30


def check_trial_params(params: Any, where: str = "the Optuna trial") -> dict[str, Any]:
    """The parameters of a stored trial (``--trial-id``, or the study's best trial), checked before they are used.

    An Optuna storage is a file like any other: rl_zoo3 hands every parameter of the trial to the model, and
    ``eval()``-uates string ``policy_kwargs``, ``replay_buffer_kwargs`` and the like. Only the names of
    :data:`SEARCH_SPACE` pass, each with a value of the kind its distribution gives: a finite number (positive on a
    log scale) for floats, an integer for ints (``batch_size_pow`` at most :data:`MAX_BATCH_SIZE_POW`), a positive
    number for ``features_dim``, a name of :data:`NET_ARCHS` or layer sizes joined by ``-`` for ``net_arch``. Ranges
    are not checked: a config may widen them, and the constructor refuses what has no meaning.

    :raises ~sb3_sacae.zoo.safety.UntrustedZooFileError: (an :class:`~sb3_sacae.io.UnsafeFileError`) naming the
        parameter
    """
    from sb3_sacae.zoo.safety import UntrustedZooFileError

    if not isinstance(params, dict):
        raise UntrustedZooFileError(f"The parameters of {where} must be a mapping, not {type(params).__name__}")
    for name, value in params.items():
        spec = SEARCH_SPACE.get(name) if isinstance(name, str) else None
        if spec is None:
            raise UntrustedZooFileError(
                f"Refusing parameter {name!r} of {where}: SACAE's sampler draws only {', '.join(SEARCH_SPACE)}, and "
                "rl_zoo3 would hand any other parameter to the model (string policy_kwargs, replay_buffer_kwargs and "
                "similar are eval()-uated). Replay a trial of a study searched with --algo sacae, or give the "
                "hyperparameters with --hyperparams instead of --trial-id"
            )
        if not _valid_trial_value(name, spec, value):
            raise UntrustedZooFileError(
                f"Refusing parameter {name}={value!r} of {where}: not a value SACAE's sampler draws for it "
                f"({_expected_trial_value(name, spec)}). Replay another trial, or give the hyperparameters with "
                "--hyperparams instead of --trial-id"
            )
    return dict(params)


def _valid_trial_value(name: str, spec: tuple[Any, ...], value: Any) -> bool:
    if name == "net_arch":
        return isinstance(value, str) and (value in NET_ARCHS or _parse_net_arch(value) is not None)
    if spec[0] == "categorical":
        return _is_number(value) and math.isfinite(value) and value > 0
    if spec[0] == "int":
        return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= _int_bound(name)
    return _is_number(value) and math.isfinite(value) and (value > 0 or not spec[3])


def _int_bound(name: str) -> int:
    return MAX_BATCH_SIZE_POW if name == "batch_size_pow" else 2**31 - 1


def _expected_trial_value(name: str, spec: tuple[Any, ...]) -> str:
    if name == "net_arch":
        return f"one of {list(NET_ARCHS)} or layer sizes such as '64-64'"
    if spec[0] == "categorical":
        return "a positive number"
    if spec[0] == "int":
        return f"an integer from 0 to {_int_bound(name)}"
    return "a finite positive number" if spec[3] else "a finite number"


def convert_sacae_params(sampled_params: dict[str, Any]) -> dict[str, Any]:
    """Turn sampled (or stored ``trial.params``) values into SACAE constructor arguments.

    The values are checked first (:func:`check_trial_params`): a stored trial is read from a file.
    """
    hyperparams = check_trial_params(sampled_params)
    if "one_minus_gamma" in hyperparams:
        hyperparams["gamma"] = 1 - hyperparams.pop("one_minus_gamma")
    if "batch_size_pow" in hyperparams:
        hyperparams["batch_size"] = 2 ** hyperparams.pop("batch_size_pow")
    if "train_freq" in hyperparams:
        # one gradient step per environment step, as in the paper
        hyperparams["gradient_steps"] = hyperparams["train_freq"]
    if "init_temperature" in hyperparams:
        hyperparams["ent_coef"] = f"auto_{hyperparams.pop('init_temperature')}"
    policy_kwargs: dict[str, Any] = {}
    if "features_dim" in hyperparams:
        policy_kwargs["features_dim"] = hyperparams.pop("features_dim")
    if "net_arch" in hyperparams:
        net_arch = hyperparams.pop("net_arch")
        if isinstance(net_arch, str):  # a name of NET_ARCHS, or layer sizes joined by "-" (a search_space choice)
            net_arch = NET_ARCHS.get(net_arch) or _parse_net_arch(net_arch) or net_arch
        policy_kwargs["net_arch"] = net_arch
    hyperparams["policy_kwargs"] = policy_kwargs
    return hyperparams


class SearchConfigurationError(RuntimeError):
    """A trial failed before any trial of the study completed, from an error that no sampled value causes."""


def depends_on_the_sample(error: BaseException) -> bool:
    """Whether another sample may succeed where this one failed: out of memory, or diverged (SACAE's NaN guard)."""
    if isinstance(error, (MemoryError, FloatingPointError)):
        return True
    return isinstance(error, RuntimeError) and "out of memory" in str(error).lower()


def record_failed_trial(trial: optuna.Trial, error: BaseException) -> float:
    """Keep the reason of a crashed trial and return NaN, which Optuna stores as a FAIL and moves on.

    An error that does not depend on the sample (a wrong argument, an unknown environment, a bad wrapper), raised
    while no trial of the study has completed, would fail every trial: the search stops at once with it.

    :raises SearchConfigurationError: from ``error``, in that case
    """
    reason = f"{type(error).__name__}: {error}"[:2000]
    trial.set_user_attr("fail_reason", reason)
    _failed_reasons.append(reason)
    if not depends_on_the_sample(error) and not _any_trial_completed(trial):
        raise SearchConfigurationError(
            f"Trial {trial.number} failed before any trial of the study completed, and every trial would: {reason}"
        ) from error
    print(f"Trial {trial.number} failed, the study goes on: {reason}")
    gc.collect()
    try:
        import torch as th

        if th.cuda.is_available():
            th.cuda.empty_cache()
    except ImportError:
        pass
    return math.nan


def _any_trial_completed(trial: optuna.Trial) -> bool:
    study = getattr(trial, "study", None)
    if study is None:
        return False
    return bool(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)))


def make_storage(
    url: str,
    heartbeat_interval: int | None = 60,
    grace_period: int | None = None,
    max_retry: int = 0,
) -> optuna.storages.BaseStorage:
    """An Optuna storage for ``url``: a journal file for ``*.log`` paths, else an RDB with heartbeat.

    With a heartbeat, a worker that is killed mid-trial stops beating; after ``grace_period`` seconds the next
    worker to start a trial marks it FAIL (and re-queues it up to ``max_retry`` times).
    """
    if url.endswith(".log"):
        return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(url))  # type: ignore[attr-defined]  # optuna's stub does not export the journal submodule
    if not heartbeat_interval:
        return optuna.storages.RDBStorage(url)
    # optuna >= 4.9 names it RetryHeartbeatStaleTrialCallback (RetryFailedTrialCallback before)
    retry_cls = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None) or optuna.storages.RetryFailedTrialCallback
    callback = retry_cls(max_retry=max_retry) if max_retry > 0 else None
    callback_kwargs: dict[str, Any] = {_stale_callback_argument(): callback} if callback is not None else {}
    return optuna.storages.RDBStorage(url, heartbeat_interval=heartbeat_interval, grace_period=grace_period, **callback_kwargs)


def load_yaml(path: str | Path) -> Any:
    """Read a hyperparameter/config YAML without executing anything: the package's one safe YAML reader,
    :func:`sb3_sacae.io.safe_load_config` (rl_zoo3's tuples and OrderedDicts as plain data)."""
    from sb3_sacae.io import safe_load_config

    return safe_load_config(path)


def parse_policy_kwargs(text: str) -> dict[str, Any]:
    """Parse rl_zoo3's ``"dict(features_dim=50, net_arch=[1024, 1024])"`` strings with literals only."""
    node = ast.parse(text.strip(), mode="eval").body
    if isinstance(node, ast.Dict):
        return ast.literal_eval(node)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "dict" and not node.args:
        return {keyword.arg: ast.literal_eval(keyword.value) for keyword in node.keywords if keyword.arg is not None}
    raise ValueError(f"policy_kwargs must be a dict literal or dict(...) of literals, got {text!r}")


def _stale_callback_argument() -> str:
    import inspect

    parameters = inspect.signature(optuna.storages.RDBStorage).parameters
    return "heartbeat_stale_trial_callback" if "heartbeat_stale_trial_callback" in parameters else "failed_trial_callback"
