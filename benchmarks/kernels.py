"""Kernel timings behind SACAE's CPU speed choices: each lever before and after, on the paper's shapes.

Times forward + backward (median of ``--repeats`` runs after a warm-up) for a batch of 128 3-frame 84x84 images:

- the decoder's transposed convs (32 -> 32 stride 1, and the 32 -> 9 stride-2 output layer): ``nn.ConvTranspose2d``
  vs ``sb3_sacae.accel.deconv.DeconvLayer`` (same math, backward as regular convolutions), bfloat16 autocast and
  float32, channels-last;
- the dequantisation noise of the reconstruction target: ``torch.rand`` (a float per pixel) vs
  ``uniform_bytes`` (8 bytes per 64-bit draw);
- the reconstruction loss: ``F.mse_loss(reconstruction.float(), target)`` vs ``reconstruction_loss``;
- the projection head's Linear (39,200 conv features -> 50): float32 vs bfloat16;
- float32 Linear layers (the 1024-wide MLPs, the projection head outside bfloat16): ``nn.Linear`` (BLAS, MKL) vs
  ``sb3_sacae.accel.onednn.OneDNNLinear``;
- the conv input: uint8 NCHW -> bfloat16 NHWC in one layout-changing copy vs the layout change in uint8 first
  (``ConvTrunk.preprocess``);
- the C allocator: 8 blocks of 24 MB allocated, written and freed, with glibc's defaults vs ``tune_malloc`` (run
  last, since it changes the process; the page faults per round are printed too).

    python benchmarks/kernels.py                    # 2 threads, 20 repeats
    python benchmarks/kernels.py --threads 1 --repeats 50
"""

from __future__ import annotations

import argparse
import copy
import os
import resource
import time
from collections.abc import Callable

import numpy as np
import torch as th
from torch import nn
from torch.nn import functional as F

from sb3_sacae.accel.deconv import DeconvLayer
from sb3_sacae.accel.malloc import tune_malloc
from sb3_sacae.accel.onednn import OneDNNLinear, use_onednn_linears
from sb3_sacae.accel.reconstruction import reconstruction_loss
from sb3_sacae.reconstruction import reconstruction_target, uniform_bytes

CHANNELS, SIDE, FILTERS = 9, 84, 32


def median_ms(function: Callable[[], object], repeats: int) -> float:
    function()
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return 1e3 * float(np.median(times))


def deconv_pair(
    batch: int, in_side: int, out_channels: int, stride: int, output_padding: int, bf16: bool
) -> Callable[[type], Callable]:
    x = th.randn(batch, FILTERS, in_side, in_side).contiguous(memory_format=th.channels_last).requires_grad_()

    def make(layer_class: type) -> Callable[[], None]:
        layer = layer_class(FILTERS, out_channels, 3, stride=stride, output_padding=output_padding)
        layer = layer.to(memory_format=th.channels_last)
        with th.autocast("cpu", dtype=th.bfloat16, enabled=bf16):
            grad = th.randn_like(layer(x))

        def run() -> None:
            with th.autocast("cpu", dtype=th.bfloat16, enabled=bf16):
                out = layer(x)
            out.backward(grad)

        return run

    return make


