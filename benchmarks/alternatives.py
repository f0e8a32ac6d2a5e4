"""Kernel alternatives measured and not adopted: the adopted op next to an equivalent formulation, on the paper's shapes.

Each row times the op SACAE uses and an alternative that computes the same values (the script checks this and
prints the largest difference relative to the largest value, in float32), median of ``--repeats`` runs after a
warm-up, channels-last, batch 128, bfloat16 by default (what ``bf16_autocast=True`` runs the convs in):

- encoder conv 32 -> 32 then ReLU in place vs one oneDNN kernel with the ReLU as a post-op
  (``mkldnn._convolution_pointwise``), forward;
- decoder output layer (transposed conv 32 -> 9, stride 2, to 84x84) vs a 2x2 convolution to 4 x 9 sub-pixel
  phases followed by ``pixel_shuffle``, forward;
- encoder input layer (conv 9 -> 32, stride 2) vs space-to-depth (``pixel_unshuffle`` to 36 channels at 42x42,
  then a 2x2 stride-1 conv), forward + weight gradient;
- the online and the target encoder on the same next observations (second layer, 32 -> 32): two convs vs one
  grouped conv over their 64 stacked channels, forward;
- the projection Linear on NHWC conv features, forward + backward: the adopted weight kept in (H, W, C) order
  (``FlatOrdered``: it reads the NHWC memory as it is) vs a (C, H, W) weight with the features flattened to
  (C, H, W) order first (a copy of the activations; the layout before) vs a (C, H, W) weight permuted to (H, W, C)
  order on every forward;
- transposed conv 32 -> 32 vs the same values from oneDNN's backward-data convolution (``convolution_backward``),
  forward.

    python benchmarks/alternatives.py                    # bfloat16, 2 threads, 20 repeats
    python benchmarks/alternatives.py --dtype float32 --repeats 30
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import torch as th
from kernels import CHANNELS, FILTERS, SIDE, median_ms
from torch.nn import functional as F

from sb3_sacae.accel.bf16 import bf16_kernels_available

CL = th.channels_last


def rand(*shape: int, dtype: th.dtype) -> th.Tensor:
    values = th.randn(*shape).to(dtype)
    return values.contiguous(memory_format=CL) if values.dim() == 4 else values


def relative_difference(adopted: th.Tensor | tuple[th.Tensor, ...], alternative: th.Tensor) -> float:
    """Largest absolute difference over the largest magnitude, in float32 (a tuple is concatenated on dim 1)."""
    reference = th.cat(adopted, dim=1) if isinstance(adopted, tuple) else adopted
    return float((reference.float() - alternative.float()).abs().max() / reference.float().abs().max())


def phase_weight(weight: th.Tensor) -> th.Tensor:
    """(C_in, C_out, 3, 3) stride-2 transposed-conv weight -> (4 C_out, C_in, 2, 2) conv weight of its 4 output phases."""
    c_in, c_out = weight.shape[:2]
    phases = weight.new_zeros(c_out, 2, 2, c_in, 2, 2)  # (c_out, row parity, column parity, c_in, tap row, tap col)
    taps = {0: {0: 2, 1: 0}, 1: {1: 1}}  # output parity -> {tap (0: input m - 1, 1: input m): kernel index}
    for row_parity, row_taps in taps.items():
        for tap_row, kernel_row in row_taps.items():
            for col_parity, col_taps in taps.items():
                for tap_col, kernel_col in col_taps.items():
                    phases[:, row_parity, col_parity, :, tap_row, tap_col] = weight[:, :, kernel_row, kernel_col].t()
    return phases.reshape(4 * c_out, c_in, 2, 2).contiguous(memory_format=CL)


def main(argv: list[str] | None = None) -> list[tuple[str, float, float, float]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--repeats", type=int, default=20, help="timed runs per kernel (default 20)")
    parser.add_argument("--batch-size", type=int, default=128, help="images per batch (default 128, the paper's)")
    parser.add_argument("--dtype", choices=("bfloat16", "float32"), default="bfloat16")
    args = parser.parse_args(argv)
    if args.dtype == "bfloat16" and not bf16_kernels_available("cpu"):
        # the fused post-op below is oneDNN's own kernel, which has no bfloat16 fallback
        parser.error(
            "--dtype bfloat16 times oneDNN's bfloat16 kernels, which this CPU lacks (they need AVX512-BW/VL/DQ or "
            "AVX-NE-CONVERT): pass --dtype float32"
        )
    th.set_num_threads(args.threads)
    th.manual_seed(0)
    dtype, n = getattr(th, args.dtype), args.batch_size
    rows: list[tuple[str, float, float, float]] = []

    def compare(name: str, adopted: Callable[[], object], alternative: Callable[[], th.Tensor]) -> None:
        difference = relative_difference(adopted(), alternative())  # type: ignore[arg-type]
        rows.append((name, median_ms(adopted, args.repeats), median_ms(alternative, args.repeats), difference))

    # 1. conv + ReLU
    hidden, weight = rand(n, FILTERS, 41, 41, dtype=dtype), rand(FILTERS, FILTERS, 3, 3, dtype=dtype)
    bias = rand(FILTERS, dtype=dtype)
    compare(
        "conv 32->32 + ReLU fwd (relu_ after -> fused post-op)",
        lambda: th.relu_(F.conv2d(hidden, weight, bias)),
        lambda: th.ops.mkldnn._convolution_pointwise(hidden, weight, bias, [0, 0], [1, 1], [1, 1], 1, "relu", [], ""),
    )

    # 2. decoder output layer
    last_in, last_weight = rand(n, FILTERS, 41, 41, dtype=dtype), rand(FILTERS, CHANNELS, 3, 3, dtype=dtype)
    phases = phase_weight(last_weight)
    compare(
        "decoder output deconv 32->9 s2 fwd (conv_transpose2d -> 4-phase conv + pixel_shuffle)",
        lambda: F.conv_transpose2d(last_in, last_weight, stride=2, output_padding=1),
        lambda: F.pixel_shuffle(F.conv2d(last_in, phases, padding=1), 2).contiguous(memory_format=CL),
    )

    # 3. encoder input layer, forward + weight gradient
    pixels, first_weight = rand(n, CHANNELS, SIDE, SIDE, dtype=dtype), rand(FILTERS, CHANNELS, 3, 3, dtype=dtype)
    first_grad = rand(n, FILTERS, 41, 41, dtype=dtype)
    depth_weight = F.pixel_unshuffle(F.pad(first_weight, (0, 1, 0, 1)), 2).contiguous(memory_format=CL)
    grad_mask = [False, True, False]

    def direct() -> th.Tensor:
        F.conv2d(pixels, first_weight, stride=2)
        args_ = (first_grad, pixels, first_weight, None, [2, 2], [0, 0], [1, 1], False, [0, 0], 1, grad_mask)
        return th.ops.aten.convolution_backward(*args_)[1]

    def space_to_depth() -> th.Tensor:
        stacked = F.pixel_unshuffle(pixels, 2).contiguous(memory_format=CL)
        F.conv2d(stacked, depth_weight)
        args_ = (first_grad, stacked, depth_weight, None, [1, 1], [0, 0], [1, 1], False, [0, 0], 1, grad_mask)
        grad = th.ops.aten.convolution_backward(*args_)[1]
        return F.pixel_shuffle(grad, 2)[:, :, :3, :3]  # back to the (32, 9, 3, 3) weight's gradient

    compare("encoder input conv 9->32 s2 fwd + weight grad (direct -> space-to-depth)", direct, space_to_depth)

    # 4. online and target encoder on the same batch
    online, target = rand(FILTERS, FILTERS, 3, 3, dtype=dtype), rand(FILTERS, FILTERS, 3, 3, dtype=dtype)
    stacked_weight = th.cat([online, target]).contiguous(memory_format=CL)
    both = th.cat([hidden, hidden], dim=1).contiguous(memory_format=CL)  # in the step: the stacked first layer's output
    compare(
        "online + target conv 32->32 fwd (two convs -> one grouped conv)",
        lambda: (F.conv2d(hidden, online), F.conv2d(hidden, target)),
        lambda: F.conv2d(both, stacked_weight, groups=2),
    )

    # 5. projection Linear on NHWC features
    side = 35
    conv_out = rand(n, FILTERS, side, side, dtype=dtype)
    chw_weight = th.randn(50, FILTERS * side * side)
    hwc_weight = chw_weight.view(50, FILTERS, side, side).permute(0, 2, 3, 1).reshape(50, -1).clone()
    proj_bias, grad_out = th.zeros(50), th.randn(n, 50)

    def projection(order: str) -> Callable[[], th.Tensor]:
        def run() -> th.Tensor:
            features = conv_out.detach().requires_grad_()
            weight = (hwc_weight if order == "hwc" else chw_weight).detach().requires_grad_()
            if order == "chw":
                flat, used = features.contiguous().flatten(1), weight  # the adopted layout change of the activations
            else:
                flat = features.permute(0, 2, 3, 1).reshape(n, -1)  # a view: NHWC memory is (H, W, C) order
                permuted = weight.view(50, FILTERS, side, side).permute(0, 2, 3, 1).reshape(50, -1)
                used = permuted if order == "permuted" else weight
            F.linear(flat, used.to(dtype), proj_bias.to(dtype)).float().backward(grad_out)
            return features.grad  # type: ignore[return-value]

        return run

    adopted = projection("hwc")
    compare("projection 39200->50 fwd+bwd ((H, W, C) weight -> flatten copy, (C, H, W) weight)", adopted, projection("chw"))
    compare(
        "projection 39200->50 fwd+bwd ((H, W, C) weight -> (C, H, W) permuted per forward)", adopted, projection("permuted")
    )

    # 6. transposed conv through the backward-data primitive
    deconv_in, deconv_weight = rand(n, FILTERS, 35, 35, dtype=dtype), rand(FILTERS, FILTERS, 3, 3, dtype=dtype)
    shape_only = th.empty(n, FILTERS, 37, 37, dtype=dtype).contiguous(memory_format=CL)
    mask = [True, False, False]
    compare(
        "deconv 32->32 fwd (conv_transpose2d -> convolution_backward data)",
        lambda: F.conv_transpose2d(deconv_in, deconv_weight),
        lambda: th.ops.aten.convolution_backward(
            deconv_in, shape_only, deconv_weight, None, [1, 1], [0, 0], [1, 1], False, [0, 0], 1, mask
        )[0],
    )

    width = max(len(row[0]) for row in rows)
    print(f"{args.dtype}, batch {n}, {args.threads} threads, median of {args.repeats}; ms")
    print(f"{'kernel (adopted -> alternative)'.ljust(width)}  adopted  alternative  ratio  relative difference")
    for name, adopted_ms, alternative_ms, difference in rows:
        ratio = adopted_ms / alternative_ms
        print(f"{name.ljust(width)}  {adopted_ms:7.2f}  {alternative_ms:11.2f}  {ratio:5.2f}x  {difference:.3g}")
    return rows


if __name__ == "__main__":
    main()
