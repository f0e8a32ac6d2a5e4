"""The constructor arguments of :class:`~sb3_sacae.SACAE`: checks with errors that name the fix, and derived values."""

import inspect
from typing import Any

from gymnasium import spaces
from stable_baselines3 import SAC


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


def check_arguments(arguments: dict[str, Any]) -> None:
    """Raise a clear error for SAC-AE arguments out of range (``arguments``: the constructor's, by name)."""
    for name in ("target_update_interval", "actor_update_interval"):
        if int(arguments[name]) < 1:
            raise ValueError(f"{name} must be a positive number of gradient steps, got {arguments[name]}")
    check_action_space(getattr(arguments["env"], "action_space", None))
    if int(arguments["decoder_update_interval"]) < 0:
        raise ValueError(
            "decoder_update_interval must be >= 0 (0 turns the autoencoder off), got "
            f"{arguments['decoder_update_interval']}"
        )
    if int(arguments["random_shift"]) < 0:
        raise ValueError(
            f"random_shift is a padding in pixels, >= 0 (0 turns it off, DrQ uses 4), got {arguments['random_shift']}"
        )


# The arguments of SB3's SAC.__init__, by name
SAC_ARGUMENTS = tuple(name for name in inspect.signature(SAC.__init__).parameters if name != "self")


def sac_arguments(arguments: dict[str, Any]) -> dict[str, Any]:
    """The arguments of SB3's ``SAC.__init__`` among ``arguments``, forwarded as given."""
    return {name: arguments[name] for name in SAC_ARGUMENTS if name in arguments}


def gradient_steps_for(replay_ratio: float, train_freq: Any, n_envs: int) -> int:
    """Gradient steps per rollout that give ``replay_ratio`` gradient steps per collected transition."""
    if not isinstance(train_freq, int) and not (isinstance(train_freq, tuple) and train_freq[1] == "step"):
        raise ValueError(f"replay_ratio needs train_freq counted in steps, got {train_freq}")
    frequency = train_freq if isinstance(train_freq, int) else int(train_freq[0])
    steps = replay_ratio * (frequency * n_envs)
    if replay_ratio <= 0 or steps < 1 or abs(steps - round(steps)) > 1e-9:
        raise ValueError(
            f"replay_ratio={replay_ratio} with train_freq={frequency} and {n_envs} env(s) gives {steps} gradient "
            "steps per rollout: choose train_freq so that replay_ratio * train_freq * n_envs is a positive integer"
        )
    return round(steps)
