"""
Finite checks that keep the GPU busy: each optimizer step is skipped on the device when its check fails, and the
checks are read on the host once per ``train()`` call instead of before every step.

The update checks every loss and every optimizer's gradients before the parameters move (:mod:`sb3_sacae.guards`).
Read on the host, each check (and each logged value) waits for the GPU to finish all the work queued before it, so
the CPU cannot queue the next kernels while the GPU runs: over ten waits per gradient step. Deferred, each step's
checks are a flag on the device, handed to the fused optimizer as ``found_inf`` (the flag torch's ``GradScaler``
hands it): a set flag leaves the parameters, the moments and the step count as they were. The flags and the logged
values are then read in one transfer at the end of the call, where the first failed check raises. Either way no
parameter moves on a non-finite number.

:func:`deferred_checks_apply`: CUDA devices, when every optimizer of the update is fused (the networks' are by
default, and the temperature's is there). The update's host-to-device copies wait for the GPU too unless they come
from pinned memory, as :class:`~sb3_sacae.buffers.FrameStackReplayBuffer`'s do with ``frames_on_device``; SB3's
buffers copy from ordinary memory.
"""

from collections.abc import Iterable

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
    """
    Whether ``optimizer`` can skip a step on a device flag: torch's own fused Adam and AdamW (not a subclass, whose
    ``step`` may not read the flag).
    """
    return type(optimizer) in (th.optim.Adam, th.optim.AdamW) and all(group.get("fused") for group in optimizer.param_groups)


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


def set_fused(optimizer: th.optim.Optimizer, fused: bool | None) -> None:
    """
    Make a built (or loaded) Adam or AdamW optimizer fused or not, its step counts where that implementation keeps
    them (a fused step reads them on the parameters' device, the others on the CPU).
    """
    for group in optimizer.param_groups:
        group["fused"] = fused
        for parameter in group["params"]:
            state = optimizer.state.get(parameter, {})
            if "step" in state:
                device = parameter.device if fused or group.get("capturable") else th.device("cpu")
                state["step"] = state["step"].to(device=device, dtype=th.float32)
