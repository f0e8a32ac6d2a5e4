"""
The reconstruction loss in fewer passes over memory: a drop-in for
:func:`~sb3_sacae.reconstruction.plain_reconstruction_loss` (same noise, value and gradient, to float32 rounding).

It buys the largest elementwise pass of the update on CPU: the float32 residual is built a cache-sized slice of the
batch at a time instead of as one large temporary that the C allocator maps and page-faults afresh on every step, and
the gradient is written straight in the reconstruction's dtype and layout. Selected per device: the CPU takes the
sliced loss, any other device the plain one; ``fast_kernels=False`` takes the plain one everywhere.
"""

import torch as th

from sb3_sacae.reconstruction import check_bits, fill_target, plain_reconstruction_loss, uniform_bytes


def sliced_loss_applies(device: th.device | str) -> bool:
    """Whether :func:`reconstruction_loss` runs the sliced loss for tensors on ``device``: the CPU only."""
    return th.device(device).type == "cpu"


def reconstruction_loss(reconstruction: th.Tensor, observations: th.Tensor, bits: int = 5, fast: bool = True) -> th.Tensor:
    """
    MSE of the reconstruction against the 5-bit dequantised target of the observations: the sliced loss where
    :func:`sliced_loss_applies` (and ``fast``), the plain one otherwise.

    :param reconstruction: decoder output, (N, C, H, W), any float dtype and layout
    :param observations: raw pixels in [0, 255] of the same shape
    :param bits: bits kept per pixel (paper: 5)
    :param fast: False takes the plain loss on every device
    """
    if fast and sliced_loss_applies(reconstruction.device):
        return sliced_reconstruction_loss(reconstruction, observations, bits)
    return plain_reconstruction_loss(reconstruction, observations, bits)


def sliced_reconstruction_loss(reconstruction: th.Tensor, observations: th.Tensor, bits: int = 5) -> th.Tensor:
    """
    ``F.mse_loss(reconstruction.float(), reconstruction_target(observations, bits))`` in fewer passes over memory:
    the float32 residual is built a slice of the batch at a time (about 4 MB, so it stays in cache and never
    becomes one 32 MB allocation that the C allocator maps and page-faults afresh on every step), each slice gives
    its share of the loss and writes its share of the gradient straight in the reconstruction's dtype and layout.
    The reconstruction (bfloat16 under autocast) is never copied to float32. Same noise, value and gradient as the
    formula above, to float32 rounding of the sum (tests/algorithm/test_reconstruction_target.py).

    :param reconstruction: decoder output, (N, C, H, W), any float dtype and layout
    :param observations: raw pixels in [0, 255] of the same shape
    """
    return _ReconstructionLoss.apply(reconstruction, observations, bits)


# float32 elements of residual built at once by sliced_reconstruction_loss (4 MB)
_RESIDUAL_CHUNK = 2**20


class _ReconstructionLoss(th.autograd.Function):
    @staticmethod
    def forward(ctx, reconstruction, observations, bits):
        check_bits(bits)
        if reconstruction.dim() == 0 or observations.shape != reconstruction.shape:
            raise ValueError(
                f"reconstruction_loss: reconstruction {tuple(reconstruction.shape)} and observations "
                f"{tuple(observations.shape)} must have the same shape, batch first"
            )
        noise = uniform_bytes(observations.shape, observations.device)  # all at once: one stream however sliced
        grad = th.empty_like(reconstruction)  # same dtype and layout
        n = reconstruction.numel()
        rows = max(1, _RESIDUAL_CHUNK // max(1, n // max(1, len(reconstruction))))
        total = reconstruction.new_zeros((), dtype=th.float32)
        for start in range(0, len(reconstruction), rows):
            part = slice(start, start + rows)
            residual = fill_target(
                th.empty_like(reconstruction[part], dtype=th.float32), observations[part], noise[part], bits
            )
            residual.sub_(reconstruction[part])
            total += th.linalg.vector_norm(residual).square()
            # d loss / d reconstruction = -2 (target - reconstruction) / n, rounded once into the gradient's dtype
            grad[part].copy_(residual.mul_(-2.0 / n))
        ctx.save_for_backward(grad)
        return total / n

    @staticmethod
    @th.autograd.function.once_differentiable
    def backward(ctx, grad_output):
        (grad,) = ctx.saved_tensors
        if bool(grad_output == 1):
            # The usual case (the loss enters the total as it is): no pass over the batch. Autograd never writes
            # into an incoming gradient, and a leaf's .grad gets a copy while ctx holds this one
            return grad, None, None
        return grad * grad_output.to(grad.dtype), None, None
