"""Replay sampling time: a batch of frame stacks from FrameStackReplayBuffer, gathered on the host or on the device.

One process fills two buffers with the same frame stream (episodes of 100 steps, consecutive stacks sharing k - 1
frames, as a frame-stacking env produces them): one samples on the host (a numpy gather of ``2 * batch`` stacks and
a copy to the device), one from a copy of its frames on the device (``frames_on_device=True``). It then times
``sample(batch)`` of each, alternating single samples (which one goes first alternates too) so that drift affects
both alike, synchronizing the device after each, and prints each one's mean and median time and the change. Both
draw the same indices, so the batches are checked to be equal. ``--csv`` appends one row.

    python benchmarks/sampling.py --device cuda                       # paper settings: 9x84x84, batch 128
    python benchmarks/sampling.py --device cuda --transitions 100000 --csv benchmarks/results/sampling.csv

On the CPU the device copy is a second host array, so the comparison only says that the path runs.
"""

from __future__ import annotations

import argparse
import datetime
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from throughput import MACHINE_FIELDS, append_csv, cpu_model, gpu_name, machine_row, stacked_transitions, synchronize

from sb3_sacae.buffers import FrameStackReplayBuffer

CSV_FIELDS = [
    *MACHINE_FIELDS,
    "image_size",
    "frame_stack",
    "channels_per_frame",
    "batch_size",
    "transitions",
    "samples",
    "host_ms_mean",
    "device_ms_mean",
    "host_ms_median",
    "device_ms_median",
    "change",
]


def fill(buffers: list[FrameStackReplayBuffer], transitions: int, frame_shape: tuple[int, ...], k: int, seed: int) -> None:
    """Add the same stream of ``transitions`` stacked transitions (episodes of 100 steps) to every buffer."""
    action_dim = int(np.prod(buffers[0].action_space.shape or ()))
    for transition in stacked_transitions(transitions, frame_shape, k, action_dim, seed):
        for buffer in buffers:
            buffer.add(*transition)


def time_samples(
    buffers: dict[str, FrameStackReplayBuffer], samples: int, batch_size: int, device: th.device
) -> dict[str, list[float]]:
    """Seconds per ``sample(batch_size)`` of each buffer, alternating, each batch checked against the others'."""
    times: dict[str, list[float]] = {name: [] for name in buffers}
    names = list(buffers)
    for i in range(samples):
        order = names if i % 2 == 0 else names[::-1]
        batches = {}
        for name in order:
            np.random.seed(i)  # the same indices for every buffer
            start = time.perf_counter()
            batches[name] = buffers[name].sample(batch_size)
            synchronize(device)
            times[name].append(time.perf_counter() - start)
        first, *others = (batches[name] for name in names)
        for other in others:
            if not (
                th.equal(first.observations, other.observations) and th.equal(first.next_observations, other.next_observations)
            ):
                raise RuntimeError("the buffers sampled different stacks for the same indices")
    return times


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--image-size", type=int, default=84)
    parser.add_argument("--frame-stack", type=int, default=3)
    parser.add_argument("--channels-per-frame", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--transitions", type=int, default=10_000, help="transitions in each buffer (default 10,000)")
    parser.add_argument("--samples", type=int, default=200, help="timed samples per buffer (default 200)")
    parser.add_argument("--warmup", type=int, default=10, help="untimed samples per buffer first (default 10)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--csv", type=Path, default=None, help="append one row of settings and results to this CSV")
    args = parser.parse_args(argv)
    device = th.device(args.device)
    if device.type == "cuda" and not th.cuda.is_available():
        parser.error("--device cuda given but torch sees no CUDA device: use --device cpu")

    k, channels = args.frame_stack, args.channels_per_frame
    frame_shape = (channels, args.image_size, args.image_size)
    observation_space = spaces.Box(0, 255, (k * channels, args.image_size, args.image_size), np.uint8)
    action_space = spaces.Box(-1.0, 1.0, (6,), np.float32)
    buffers = {
        where: FrameStackReplayBuffer(
            args.transitions, observation_space, action_space, device=device, frame_stack=k, frames_on_device=on_device
        )
        for where, on_device in (("host", False), ("device", True))
    }
    fill(list(buffers.values()), args.transitions, frame_shape, k, args.seed)
    time_samples(buffers, args.warmup, args.batch_size, device)
    times = time_samples(buffers, args.samples, args.batch_size, device)

    ms = {name: 1e3 * np.asarray(values) for name, values in times.items()}
    change = ms["device"].mean() / ms["host"].mean() - 1
    print(
        f"\n{datetime.date.today()}  {cpu_model()} x{os.cpu_count()}  {gpu_name(device)}  torch {th.__version__}  "
        f"device {device}\n{k} stacked {channels}x{args.image_size}x{args.image_size} frames, batch {args.batch_size}, "
        f"{args.transitions:,} transitions, {args.warmup} warm-up + {args.samples} timed samples each, alternating\n"
    )
    print("| frames gathered on | ms/sample mean | median |")
    print("|---|---|---|")
    for name, values in ms.items():
        print(f"| {name} | {values.mean():.3f} | {np.median(values):.3f} |")
    print(f"\nsampling on the device: {100 * change:+.1f} % time per sample")

    row = {
        **machine_row(device),
        "image_size": args.image_size,
        "frame_stack": k,
        "channels_per_frame": channels,
        "batch_size": args.batch_size,
        "transitions": args.transitions,
        "samples": args.samples,
        "host_ms_mean": f"{ms['host'].mean():.4f}",
        "device_ms_mean": f"{ms['device'].mean():.4f}",
        "host_ms_median": f"{np.median(ms['host']):.4f}",
        "device_ms_median": f"{np.median(ms['device']):.4f}",
        "change": f"{change:.4f}",
    }
    if args.csv is not None:
        append_csv(args.csv, row, CSV_FIELDS)
        print(f"appended to {args.csv}")
    return row


if __name__ == "__main__":
    main()
