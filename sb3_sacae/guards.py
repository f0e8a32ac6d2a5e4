"""
Guards that stop training before a non-finite number reaches the parameters, each error naming the quantity, the
gradient step and the agent step, and the likely fix.
"""

from typing import Any

import numpy as np
import torch as th
from torch import nn

from sb3_sacae.accel.norms import norms


def finite_loss(quantity: str, value: th.Tensor, gradient_step: int, agent_step: int) -> float:
    """The loss as a float; raise, naming the update and the quantity, before a non-finite loss is used."""
    number = value.item()
    if not np.isfinite(number):
        raise FloatingPointError(
            f"SACAE: the {quantity} is {number} at gradient step {gradient_step} (agent step {agent_step}); training "
            "stopped before any parameter became non-finite. Check the rewards and observations (NaN/inf), lower the "
            "learning rates or use float32 (bf16_autocast=False)"
        )
    return number


def check_gradients(optimizers: dict[str, th.optim.Optimizer | None], gradient_step: int, agent_step: int) -> None:
    """Raise before a step when a gradient is not finite (a finite loss can still overflow in backward)."""
    for name, optimizer in optimizers.items():
        grads = [p.grad for group in (optimizer.param_groups if optimizer else []) for p in group["params"]]
        present = [grad for grad in grads if grad is not None]
        if present and not th.isfinite(th.stack(norms(present))).all():
            raise FloatingPointError(
                f"SACAE: non-finite {name} gradients at gradient step {gradient_step} (agent step {agent_step}); "
                "training stopped before any parameter became non-finite"
            )


def check_transition(reward: np.ndarray, new_obs: Any, agent_step: int) -> None:
    """Refuse non-finite data before it reaches the replay buffer (and, through it, the losses)."""
    arrays = {"reward": reward, "observation": new_obs}
    if isinstance(new_obs, dict):
        arrays.update({f"observation[{key!r}]": value for key, value in new_obs.items()})
    for quantity, array in arrays.items():
        if isinstance(array, np.ndarray) and np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
            raise FloatingPointError(
                f"SACAE: non-finite {quantity} from the environment at agent step {agent_step}: fix the environment or "
                "wrap it (e.g. gymnasium.wrappers.TransformReward / TransformObservation)"
            )


def check_parameters(network: nn.Module) -> None:
    """Refuse to save a network with a non-finite parameter."""
    for name, parameter in network.named_parameters():
        if not th.isfinite(parameter).all():
            raise FloatingPointError(f"SACAE.save: parameter {name} is not finite; refusing to save a broken model")
