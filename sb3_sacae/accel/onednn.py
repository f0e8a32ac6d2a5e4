"""
oneDNN float32 Linear layers for CPU: a drop-in for ``nn.Linear`` (same parameters, state-dict keys and math).

It buys the actor and critic MLPs' float32 matmuls on CPUs where the BLAS library is slow for these shapes; on any
other device, dtype, under autocast, or on torch builds without oneDNN it is plain ``F.linear``.
"""

from typing import Any

import torch as th
from torch import nn
from torch.nn import functional as F


def _find_onednn_linear() -> object | None:
    """oneDNN's fused Linear op (``torch.ops.mkldnn._linear_pointwise``), or None where this torch build lacks it."""
    try:
        return th.ops.mkldnn._linear_pointwise if th.backends.mkldnn.is_available() else None
    except (AttributeError, RuntimeError):
        return None


# oneDNN's op, untyped (a private torch op)
_ONEDNN_LINEAR: Any = _find_onednn_linear()


def onednn_linear_applies(device: th.device | str) -> bool:
    """Whether :class:`OneDNNLinear` runs on oneDNN for tensors on ``device``: CPU with a oneDNN build only."""
    return _ONEDNN_LINEAR is not None and th.device(device).type == "cpu"


def _onednn_matmul(a: th.Tensor, weight: th.Tensor, bias: th.Tensor | None = None) -> th.Tensor:
    """``a @ weight.T + bias`` on oneDNN (float32 in, float32 out and accumulation)."""
    return _ONEDNN_LINEAR(a, weight, bias, "none", [], "")


class _OneDNNLinearFunction(th.autograd.Function):
    """``inputs @ weight.T + bias`` for 2D float32 ``inputs`` on oneDNN, with a oneDNN backward."""

    @staticmethod
    def forward(ctx, inputs, weight, bias):
        ctx.save_for_backward(inputs, weight)
        ctx.has_bias = bias is not None
        return _onednn_matmul(inputs, weight, bias)

    @staticmethod
    def backward(ctx, grad):
        inputs, weight = ctx.saved_tensors
        grad_inputs = grad_weight = grad_bias = None
        if th.is_grad_enabled():
            # create_graph=True (a gradient penalty, say): differentiable ops, so double backward stays exact
            if ctx.needs_input_grad[0]:
                grad_inputs = grad @ weight
            if ctx.needs_input_grad[1]:
                grad_weight = grad.t() @ inputs
        else:
            if ctx.needs_input_grad[0]:
                grad_inputs = _onednn_matmul(grad, weight.t())
            if ctx.needs_input_grad[1]:
                # oneDNN wins when the output is no wider than the input; BLAS for wide outputs (the decoder's Linear)
                wide = weight.shape[0] > weight.shape[1]
                grad_weight = grad.t() @ inputs if wide else _onednn_matmul(grad.t(), inputs.t())
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_bias = grad.sum(dim=0)
        return grad_inputs, grad_weight, grad_bias


class OneDNNLinear(nn.Linear):
    """
    ``nn.Linear`` whose float32 matmuls on CPU (forward and backward) run on oneDNN instead of the BLAS library: the
    same float32 math, with float32 accumulation, in a different summation order. On AMD CPUs MKL's float32 matmul
    runs at about half of oneDNN's speed (``benchmarks/kernels.py``: 2x on the 128 x 1024 x 1024 layers of the
    actor and critic MLPs). Other devices and dtypes, autocast, and torch builds without oneDNN use ``F.linear``.
    Same parameters and state-dict keys as ``nn.Linear``; :func:`use_onednn_linears` converts a network in place.
    """

    def forward(self, inputs: th.Tensor) -> th.Tensor:
        if (
            onednn_linear_applies(inputs.device)
            and inputs.dtype == self.weight.dtype == th.float32
            and (self.bias is None or self.bias.dtype == th.float32)
            and inputs.dim() >= 1
            and inputs.numel() > 0
            and not th.is_autocast_enabled("cpu")
        ):
            outputs = _OneDNNLinearFunction.apply(inputs.reshape(-1, inputs.shape[-1]), self.weight, self.bias)
            return outputs if inputs.dim() == 2 else outputs.view(*inputs.shape[:-1], self.out_features)
        return F.linear(inputs, self.weight, self.bias)


def use_onednn_linears(module: nn.Module) -> nn.Module:
    """
    Turn every plain ``nn.Linear`` of ``module`` into a :class:`OneDNNLinear`, in place: the same objects, parameters,
    hooks and references (shared layers stay shared), only their forward changes. Returns ``module``.
    """
    for layer in module.modules():
        if type(layer) is nn.Linear:
            layer.__class__ = OneDNNLinear
    return module