def main(argv: list[str] | None = None) -> list[tuple[str, float, float]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--repeats", type=int, default=20, help="timed runs per kernel (default 20)")
    parser.add_argument("--batch-size", type=int, default=128, help="images per batch (default 128, the paper's)")
    args = parser.parse_args(argv)
    th.set_num_threads(args.threads)
    th.manual_seed(0)
    rows: list[tuple[str, float, float]] = []

    def compare(name: str, before: Callable[[], object], after: Callable[[], object]) -> None:
        rows.append((name, median_ms(before, args.repeats), median_ms(after, args.repeats)))

    for bf16 in (True, False):
        dtype = "bf16" if bf16 else "fp32"
        layers = (("32->32 stride 1", 35, FILTERS, 1, 0), ("32->9 stride 2", 41, CHANNELS, 2, 1))
        for label, in_side, out_channels, stride, padding in layers:
            make = deconv_pair(args.batch_size, in_side, out_channels, stride, padding, bf16)
            name = f"deconv {label} fwd+bwd {dtype} (ConvTranspose2d -> DeconvLayer)"
            compare(name, make(nn.ConvTranspose2d), make(DeconvLayer))

    shape = (args.batch_size, CHANNELS, SIDE, SIDE)
    compare("dequantisation noise (torch.rand -> uniform_bytes)", lambda: th.rand(shape), lambda: uniform_bytes(shape))

    pixels = th.randint(0, 256, shape, dtype=th.uint8)
    reconstruction = (th.rand(shape) - 0.5).bfloat16().contiguous(memory_format=th.channels_last).requires_grad_()

    def mse_loss() -> None:
        target = reconstruction_target(pixels, memory_format=th.channels_last)
        F.mse_loss(reconstruction.float(), target).backward()

    compare(
        "reconstruction loss fwd+bwd bf16 (mse_loss -> reconstruction_loss)",
        mse_loss,
        lambda: reconstruction_loss(reconstruction, pixels).backward(),
    )

    features = th.rand(args.batch_size, FILTERS * 35 * 35).requires_grad_()
    linear = nn.Linear(FILTERS * 35 * 35, 50)

    def projection(bf16: bool) -> Callable[[], None]:
        def run() -> None:
            with th.autocast("cpu", dtype=th.bfloat16, enabled=bf16):
                out = linear(features)
            out.float().sum().backward()

        return run

    compare("projection Linear 39200->50 fwd+bwd (fp32 -> bf16)", projection(False), projection(True))

    def linear_pair(in_features: int, out_features: int) -> tuple[Callable[[], None], Callable[[], None]]:
        inputs = th.randn(args.batch_size, in_features).requires_grad_()
        blas = nn.Linear(in_features, out_features)
        onednn = use_onednn_linears(copy.deepcopy(blas))
        assert isinstance(onednn, OneDNNLinear)
        return (lambda: blas(inputs).sum().backward()), (lambda: onednn(inputs).sum().backward())

    compare("MLP Linear 1024->1024 fwd+bwd fp32 (nn.Linear -> OneDNNLinear)", *linear_pair(1024, 1024))
    compare("projection Linear 39200->50 fwd+bwd fp32 (nn.Linear -> OneDNNLinear)", *linear_pair(FILTERS * 35 * 35, 50))

    def layout_then_widen() -> th.Tensor:
        return pixels.contiguous(memory_format=th.channels_last).to(th.bfloat16).mul_(1.0 / 255.0)

    compare(
        "uint8 NCHW -> bf16 NHWC conv input (one copy -> uint8 layout first)",
        lambda: pixels.to(dtype=th.bfloat16, memory_format=th.channels_last, copy=True).mul_(1.0 / 255.0),
        layout_then_widen,
    )

    faults = {}

    def churn(label: str) -> Callable[[], None]:
        def run() -> None:
            start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            blocks = [th.empty(6_000_000).fill_(1.0) for _ in range(8)]
            del blocks
            faults[label] = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - start

        return run

    before_ms = median_ms(churn("before"), args.repeats)
    tuned = tune_malloc()
    after_ms = median_ms(churn("after"), args.repeats)
    name = f"8 x 24 MB alloc+write+free (glibc defaults -> tune_malloc{'' if tuned else ': not glibc, no-op'})"
    rows.append((name, before_ms, after_ms))

    load = " ".join(f"{value:.2f}" for value in os.getloadavg())
    settings = f"{th.get_num_threads()} threads, batch {args.batch_size}, median of {args.repeats}, load {load}"
    print(f"\ntorch {th.__version__}, {settings}\n")
    print("| kernel | before ms | after ms | speed-up |")
    print("|---|---|---|---|")
    for name, before, after in rows:
        print(f"| {name} | {before:.1f} | {after:.1f} | {before / after:.2f}x |")
    print(f"\npage faults per round of 8 x 24 MB blocks: {faults['before']} with glibc's defaults, {faults['after']} tuned")
    return rows


if __name__ == "__main__":
    main()
