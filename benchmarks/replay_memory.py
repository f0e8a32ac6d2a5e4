"""Replay memory benchmark: bytes per transition and sampling time, FrameStackReplayBuffer vs SB3.

Fills each buffer with the same frame-stacked stream (3 stacked 84x84 RGB frames, channel-first
9x84x84 as SB3 feeds a CNN, episodes of 125 steps as cartpole_swingup with action repeat 8), then
times ``sample(batch_size)``. Prints a Markdown table; ``--csv FILE`` appends one row per buffer, which
``benchmarks/report.py`` turns into the table of the replay memory page (bytes per transition are exact counts of the
arrays each buffer holds; the times depend on the machine and its load, recorded with them). On the CPU it opts into
:func:`sb3_sacae.accel.tune_malloc`, as ``benchmarks/throughput.py`` does: otherwise each ``sample()``'s output arrays
may be mapped and page-faulted afresh, depending on what the process allocated before, and the times measure glibc's
state rather than the buffer (``--plain-malloc`` leaves malloc alone).

    python benchmarks/replay_memory.py --threads 2 --csv benchmarks/results/replay_memory.csv
"""

import argparse
import datetime
import time
from pathlib import Path

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import ReplayBuffer
from throughput import MACHINE_FIELDS, append_csv, loadavg, machine_row, synchronize

from sb3_sacae.accel import tune_malloc
from sb3_sacae.buffers import FrameStackReplayBuffer

FRAME_STACK = 3
FRAME_SHAPE = (3, 84, 84)
OBS_SHAPE = (FRAME_STACK * FRAME_SHAPE[0], *FRAME_SHAPE[1:])
ACTION_DIM = 6
CSV_FIELDS = [
    *MACHINE_FIELDS,
    "threads",
    "malloc",
    "transitions",
    "episode_length",
    "batch_size",
    "repeats",
    "buffer",
    "bytes_per_transition",
    "sample_ms_median",
    "sample_ms_p90",
    "add_us",
    "loadavg_before",
    "loadavg_after",
]


def stream(n_transitions: int, episode_length: int, seed: int = 0):
    """(obs, next_obs, action, reward, done, infos) as VecFrameStack and SB3's _store_transition give them."""
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 256, (64, *FRAME_SHAPE), dtype=np.uint8)  # a pool: drawing 21 kB per step is slow

    def new_frame():
        return frames[rng.integers(len(frames))]

    obs = np.zeros((1, *OBS_SHAPE), dtype=np.uint8)
    obs[0, -3:] = new_frame()
    t = 0
    for _ in range(n_transitions):
        t += 1
        next_obs = np.concatenate((obs[:, 3:], new_frame()[None]), axis=1)
        done = np.array([t == episode_length])
        infos = [{"TimeLimit.truncated": bool(done[0])}]
        yield obs, next_obs, rng.uniform(-1, 1, (1, ACTION_DIM)).astype(np.float32), rng.normal(size=1), done, infos
        if done[0]:
            t = 0
            obs = np.zeros_like(obs)
            obs[0, -3:] = new_frame()
        else:
            obs = next_obs


def measure(name: str, buffer: ReplayBuffer, args: argparse.Namespace) -> dict:
    """Fill ``buffer`` with the stream, then time ``sample()``: one CSV row."""
    load_before = loadavg()
    start = time.perf_counter()
    for transition in stream(args.transitions, args.episode_length):
        buffer.add(*transition)
    add_us = (time.perf_counter() - start) / args.transitions * 1e6
    nbytes = sum(value.nbytes for value in vars(buffer).values() if isinstance(value, np.ndarray))
    for _ in range(10):  # warm-up
        buffer.sample(args.batch_size)
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        buffer.sample(args.batch_size)
        synchronize(th.device(args.device))
        times.append(time.perf_counter() - start)
    return {
        **machine_row(th.device(args.device)),
        "threads": th.get_num_threads(),
        "malloc": "plain" if args.plain_malloc else "tuned",
        "transitions": args.transitions,
        "episode_length": args.episode_length,
        "batch_size": args.batch_size,
        "repeats": args.repeats,
        "buffer": name,
        "bytes_per_transition": f"{nbytes / (buffer.buffer_size * buffer.n_envs):.1f}",
        "sample_ms_median": f"{np.median(times) * 1e3:.4f}",
        "sample_ms_p90": f"{np.percentile(times, 90) * 1e3:.4f}",
        "add_us": f"{add_us:.1f}",
        "loadavg_before": load_before,
        "loadavg_after": loadavg(),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transitions", type=int, default=20_000, help="buffer capacity, filled completely")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--episode-length", type=int, default=125)
    parser.add_argument("--repeats", type=int, default=300)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--csv", type=Path, default=None, help="append one row per buffer to this CSV")
    parser.add_argument(
        "--plain-malloc",
        action="store_true",
        help="leave glibc's malloc settings alone (default: opt in with sb3_sacae.accel.tune_malloc() on CPU)",
    )
    args = parser.parse_args(argv)
    if args.threads:
        th.set_num_threads(args.threads)
    args.plain_malloc = args.plain_malloc or args.device != "cpu"
    if not args.plain_malloc:
        tune_malloc()

    common = dict(
        buffer_size=args.transitions,
        observation_space=spaces.Box(0, 255, OBS_SHAPE, dtype=np.uint8),
        action_space=spaces.Box(-1, 1, (ACTION_DIM,), dtype=np.float32),
        device=args.device,
    )
    candidates = {
        "SB3 ReplayBuffer": lambda: ReplayBuffer(**common),
        "SB3 ReplayBuffer, optimize_memory_usage": lambda: ReplayBuffer(
            **common, optimize_memory_usage=True, handle_timeout_termination=False
        ),
        "FrameStackReplayBuffer(frame_stack=3)": lambda: FrameStackReplayBuffer(**common, frame_stack=FRAME_STACK),
    }
    rows = []
    for name, build in candidates.items():
        rows.append(measure(name, build(), args))

    first = rows[0]
    print(
        f"{datetime.date.today()}, {first['cpu']}, torch {first['torch']} threads {first['threads']}, device "
        f"{args.device}; {args.transitions:,} transitions of {OBS_SHAPE} uint8, episodes of {args.episode_length} steps\n"
    )
    sample = f"sample({args.batch_size})"
    print(f"| buffer | bytes/transition | 1M transitions (GiB) | {sample} median (ms) | p90 (ms) | add() (us) |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        per_transition = float(row["bytes_per_transition"])
        print(
            f"| {row['buffer']} | {per_transition:,.0f} | {per_transition * 1e6 / 2**30:.1f} | "
            f"{float(row['sample_ms_median']):.2f} | {float(row['sample_ms_p90']):.2f} | {float(row['add_us']):.0f} |"
        )
    if args.csv is not None:
        for row in rows:
            append_csv(args.csv, row, CSV_FIELDS)
        print(f"appended to {args.csv}")


if __name__ == "__main__":
    main()
