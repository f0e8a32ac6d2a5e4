"""Replay memory benchmark: bytes per transition and sampling time, FrameStackReplayBuffer vs SB3.

Fills each buffer with the same frame-stacked stream (3 stacked 84x84 RGB frames, channel-first
9x84x84 as SB3 feeds a CNN, episodes of 125 steps as cartpole_swingup with action repeat 8), then
times ``sample(batch_size)``. Prints a Markdown table.

    python benchmarks/replay_memory.py [--transitions 20000] [--batch-size 128] [--device cpu]
"""

import argparse
import datetime
import platform
import time

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import ReplayBuffer

from sb3_sacae.buffers import FrameStackReplayBuffer

FRAME_STACK = 3
FRAME_SHAPE = (3, 84, 84)
OBS_SHAPE = (FRAME_STACK * FRAME_SHAPE[0], *FRAME_SHAPE[1:])
ACTION_DIM = 6


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
        samples = buffer.sample(args.batch_size)
        if samples.observations.is_cuda:
            th.cuda.synchronize()
        times.append(time.perf_counter() - start)
    bytes_per_transition = nbytes / (buffer.buffer_size * buffer.n_envs)
    return {
        "buffer": name,
        "bytes/transition": f"{bytes_per_transition:,.0f}",
        "1M transitions (GiB)": f"{bytes_per_transition * 1e6 / 2**30:.1f}",
        f"sample({args.batch_size}) median (ms)": f"{np.median(times) * 1e3:.2f}",
        "p90 (ms)": f"{np.percentile(times, 90) * 1e3:.2f}",
        "add() (us)": f"{add_us:.0f}",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transitions", type=int, default=20_000, help="buffer capacity, filled completely")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--episode-length", type=int, default=125)
    parser.add_argument("--repeats", type=int, default=300)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        th.set_num_threads(args.threads)

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

    print(
        f"{datetime.date.today()}, {platform.node()}, {platform.processor() or platform.machine()}, "
        f"torch {th.__version__} threads {th.get_num_threads()}, device {args.device}; "
        f"{args.transitions:,} transitions of {OBS_SHAPE} uint8, episodes of {args.episode_length} steps\n"
    )
    header = list(rows[0])
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for row in rows:
        print("| " + " | ".join(row[key] for key in header) + " |")


if __name__ == "__main__":
    main()
