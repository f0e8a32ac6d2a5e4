"""
Finite checks that keep the GPU busy: each optimizer step is skipped on the device when its check fails, and the
checks are read on the host once per ``train()`` call instead of before every step.

The update checks every loss and every optimizer's gradients before the parameters move (:mod:`sb3_sacae.guards`).
Read on the host, each check waits for the GPU to finish all the work queued before it, so the CPU cannot queue the
next kernels while the GPU runs: about seven waits per gradient step. Deferred, each step's check is a flag on the
device, handed to the fused optimizer as ``found_inf`` (the flag torch's ``GradScaler`` hands it): a set flag leaves
the parameters, the moments and the step count as they were. The flags and the logged values are then read in one
transfer at the end of the call, where the first failed check raises. Either way no parameter becomes non-finite.

torch's argument checks of the actor's distributions read on the host as well (twice per actor forward): a deferred
update turns them off while it runs (:func:`distribution_checks`), since its finite checks catch what they catch.

:func:`deferred_checks_apply`: CUDA devices, when every optimizer of the update is fused.
"""

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import torch as th

# Devices where a host read of a check stalls a queue of device work
_DEFERRED_DEVICES = ("cuda",)


def deferred_checks_apply(device: th.device | str, optimizers: Iterable[th.optim.Optimizer | None]) -> bool:
    """Whether the update's finite checks are deferred on ``device``: there, with every optimizer fused."""
    if th.device(device).type not in _DEFERRED_DEVICES:
        return False
    present = [optimizer for optimizer in optimizers if optimizer is not None]
    return all(skips_on_flag(optimizer) for optimizer in present)


def skips_on_flag(optimizer: th.optim.Optimizer) -> bool:
    """Whether ``optimizer`` can skip a step on a device flag: torch's fused Adam and AdamW."""
    return isinstance(optimizer, th.optim.Adam | th.optim.AdamW) and all(
        group.get("fused") for group in optimizer.param_groups
    )


def step_unless(optimizer: th.optim.Optimizer, flag: th.Tensor) -> None:
    """
    One step of a fused optimizer (:func:`skips_on_flag`) that leaves everything as it was where ``flag``, a
    boolean scalar on the parameters' device, is set. Nothing is read on the host.
    """
    if not skips_on_flag(optimizer):
        raise TypeError(f"step_unless needs a fused Adam or AdamW optimizer, got {type(optimizer).__name__}")
    # Read by the fused step as GradScaler's found_inf: a float scalar, 1 to skip; set for this step only
    optimizer.found_inf = flag.to(th.float32)  # type: ignore[attr-defined]
    try:
        optimizer.step()
    finally:
        del optimizer.found_inf  # type: ignore[attr-defined]


@contextmanager
def distribution_checks(enabled: bool) -> Iterator[None]:
    """
    torch's argument checks of the distributions built inside (SB3's Gaussians), as ``enabled`` says. Turned off,
    torch's default is restored on leaving; the setting is process-wide while it lasts.
    """
    if enabled:
        yield
        return
    previous = th.distributions.Distribution._validate_args
    th.distributions.Distribution.set_default_validate_args(False)
    try:
        yield
    finally:
        th.distributions.Distribution.set_default_validate_args(previous)
