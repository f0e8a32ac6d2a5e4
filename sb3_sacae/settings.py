"""The constructor arguments of :class:`~sb3_sacae.SACAE`: checks with errors that name the fix, and derived values."""

import inspect
from typing import Any

import numpy as np
from gymnasium import spaces
from stable_baselines3 import SAC
from stable_baselines3.common.type_aliases import TrainFrequencyUnit

from sb3_sacae.discrete import discrete_target_entropy
from sb3_sacae.torch_layers import image_space_keys


def check_action_space(action_space: spaces.Space | None) -> None:
    """Raise a clear error for action spaces SACAE cannot act in (None: not known yet)."""
    if action_space is None or isinstance(action_space, spaces.Box):
        return
    if not isinstance(action_space, spaces.Discrete):
        raise ValueError(
            f"SACAE needs a gymnasium.spaces.Box (continuous SAC) or gymnasium.spaces.Discrete (discrete SAC) action "
            f"space, got {action_space}: flatten MultiDiscrete/MultiBinary/Tuple actions into one Discrete space "
            "with a wrapper (one index per combination), or use a continuous version of the environment"
        )
    if int(action_space.start) != 0 or int(action_space.n) < 2:
        raise ValueError(
            f"SACAE needs a Discrete action space of at least 2 actions starting at 0, got {action_space}: "
            "shift the actions with a gymnasium.ActionWrapper (Stable-Baselines3 assumes start=0)"
        )


def _is_number(value: Any) -> bool:
    """A Python or numpy number, not a bool."""
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool | np.bool_)


def _is_count(value: Any) -> bool:
    """A whole number (``2`` or ``2.0``, as YAML and Optuna may give it), not a bool."""
    return _is_number(value) and float(value).is_integer()


def check_arguments(arguments: dict[str, Any]) -> None:
    """Raise a clear error for SAC-AE arguments out of range (``arguments``: the constructor's, by name)."""
    for name in ("target_update_interval", "actor_update_interval"):
        if not _is_count(arguments[name]) or arguments[name] < 1:
            raise ValueError(f"{name} must be a positive whole number of gradient steps, got {arguments[name]!r}")
    check_action_space(getattr(arguments["env"], "action_space", None))
    if not _is_count(arguments["decoder_update_interval"]) or arguments["decoder_update_interval"] < 0:
        raise ValueError(
            "decoder_update_interval must be a whole number of gradient steps >= 0 (0 turns the autoencoder off), got "
            f"{arguments['decoder_update_interval']!r}"
        )
    if not _is_count(arguments["random_shift"]) or arguments["random_shift"] < 0:
        raise ValueError(
            "random_shift is a padding in whole pixels, >= 0 (0 turns it off, DrQ uses 4), got "
            f"{arguments['random_shift']!r}"
        )
    if not _is_number(arguments["encoder_tau"]) or not 0 <= arguments["encoder_tau"] <= 1:
        raise ValueError(f"encoder_tau is a Polyak coefficient in [0, 1] (paper: 0.05), got {arguments['encoder_tau']!r}")
    for name, paper in (("tau", 0.01), ("gamma", 0.99)):
        if not _is_number(arguments[name]) or not 0 <= arguments[name] <= 1:
            raise ValueError(f"{name} must be in [0, 1] (paper: {paper}), got {arguments[name]!r}")
    for name in ("encoder_lr", "decoder_lr", "ent_coef_lr"):
        if not _is_number(arguments[name]) or arguments[name] <= 0:
            raise ValueError(
                f"{name} must be a positive number (a constant learning rate; schedules are for learning_rate), got "
                f"{arguments[name]!r}"
            )
    for name in ("decoder_latent_lambda", "decoder_weight_lambda"):
        if not _is_number(arguments[name]) or arguments[name] < 0:
            raise ValueError(f"{name} must be a number >= 0 (0 turns the penalty off), got {arguments[name]!r}")
    betas = arguments["ent_coef_betas"]
    pair = isinstance(betas, tuple | list | np.ndarray) and len(betas) == 2
    if not pair or not all(_is_number(b) and 0 <= b < 1 for b in betas):
        raise ValueError(f"ent_coef_betas must be Adam's two betas in [0, 1), like (0.5, 0.999), got {betas!r}")
    for name in ("bf16_autocast", "reuse_critic_features", "fast_kernels"):
        value = arguments[name]
        if not isinstance(value, bool | np.bool_ | int | np.integer) or value not in (0, 1):
            raise ValueError(f"{name} must be True or False, got {value!r}")
    for name, letter in (("critic_shifts", "M"), ("target_shifts", "K")):
        check_shift_copies(name, letter, arguments[name], int(arguments["random_shift"]))


