"""
The decoder's transposed convolutions with a backward written as regular convolutions: a drop-in for
``nn.ConvTranspose2d`` (same parameters, state-dict keys and math).

It buys a faster decoder backward on CPU, where oneDNN runs regular convolutions faster than its transposed-convolution
backward. Selected per device: any device other than the CPU takes plain ``nn.ConvTranspose2d``.
"""

import torch as th
from torch import nn
from torch.nn import functional as F


def deconv_backward_applies(device: th.device | str) -> bool:
    """Whether :class:`DeconvLayer` computes its backward as regular convolutions on ``device``: the CPU only."""
    return th.device(device).type == "cpu"


class _TransposedConvFunction(th.autograd.Function):
    """
    ``conv_transpose2d`` (no padding, no dilation, one group) with its backward written as regular convolutions:
    the input gradient is ``conv2d(grad_output, weight, stride)`` and the weight gradient is the weight gradient of
    that same convolution with the roles of input and output swapped. Same math as autograd's transposed-conv
    backward, which oneDNN runs 1.5-3x slower on CPU (the stride-2 output layer most of all: see ``DeconvLayer``).
    Under autocast it computes in the autocast dtype, like ``nn.ConvTranspose2d``.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, stride, output_padding):
        device_type = x.device.type
        # as autocast does: float32 (and half) inputs run in the autocast dtype, float64 stays float64
        cast = th.is_autocast_enabled(device_type) and x.dtype in (th.float32, th.float16, th.bfloat16)
        dtype = th.get_autocast_dtype(device_type) if cast else x.dtype
        ctx.dtypes = (x.dtype, weight.dtype, None if bias is None else bias.dtype)
        x, weight = x.to(dtype), weight.to(dtype)
        bias = None if bias is None else bias.to(dtype)
        with th.autocast(device_type=device_type, enabled=False):
            output = F.conv_transpose2d(x, weight, bias, stride=stride, output_padding=output_padding)
        ctx.save_for_backward(x, weight)
        ctx.stride = stride
        return output

    @staticmethod
    @th.autograd.function.once_differentiable
    def backward(ctx, grad_output):
        x, weight = ctx.saved_tensors
        x_dtype, weight_dtype, bias_dtype = ctx.dtypes
        grad_output = grad_output.to(x.dtype)
        grad_x = grad_weight = grad_bias = None
        with th.autocast(device_type=x.device.type, enabled=False):
            if ctx.needs_input_grad[0]:
                grad_x = F.conv2d(grad_output, weight, None, stride=ctx.stride).to(x_dtype)
            if ctx.needs_input_grad[1]:
                grad_weight = th.ops.aten.convolution_backward(
                    x, grad_output, weight, None, ctx.stride, [0, 0], [1, 1], False, [0, 0], 1, [False, True, False]
                )[1].to(weight_dtype)
            if bias_dtype is not None and ctx.needs_input_grad[2]:
                grad_bias = grad_output.sum(dim=(0, 2, 3)).to(bias_dtype)
        return grad_x, grad_weight, grad_bias, None, None


class DeconvLayer(nn.ConvTranspose2d):
    """
    ``nn.ConvTranspose2d`` (same parameters, same state dict keys, same math) whose backward runs as regular
    convolutions, which oneDNN runs faster than its transposed-convolution backward on CPU (``python
    benchmarks/kernels.py`` measures it). Batched (4D) input with the decoder's padding, dilation and groups
    (0, 1, 1) on the CPU only (:func:`deconv_backward_applies`); anything else, and every other device, falls back to
    ``nn.ConvTranspose2d``. First-order gradients only.
    """

    def forward(self, input: th.Tensor, output_size: list[int] | None = None) -> th.Tensor:
        plain = input.dim() == 4 and output_size is None
        plain = plain and self.padding == (0, 0) and self.dilation == (1, 1) and self.groups == 1
        if not plain or self.padding_mode != "zeros" or not deconv_backward_applies(input.device):
            return super().forward(input, output_size)
        return _TransposedConvFunction.apply(input, self.weight, self.bias, self.stride, self.output_padding)
