"""
Guards that stop training before a non-finite number reaches the parameters, each error naming the quantity, the
gradient step and the agent step, and the likely fix.
"""

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch as th
from torch import nn

from sb3_sacae.accel.norms import norms
from sb3_sacae.accel.sync_free import step_unless

# What a deferred check's error adds: the call's update went on, but no step with a failed check moved anything
_SKIPPED = "; the optimizer steps a failed check guarded were skipped, so no parameter became non-finite"


def _loss_error(quantity: str, number: float, gradient_step: int, agent_step: int, stopped: str) -> FloatingPointError:
    return FloatingPointError(
        f"SACAE: the {quantity} is {number} at gradient step {gradient_step} (agent step {agent_step}); training "
        f"{stopped}. Check the rewards and observations (NaN/inf), lower the learning rates or use float32 "
        "(bf16_autocast=False)"
    )


def _gradients_error(name: str, gradient_step: int, agent_step: int, stopped: str) -> FloatingPointError:
    return FloatingPointError(
        f"SACAE: non-finite {name} gradients at gradient step {gradient_step} (agent step {agent_step}); training "
        f"{stopped}"
    )


def finite_loss(quantity: str, value: th.Tensor, gradient_step: int, agent_step: int) -> float:
    """The loss as a float; raise, naming the update and the quantity, before a non-finite loss is used."""
    number = value.item()
    if not np.isfinite(number):
        raise _loss_error(quantity, number, gradient_step, agent_step, "stopped before any parameter became non-finite")
    return number


def non_finite_gradients(optimizers: dict[str, th.optim.Optimizer | None], fast: bool = True) -> dict[str, th.Tensor]:
    """
    Per optimizer with gradients, a boolean scalar on their device: whether any of them is not finite (a finite loss
    can still overflow in backward). Nothing is read on the host.

    :param fast: compute the gradients' norms in one fused call where the accel seam selects it
    """
    flags = {}
    for name, optimizer in optimizers.items():
        grads = [p.grad for group in (optimizer.param_groups if optimizer else []) for p in group["params"]]
        present = [grad for grad in grads if grad is not None]
        if present:
            flags[name] = ~th.isfinite(th.stack(norms(present, fast))).all()
    return flags


def check_gradients(
    optimizers: dict[str, th.optim.Optimizer | None], gradient_step: int, agent_step: int, fast: bool = True
) -> None:
    """
    Raise before a step when a gradient is not finite (a finite loss can still overflow in backward).

    :param fast: compute the gradients' norms in one fused call where the accel seam selects it
    """
    for name, flag in non_finite_gradients(optimizers, fast).items():
        if flag.item():
            raise _gradients_error(name, gradient_step, agent_step, "stopped before any parameter became non-finite")


class TrainRecord:
    """
    What one ``train()`` call logs, and its finite checks: the losses and each optimizer step's gradients.

    Immediate (the default), each check is read on the host when it is made and raises before anything uses the
    non-finite number. Deferred (:mod:`sb3_sacae.accel.sync_free`, fused optimizers only), each check stays on the
    device, where a failed one skips the optimizer steps it guards (a loss guards the step that follows its backward,
    :meth:`step`'s ``losses``), and :meth:`close` reads every check and logged value in one transfer, raising for the
    first failed check in the update's order. Either way no parameter moves on a non-finite number.

    :param agent_step: the agent step the errors name
    :param deferred: keep the checks on the device until :meth:`close`
    :param fast: compute the gradients' norms in one fused call where the accel seam selects it
    """

    def __init__(self, agent_step: int, deferred: bool = False, fast: bool = True):
        self.agent_step, self.deferred, self.fast = agent_step, deferred, fast
        self._values: dict[str, list[Any]] = defaultdict(list)
        # Deferred checks in the update's order: ("loss" or "gradients", the name the error gives, the gradient step, a
        # scalar on the device); a loss fails when it is not finite, a gradient check when its flag is set
        self._checks: list[tuple[str, str, int, th.Tensor]] = []

    def log(self, key: str, value: th.Tensor) -> None:
        """Log a scalar tensor under ``key`` (the call's mean is recorded)."""
        self._values[key].append(value.detach().float().reshape(()) if self.deferred else value.item())

    def loss(self, key: str, quantity: str, value: th.Tensor, gradient_step: int) -> None:
        """Log a loss under ``key``, checked finite (``quantity`` names it in the error)."""
        if not self.deferred:
            self._values[key].append(finite_loss(quantity, value, gradient_step, self.agent_step))
            return
        self.log(key, value)
        self._checks.append(("loss", quantity, gradient_step, self._values[key][-1]))

    def step(self, optimizers: dict[str, th.optim.Optimizer], gradient_step: int, losses: Sequence[th.Tensor] = ()) -> None:
        """
        Step each optimizer once the ``losses`` whose gradients it holds (already checked by :meth:`loss`) and all of
        its gradients are known finite: immediate, raising before any of them moves; deferred, every one of them
        skipped on the device if one of those is not finite.
        """
        if not self.deferred:
            check_gradients(dict(optimizers), gradient_step, self.agent_step, self.fast)
            for optimizer in optimizers.values():
                optimizer.step()
            return
        flags = non_finite_gradients(dict(optimizers), self.fast)
        self._checks += [("gradients", name, gradient_step, flag) for name, flag in flags.items()]
        failed = [*flags.values(), *(~th.isfinite(loss.detach()) for loss in losses)]
        skip = th.stack(failed).any() if failed else None
        for optimizer in optimizers.values():
            if skip is None:
                optimizer.step()  # no gradients: nothing to check
            else:
                step_unless(optimizer, skip)

    def close(self) -> dict[str, float]:
        """
        The mean of each logged key. Deferred, every value and check is read first, in one transfer, and the first
        failed check raises.
        """
        if not self.deferred:
            return {key: float(np.mean(values)) for key, values in self._values.items() if values}
        logged = [value for values in self._values.values() for value in values]
        checked = [value.float() for *_, value in self._checks]
        numbers = iter(th.stack(logged + checked).tolist() if logged + checked else [])
        means = {}
        for key, values in self._values.items():
            chunk = [next(numbers) for _ in values]
            if chunk:
                means[key] = float(np.mean(chunk))
        for (kind, name, gradient_step, _), number in zip(self._checks, numbers, strict=True):
            if kind == "loss" and not np.isfinite(number):
                raise _loss_error(name, number, gradient_step, self.agent_step, "stopped" + _SKIPPED)
            if kind == "gradients" and number:
                raise _gradients_error(name, gradient_step, self.agent_step, "stopped" + _SKIPPED)
        return means


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
