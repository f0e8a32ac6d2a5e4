"""
The norms of many tensors at once: one fused call (``torch._foreach_norm``) instead of a norm per tensor.

It buys the gradient check before each optimizer step (a few dozen parameter tensors) one kernel launch instead of
one per tensor. Selected per device: the CPU and CUDA take the fused call, any other device a norm per tensor.
"""

import torch as th

# Devices where torch's fused foreach norm is known to work
_FOREACH_DEVICES = ("cpu", "cuda")


def foreach_norm_applies(device: th.device | str) -> bool:
    """Whether :func:`norms` computes the norms in one fused call for tensors on ``device``."""
    return th.device(device).type in _FOREACH_DEVICES and hasattr(th, "_foreach_norm")


def norms(tensors: list[th.Tensor]) -> list[th.Tensor]:
    """The L2 norm of each tensor (``torch.linalg.vector_norm``), fused where :func:`foreach_norm_applies`."""
    if tensors and foreach_norm_applies(tensors[0].device):
        return list(th._foreach_norm(tensors))
    return [th.linalg.vector_norm(tensor) for tensor in tensors]
