"""Optuna search space of SACAE for ``python -m rl_zoo3.train --algo sacae -optimize``.

:func:`sample_sacae_params` draws the SAC knobs and the SAC-AE ones (encoder/decoder learning rates,
``encoder_tau``, latent and weight penalties, feature size, update intervals); :func:`convert_sacae_params`
turns a trial's raw ``params`` back into constructor arguments, which is what ``--trial-id N`` replays
(rl_zoo3 looks it up in ``HYPERPARAMS_CONVERTER["sacae"]``). Round trip: ``convert(trial.params)`` equals what
the sampler returned for that trial.

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
import gc
import math
from pathlib import Path
from typing import Any

import optuna

NET_ARCHS: dict[str, list[int]] = {"small": [256, 256], "medium": [512, 512], "big": [1024, 1024]}
FEATURES_DIMS = (32, 50, 64, 128)


def sample_sacae_params(trial: optuna.Trial, n_actions: int, n_envs: int, additional_args: dict[str, Any]) -> dict[str, Any]:
    """Sample SACAE hyperparameters (rl_zoo3 sampler signature).

    :param trial: the Optuna trial
    :param n_actions: size of the action space (unused: SAC-AE adds no action noise)
    :param n_envs: number of environments (unused)
    :param additional_args: rl_zoo3's extra arguments; ``policy_kwargs`` there (the config's) are kept and
        the sampled ``features_dim`` / ``net_arch`` override them
    :return: constructor keyword arguments
    """
    params: dict[str, Any] = {
        "one_minus_gamma": trial.suggest_float("one_minus_gamma", 1e-3, 0.05, log=True),
        "learning_rate": trial.suggest_float("learning_rate", 1e-4, 3e-3, log=True),
        "batch_size_pow": trial.suggest_int("batch_size_pow", 5, 8),  # 32 .. 256
        "train_freq": trial.suggest_int("train_freq", 1, 4),
        "tau": trial.suggest_float("tau", 0.002, 0.05, log=True),
        "init_temperature": trial.suggest_float("init_temperature", 0.01, 1.0, log=True),
        "encoder_tau": trial.suggest_float("encoder_tau", 0.01, 0.2, log=True),
        "encoder_lr": trial.suggest_float("encoder_lr", 1e-4, 3e-3, log=True),
        "decoder_lr": trial.suggest_float("decoder_lr", 1e-4, 3e-3, log=True),
        "decoder_latent_lambda": trial.suggest_float("decoder_latent_lambda", 1e-8, 1e-4, log=True),
        "decoder_weight_lambda": trial.suggest_float("decoder_weight_lambda", 1e-9, 1e-5, log=True),
        "features_dim": trial.suggest_categorical("features_dim", FEATURES_DIMS),
        "net_arch": trial.suggest_categorical("net_arch", list(NET_ARCHS)),
        "actor_update_interval": trial.suggest_int("actor_update_interval", 1, 4),
        "target_update_interval": trial.suggest_int("target_update_interval", 1, 4),
        "decoder_update_interval": trial.suggest_int("decoder_update_interval", 1, 4),
    }
    hyperparams = convert_sacae_params(params)
    trial.set_user_attr("gamma", hyperparams["gamma"])
    trial.set_user_attr("batch_size", hyperparams["batch_size"])
    base = dict(additional_args.get("policy_kwargs") or {})
    hyperparams["policy_kwargs"] = {**base, **hyperparams["policy_kwargs"]}
    return hyperparams


def convert_sacae_params(sampled_params: dict[str, Any]) -> dict[str, Any]:
    """Turn sampled (or stored ``trial.params``) values into SACAE constructor arguments."""
    hyperparams = dict(sampled_params)
    if "one_minus_gamma" in hyperparams:
        hyperparams["gamma"] = 1 - hyperparams.pop("one_minus_gamma")
    if "batch_size_pow" in hyperparams:
        hyperparams["batch_size"] = 2 ** hyperparams.pop("batch_size_pow")
    if "train_freq" in hyperparams:
        # one gradient step per environment step, as in the paper
        hyperparams["gradient_steps"] = hyperparams["train_freq"]
    if "init_temperature" in hyperparams:
        hyperparams["ent_coef"] = f"auto_{hyperparams.pop('init_temperature')}"
    policy_kwargs = dict(hyperparams.get("policy_kwargs") or {})
    if "features_dim" in hyperparams:
        policy_kwargs["features_dim"] = hyperparams.pop("features_dim")
    if "net_arch" in hyperparams:
        net_arch = hyperparams.pop("net_arch")
        policy_kwargs["net_arch"] = NET_ARCHS[net_arch] if isinstance(net_arch, str) else net_arch
    hyperparams["policy_kwargs"] = policy_kwargs
    return hyperparams


def record_failed_trial(trial: optuna.Trial, error: BaseException) -> float:
    """Keep the reason of a crashed trial and return NaN, which Optuna stores as a FAIL and moves on."""
    reason = f"{type(error).__name__}: {error}"[:2000]
    trial.set_user_attr("fail_reason", reason)
    print(f"Trial {trial.number} failed, the study goes on: {reason}")
    gc.collect()
    try:
        import torch as th

        if th.cuda.is_available():
            th.cuda.empty_cache()
    except ImportError:
        pass
    return math.nan


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
        return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(url))  # type: ignore[attr-defined]
    if not heartbeat_interval:
        return optuna.storages.RDBStorage(url)
    # optuna >= 4.9 names it RetryHeartbeatStaleTrialCallback (RetryFailedTrialCallback before)
    retry_cls = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None) or optuna.storages.RetryFailedTrialCallback
    callback = retry_cls(max_retry=max_retry) if max_retry > 0 else None
    callback_kwargs: dict[str, Any] = {_stale_callback_argument(): callback} if callback is not None else {}
    return optuna.storages.RDBStorage(url, heartbeat_interval=heartbeat_interval, grace_period=grace_period, **callback_kwargs)


def load_yaml(path: str | Path) -> Any:
    """Read a hyperparameter/config YAML without executing anything (sb3_sacae's safe loader when present)."""
    try:
        from sb3_sacae.serialization import safe_load_config
    except ImportError:  # older sb3_sacae without the safe loaders
        pass
    else:
        return safe_load_config(path)
    import yaml

    class _Loader(yaml.SafeLoader):
        pass

    # rl_zoo3 writes tuples (train_freq) with python/tuple tags; they are plain data
    _Loader.add_constructor("tag:yaml.org,2002:python/tuple", lambda loader, node: tuple(loader.construct_sequence(node)))
    # ... and config.yml / args.yml as OrderedDict([(key, value), ...])
    _Loader.add_constructor(
        "tag:yaml.org,2002:python/object/apply:collections.OrderedDict",
        lambda loader, node: dict(loader.construct_sequence(node, deep=True)[0]),
    )
    with open(path, encoding="utf-8") as file:
        return yaml.load(file, Loader=_Loader)


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