def check_shift_copies(name: str, letter: str, copies: Any, pad: int) -> None:
    """Refuse a number of DrQ shifted copies (``critic_shifts``: M, ``target_shifts``: K) that is not a count, or that
    averages over copies that ``random_shift=0`` would leave identical."""
    if isinstance(copies, bool) or not isinstance(copies, int | np.integer) or copies < 1:
        raise ValueError(f"{name} is DrQ's {letter}, a number of shifted copies >= 1 (1: one copy), got {copies!r}")
    if copies > 1 and pad == 0:
        raise ValueError(
            f"{name}={copies} averages over shifted copies, but random_shift=0 shifts nothing: pass random_shift=4 "
            f"(DrQ) as well, or {name}=1"
        )


def check_policy_kwargs(policy_kwargs: dict[str, Any]) -> None:
    """Refuse SACAE arguments passed as policy_kwargs (the algorithm passes them to the policy itself)."""
    owned = {"encoder_lr", "decoder_lr", "decoder_weight_lambda", "use_decoder", "fast_kernels"} & set(policy_kwargs)
    if owned:
        raise ValueError(
            f"{sorted(owned)} are SACAE arguments, not policy_kwargs: pass them to SACAE(...) directly "
            "(use_decoder: decoder_update_interval=0 turns the autoencoder off)"
        )


def check_random_shift(pad: int, observation_space: spaces.Space) -> None:
    """Refuse a random shift for observations that hold no image."""
    if pad and not image_space_keys(observation_space):
        raise ValueError(
            f"random_shift={pad} shifts images, but the observations {observation_space} hold none: pass "
            "random_shift=0 for state observations"
        )


def target_entropy_for(requested: str | float, action_space: spaces.Space, sac_value: Any) -> Any:
    """
    The target entropy: ``sac_value`` (SAC's own, -dim(A) for "auto") for Box actions, a fraction of the maximum
    entropy log |A| for Discrete actions (arXiv:1910.07207) when ``requested`` is "auto" or "auto_<fraction>".
    """
    if not (isinstance(requested, str) and requested.startswith("auto")):
        return sac_value
    if isinstance(action_space, spaces.Discrete):
        return discrete_target_entropy(int(action_space.n), requested)
    if requested != "auto":
        raise ValueError(
            f"target_entropy={requested!r}: 'auto_<fraction>' is for Discrete actions; use 'auto' (-dim(A)) or a "
            "number for Box actions"
        )
    return sac_value


# The arguments of SB3's SAC.__init__, by name
SAC_ARGUMENTS = tuple(name for name in inspect.signature(SAC.__init__).parameters if name != "self")


def sac_arguments(arguments: dict[str, Any]) -> dict[str, Any]:
    """The arguments of SB3's ``SAC.__init__`` among ``arguments``, forwarded as given."""
    return {name: arguments[name] for name in SAC_ARGUMENTS if name in arguments}


def gradient_steps_for(replay_ratio: float, train_freq: Any, n_envs: int) -> int:
    """
    Gradient steps per rollout that give ``replay_ratio`` gradient steps per collected transition. ``train_freq`` as
    the constructor takes it (``4``, ``(4, "step")``) or as SB3 keeps it once the model is built (``TrainFreq``).
    """
    if isinstance(train_freq, int):
        frequency, unit = train_freq, TrainFrequencyUnit.STEP
    else:
        frequency, unit = int(train_freq[0]), train_freq[1]
    if unit not in (TrainFrequencyUnit.STEP, TrainFrequencyUnit.STEP.value):
        raise ValueError(
            f"replay_ratio needs train_freq counted in steps, got {train_freq}: pass train_freq=(N, 'step'), or "
            "gradient_steps instead of replay_ratio"
        )
    steps = replay_ratio * (frequency * n_envs)
    if replay_ratio <= 0 or steps < 1 or abs(steps - round(steps)) > 1e-9:
        raise ValueError(
            f"replay_ratio={replay_ratio} with train_freq={frequency} and {n_envs} env(s) gives {steps} gradient "
            "steps per rollout: choose train_freq so that replay_ratio * train_freq * n_envs is a positive integer "
            "(for a saved model: SACAE.load(path, env, train_freq=...)), or pass replay_ratio=None and gradient_steps"
        )
    return round(steps)
