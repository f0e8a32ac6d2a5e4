"""Update throughput: gradient steps per second of SACAE and of plain SB3 SAC (CnnPolicy), same synthetic pixels.

One process builds both models on the same observation and action spaces (paper settings: 9x84x84 uint8
observations, 6-dim actions, batch 128; SACAE with 50 features, 32 filters, 4 conv layers, [1024, 1024] MLPs and
the decoder; SAC with SB3's defaults, its NatureCNN, but batch 128), fills each replay buffer with the same random
transitions through ``replay_buffer.add()``, then times ``model.train(1, batch_size)`` after a warm-up. It also
counts the FLOPs of a gradient step (``torch.utils.flop_counter.FlopCounterMode``, averaged over two steps since
SACAE updates the actor every other step), measures the machine's peak in float32 and bfloat16 (the best of a large
matmul, which runs on the BLAS library, and a large 3x3 convolution with 256 channels, which runs on oneDNN: on AMD
CPUs MKL's float32 matmul reaches half of what oneDNN's convolutions do) and reports the fraction of that peak
each model reaches. Prints a table; ``--csv`` appends a row.

    python benchmarks/throughput.py                                   # paper settings, 3 warm-up + 10 timed steps
    python benchmarks/throughput.py --steps 30 --threads 2 --csv benchmarks/results/throughput.csv
    python benchmarks/throughput.py --sacae-kwargs '{"decoder_update_interval": 0}'   # extra SACAE arguments
    python benchmarks/throughput.py --device cuda --steps 200 --warmup 20
    python benchmarks/throughput.py --frame-stack 3   # SACAE on its FrameStackReplayBuffer, as frame-stacked envs get
    python benchmarks/throughput.py --skip-sac --sacae-kwargs '{"bf16_autocast": true}' --profile 4   # where time goes

``--frame-stack K`` declares the observations K stacked frames: the buffers are filled with consecutive stacks
sharing K - 1 frames, as a frame-stacking env produces them, and SACAE then stores them in the
:class:`~sb3_sacae.buffers.FrameStackReplayBuffer` it chooses for such envs (on a GPU, sampled from its frames' copy
there); SB3's SAC keeps its own ``ReplayBuffer``. Without it, each transition holds independent random stacks in SB3's
``ReplayBuffer`` for both.

``--versus '<json>'`` then times SACAE against a second SACAE built with those constructor arguments merged over
``--sacae-kwargs``, in the same process and on the same transitions, alternating single steps (which model goes
first alternates too), so the VM's drift over minutes affects both alike; it prints each one's mean and median step
time and the change:

    python benchmarks/throughput.py --steps 40 --skip-sac --sacae-kwargs '{"bf16_autocast": true}' \
        --versus '{"reuse_critic_features": true}'

``--baseline-code PATH`` then times this checkout's SACAE against the SACAE of another checkout of the package (the
root of a source tree, for example ``git worktree add /tmp/before <commit>``) in the same process and the same way,
same arguments and transitions: the way to show a change to the code costs no speed. The other package's modules
are in ``sys.modules`` only while its model is built or trained, so both copies run their own code throughout.
``--versus-csv FILE`` appends one row per comparison (``--versus`` or ``--baseline-code``), which
``benchmarks/report.py`` turns into the comparison tables of the performance page:

    git worktree add /tmp/before <commit>
    python benchmarks/throughput.py --steps 40 --threads 2 --skip-sac --baseline-code /tmp/before \
        --baseline-label "an earlier version" --versus-csv benchmarks/results/throughput-versus.csv

``--reference-code PATH`` does the same with the official implementation's update (``SacAeAgent.update`` of a clone
of https://github.com/denisyarats/pytorch_sac_ae at PATH, built with its ``train.py`` defaults and the same network
sizes, its own replay buffer filled with the same transitions):

    git clone https://github.com/denisyarats/pytorch_sac_ae /tmp/pytorch_sac_ae
    python benchmarks/throughput.py --steps 40 --threads 2 --skip-sac --reference-code /tmp/pytorch_sac_ae \
        --versus-csv benchmarks/results/throughput-versus.csv

``--versus-compile MODE`` then times SACAE against the same SACAE with its networks' forward passes compiled by
``torch.compile(mode=MODE)`` (the conv trunks, the projection heads, the Q-heads, the actor's sampling and the
decoder's reconstruction; the losses, optimizer steps and target updates stay eager), the same way. It tries the
lever without the package offering it: ``reduce-overhead`` also replays the compiled passes as CUDA graphs on a
GPU, which saves the launch of each kernel. The compilation runs in extra warm-up steps, and its time is printed.
On the CPU it needs the oneDNN Linear layers off, ``--policy-kwargs '{"onednn_linear": false}'`` (Inductor cannot
lower their private oneDNN op; the rest of the fast path compiles), so both models run ``nn.Linear``:

    python benchmarks/throughput.py --device cuda --steps 200 --warmup 20 --skip-sac --versus-compile reduce-overhead \
        --versus-csv benchmarks/results/throughput-versus.csv

``--profile N`` then runs N more SACAE steps under ``torch.profiler`` and prints the self CPU time per step of the
busiest ops and of op groups (convolutions, matmuls, copies, ReLU, optimizer), profiler overhead included.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import math
import os
import platform
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch as th
from gymnasium import spaces
from other_code import InCheckout, OfficialAgent, OtherCheckout, check_checkout, check_official, git_commit
from stable_baselines3 import SAC
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from torch.utils.flop_counter import FlopCounterMode, register_flop_formula

from sb3_sacae import SACAE
from sb3_sacae.accel import tune_malloc
from sb3_sacae.accel.onednn import _ONEDNN_LINEAR, onednn_linear_applies

PAPER_POLICY_KWARGS: dict[str, Any] = dict(features_dim=50, n_filters=32, n_conv_layers=4, net_arch=[1024, 1024])

# Where and when a row was measured: the first columns of every CSV the speed scripts write
MACHINE_FIELDS = ["date", "cpu", "cpu_capability", "nproc", "gpu", "torch", "device"]

CSV_FIELDS = [
    *MACHINE_FIELDS,
    "threads",
    "image_size",
    "frame_stack",
    "batch_size",
    "steps",
    "warmup",
    "sacae_kwargs",
    "policy_kwargs",
    "sac_policy_kwargs",
    "sacae_steps_per_s",
    "sac_steps_per_s",
    "ratio",
    "sacae_gflop_per_step",
    "sac_gflop_per_step",
    "peak_fp32_gflops",
    "peak_bf16_gflops",
    "matmul_fp32_gflops",
    "matmul_bf16_gflops",
    "conv_fp32_gflops",
    "conv_bf16_gflops",
    "sacae_fraction_fp32_peak",
    "sac_fraction_fp32_peak",
    "loadavg_before",
    "loadavg_after",
]


# torch.compile's modes (--versus-compile) and how a comparison row names the compiled model
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
COMPILED_LABEL = "the same SACAE, its networks under torch.compile(mode={mode!r})"


class SyntheticPixelEnv(gym.Env):
    """
    Spaces only: the models are built on it, the replay buffers are filled directly, it is never stepped. With
    ``frame_stack``, it says its observations are that many stacked frames (the attribute frame-stacking envs have).
    """

    def __init__(self, channels: int, image_size: int, action_dim: int, frame_stack: int | None = None):
        self.observation_space = spaces.Box(0, 255, (channels, image_size, image_size), np.uint8)
        self.action_space = spaces.Box(-1.0, 1.0, (action_dim,), np.float32)
        if frame_stack is not None:
            self.frame_stack = frame_stack

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        return self.observation_space.sample(), {}

    def step(self, action):
        return self.observation_space.sample(), 0.0, False, False, {}


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def gpu_name(device: th.device) -> str:
    return th.cuda.get_device_name(device) if device.type == "cuda" else ""


def loadavg() -> str:
    try:
        return " ".join(f"{value:.2f}" for value in os.getloadavg())
    except OSError:
        return ""


def synchronize(device: th.device) -> None:
    if device.type == "cuda":
        th.cuda.synchronize(device)


if _ONEDNN_LINEAR is not None:
    # OneDNNLinear's op is not in torch's FLOP table: count it as the matmul it is (input (M, K), weight (N, K))
    @register_flop_formula(th.ops.mkldnn._linear_pointwise)
    def _onednn_linear_flops(input_shape: Any, weight_shape: Any, *args: Any, out_shape: Any = None, **kwargs: Any) -> int:
        return 2 * int(np.prod(input_shape[:-1])) * int(input_shape[-1]) * int(weight_shape[0])


def stacked_transitions(
    transitions: int, frame_shape: tuple[int, ...], k: int, action_dim: int, seed: int
) -> Iterator[tuple[Any, ...]]:
    """
    ``replay_buffer.add()`` arguments of ``transitions`` random transitions in episodes of 100 steps, each observation
    ``k`` frames of ``frame_shape`` stacked along the first axis, consecutive stacks sharing ``k - 1`` frames as a
    frame-stacking env produces them.
    """
    rng = np.random.default_rng(seed)
    # a pool of random frames: drawing a fresh frame per step would dominate the set-up time
    pool = rng.integers(0, 256, (256, *frame_shape)).astype(np.uint8)
    frames: list[np.ndarray] = []
    for t in range(transitions):
        if t % 100 == 0:  # an episode starts: k copies of the first frame, as a frame stack resets
            frames = [pool[rng.integers(len(pool))]] * k
        frames.append(pool[rng.integers(len(pool))])
        obs = np.concatenate(frames[-k - 1 : -1])[None]
        next_obs = np.concatenate(frames[-k:])[None]
        action = rng.uniform(-1, 1, (1, action_dim)).astype(np.float32)
        done = np.array([(t + 1) % 100 == 0])
        yield obs, next_obs, action, rng.normal(size=1).astype(np.float32), done, [{"TimeLimit.truncated": bool(done[0])}]


def fill_buffer(model: OffPolicyAlgorithm, transitions: int, seed: int, frame_stack: int | None = None) -> None:
    """
    Add ``transitions`` random transitions (episodes of 100 steps) straight into the model's replay buffer: with
    ``frame_stack``, consecutive stacks of that many frames (:func:`stacked_transitions`), else independent stacks.
    """
    if model.replay_buffer is None:
        raise ValueError("the model has no replay buffer: build it with _init_setup_model=True (the default)")
    obs_shape = tuple(model.observation_space.shape or ())
    action_dim = int(np.prod(model.action_space.shape or ()))
    if frame_stack is not None:
        frame_shape = (obs_shape[0] // frame_stack, *obs_shape[1:])
        for transition in stacked_transitions(transitions, frame_shape, frame_stack, action_dim, seed):
            model.replay_buffer.add(*transition)
        return
    rng = np.random.default_rng(seed)
    # a pool of random frames: drawing 64 kB of random bytes per transition would dominate the set-up time
    pool = rng.integers(0, 256, (64, *obs_shape)).astype(np.uint8)
    for t in range(transitions):
        obs = pool[rng.integers(len(pool))][None]
        next_obs = pool[rng.integers(len(pool))][None]
        action = rng.uniform(-1, 1, (1, action_dim)).astype(np.float32)
        done = np.array([(t + 1) % 100 == 0])
        infos = [{"TimeLimit.truncated": bool(done[0])}]
        model.replay_buffer.add(obs, next_obs, action, rng.normal(size=1).astype(np.float32), done, infos)


def prepare(model: OffPolicyAlgorithm, args: argparse.Namespace) -> OffPolicyAlgorithm:
    """Give the model what ``learn()`` would have set up for ``train()``: a silent logger and a full buffer."""
    model.set_logger(Logger(folder=None, output_formats=[]))
    model._current_progress_remaining = 1.0
    fill_buffer(model, args.transitions, args.seed, args.frame_stack)
    return model


def time_train(model: OffPolicyAlgorithm, steps: int, warmup: int, batch_size: int, device: th.device) -> dict[str, float]:
    """Wall time of ``steps`` gradient steps after ``warmup`` untimed ones, one ``train(1)`` call each."""
    model.train(gradient_steps=warmup, batch_size=batch_size)
    synchronize(device)
    step_times = []
    for _ in range(steps):
        start = time.perf_counter()
        model.train(gradient_steps=1, batch_size=batch_size)
        synchronize(device)
        step_times.append(time.perf_counter() - start)
    total = float(np.sum(step_times))
    return {
        "steps_per_s": steps / total,
        "ms_min": 1e3 * float(np.min(step_times)),
        "ms_median": 1e3 * float(np.median(step_times)),
        "ms_max": 1e3 * float(np.max(step_times)),
    }


def time_alternating(
    models: dict[str, Any], steps: int, warmup: int, batch_size: int, device: th.device
) -> dict[str, list[float]]:
    """Seconds per ``train(1)`` of each model over ``steps`` rounds, one step each per round, in alternating order."""
    for model in models.values():
        model.train(gradient_steps=warmup, batch_size=batch_size)
    times: dict[str, list[float]] = {name: [] for name in models}
    names = list(models)
    for round_ in range(steps):
        for name in names if round_ % 2 == 0 else names[::-1]:
            start = time.perf_counter()
            models[name].train(gradient_steps=1, batch_size=batch_size)
            synchronize(device)
            times[name].append(time.perf_counter() - start)
    return times


def count_flops(model: OffPolicyAlgorithm, batch_size: int) -> float:
    """FLOPs of one gradient step (forward and backward of every network), the mean of two consecutive steps."""
    with FlopCounterMode(display=False) as counter:
        model.train(gradient_steps=2, batch_size=batch_size)
    return counter.get_total_flops() / 2


def matmul_peak(dtype: th.dtype, size: int, device: th.device, repeats: int = 5) -> float:
    """Best FLOP/s of a ``size`` x ``size`` matmul in ``dtype`` over ``repeats`` timed runs (after one warm-up)."""
    generator = th.Generator(device="cpu").manual_seed(0)
    a = th.randn(size, size, generator=generator).to(device=device, dtype=dtype)
    b = th.randn(size, size, generator=generator).to(device=device, dtype=dtype)
    th.matmul(a, b)
    synchronize(device)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        th.matmul(a, b)
        synchronize(device)
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best


def conv_peak(dtype: th.dtype, size: int, device: th.device, repeats: int = 5) -> float:
    """
    Best FLOP/s of a 3x3 convolution, 256 -> 256 channels, channels-last, over ``repeats`` timed runs: the largest
    conv throughput oneDNN (cuDNN on GPU) reaches. The batch scales with ``size`` (4096: 16 images of 32x32).
    """
    generator = th.Generator(device="cpu").manual_seed(0)
    batch = max(1, (size // 64) ** 2 // 256)
    x = th.randn(batch, 256, 32, 32, generator=generator).to(device=device, dtype=dtype)
    weight = th.randn(256, 256, 3, 3, generator=generator).to(device=device, dtype=dtype)
    x, weight = x.contiguous(memory_format=th.channels_last), weight.contiguous(memory_format=th.channels_last)
    th.nn.functional.conv2d(x, weight)
    synchronize(device)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        th.nn.functional.conv2d(x, weight)
        synchronize(device)
        best = min(best, time.perf_counter() - start)
    return 2 * batch * 30 * 30 * 256 * 256 * 9 / best


# op groups of --profile: the first group whose pattern an op's name contains
PROFILE_GROUPS = {
    "convolutions and transposed convolutions": ("convolution", "conv_transpose", "mkldnn_convolution"),
    "matmuls (Linear layers)": ("mm", "linear", "matmul"),
    "copies and dtype conversions": ("copy_", "to_copy", "clone", "contiguous", "cat", "stack"),
    "ReLU forward and backward": ("relu", "clamp_min", "threshold_backward"),
    "optimizers": ("adam", "sgd", "foreach"),
    "random numbers": ("random_", "uniform_", "normal_"),
}


def profile_steps(model: OffPolicyAlgorithm, steps: int, batch_size: int, rows: int = 15) -> None:
    """Print the self CPU time per gradient step of the busiest ops and of :data:`PROFILE_GROUPS` over ``steps``."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as profiler:
        model.train(gradient_steps=steps, batch_size=batch_size)
    averages = [event for event in profiler.key_averages() if event.self_cpu_time_total > 0]
    total_ms = sum(event.self_cpu_time_total for event in averages) / 1e3 / steps
    print(f"\nprofile of {steps} SACAE steps: {total_ms:.0f} ms of self CPU time per step (profiler overhead included)")
    print("| op | ms/step | calls/step |\n|---|---|---|")
    for event in sorted(averages, key=lambda event: -event.self_cpu_time_total)[:rows]:
        print(f"| {event.key} | {event.self_cpu_time_total / 1e3 / steps:.1f} | {event.count / steps:g} |")
    groups = dict.fromkeys([*PROFILE_GROUPS, "other"], 0.0)
    for event in averages:
        name = event.key.lower()
        group = next((group for group, patterns in PROFILE_GROUPS.items() if any(p in name for p in patterns)), "other")
        groups[group] += event.self_cpu_time_total / 1e3 / steps
    print("| group | ms/step |\n|---|---|")
    for group, ms in groups.items():
        print(f"| {group} | {ms:.1f} |")


def common_kwargs(args: argparse.Namespace, device: th.device) -> dict[str, Any]:
    """Constructor arguments both models share: the buffer, no warm-up, the batch size, the seed and the device."""
    return dict(buffer_size=args.transitions, learning_starts=0, batch_size=args.batch_size, seed=args.seed, device=device)


def build_sacae(args: argparse.Namespace, device: th.device, sacae_kwargs: dict[str, Any]) -> SACAE:
    """SACAE with the paper's policy (``--policy-kwargs`` merged over it) and ``sacae_kwargs``, on synthetic pixels."""
    env = SyntheticPixelEnv(args.channels, args.image_size, args.action_dim, args.frame_stack)
    sacae_policy = {**PAPER_POLICY_KWARGS, **args.policy_kwargs}
    return SACAE("CnnPolicy", env, policy_kwargs=sacae_policy, **common_kwargs(args, device), **sacae_kwargs)  # type: ignore[arg-type]


def build_models(args: argparse.Namespace, device: th.device) -> dict[str, OffPolicyAlgorithm]:
    models: dict[str, OffPolicyAlgorithm] = {"SACAE": build_sacae(args, device, args.sacae_kwargs)}
    if not args.skip_sac:
        env = SyntheticPixelEnv(args.channels, args.image_size, args.action_dim, args.frame_stack)
        sac_policy = dict(args.sac_policy_kwargs) or None
        models["SAC (SB3 CnnPolicy)"] = SAC("CnnPolicy", env, policy_kwargs=sac_policy, **common_kwargs(args, device))  # type: ignore[arg-type]
    return models


def machine_row(device: th.device) -> dict[str, Any]:
    """The :data:`MACHINE_FIELDS` columns: now, this machine, torch and the device timed."""
    return {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "cpu": cpu_model(),
        # the widest vector instructions torch's CPU kernels use (AVX2, AVX512, ...): the same model name may hide either
        "cpu_capability": th.backends.cpu.get_cpu_capability(),
        "nproc": os.cpu_count(),
        "gpu": gpu_name(device),
        "torch": th.__version__,
        "device": str(device),
    }


def settings_row(args: argparse.Namespace, device: th.device) -> dict[str, Any]:
    """The CSV columns that say when, where and how a measurement ran (shared by both CSVs)."""
    return {
        **machine_row(device),
        "threads": th.get_num_threads(),
        "image_size": args.image_size,
        "frame_stack": args.frame_stack or "",
        "batch_size": args.batch_size,
        "steps": args.steps,
        "warmup": args.warmup,
        "sacae_kwargs": json.dumps(args.sacae_kwargs, sort_keys=True),
        "policy_kwargs": json.dumps(args.policy_kwargs, sort_keys=True),
    }


def json_arg(text: str) -> dict[str, Any]:
    value = json.loads(text)
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object such as '{{\"key\": 1}}', got {text!r}")
    return value


def append_csv(path: Path, row: dict[str, Any], fields: list[str] = CSV_FIELDS) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and path.stat().st_size > 0:
        with path.open(newline="") as handle:
            header = next(csv.reader(handle), [])
        if header != fields:
            raise ValueError(f"{path} has other columns than this script writes ({header[:4]}...): pass a new --csv file name")
        mode = "a"
    else:
        mode = "w"
    with path.open(mode, newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        if mode == "w":
            writer.writeheader()
        writer.writerow(row)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=10, help="timed gradient steps per model (default 10)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed gradient steps before timing (default 3)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--image-size", type=int, default=84)
    parser.add_argument("--channels", type=int, default=9, help="3 stacked RGB frames (default 9)")
    parser.add_argument(
        "--frame-stack", type=int, default=None, metavar="K", help="the channels are K stacked frames (see above)"
    )
    parser.add_argument("--action-dim", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--transitions", type=int, default=1000, help="random transitions in each replay buffer")
    parser.add_argument("--sacae-kwargs", type=json_arg, default={}, help="extra SACAE constructor arguments (JSON)")
    parser.add_argument(
        "--policy-kwargs", type=json_arg, default={}, help="SACAE policy_kwargs, merged over the paper's (JSON)"
    )
    parser.add_argument("--sac-policy-kwargs", type=json_arg, default={}, help="SB3 SAC policy_kwargs (JSON; default: SB3's)")
    parser.add_argument("--skip-sac", action="store_true", help="time SACAE only (no ratio)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument(
        "--peak-size",
        type=int,
        default=None,
        help="matmul side for the peak, also scales the conv's batch (default 4096, 8192 on GPU)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--csv", type=Path, default=None, help="append one row of settings and results to this CSV")
    parser.add_argument(
        "--versus",
        type=json_arg,
        default=None,
        help="then time SACAE against SACAE with these arguments merged over --sacae-kwargs (JSON), alternating steps",
    )
    parser.add_argument(
        "--baseline-code",
        type=Path,
        default=None,
        metavar="PATH",
        help="then time SACAE against the SACAE of the checkout at PATH, same arguments, alternating steps",
    )
    parser.add_argument(
        "--reference-code",
        type=Path,
        default=None,
        metavar="PATH",
        help="then time SACAE against the official implementation's update (PATH: a clone of pytorch_sac_ae)",
    )
    parser.add_argument(
        "--versus-compile",
        choices=COMPILE_MODES,
        default=None,
        metavar="MODE",
        help="then time SACAE against the same SACAE with its networks under torch.compile(mode=MODE), alternating steps",
    )
    parser.add_argument("--baseline-label", default=None, help="the name --baseline-code's model gets in tables and CSVs")
    parser.add_argument(
        "--versus-csv",
        type=Path,
        default=None,
        help="append one row per comparison (--versus, --versus-compile, --baseline-code or --reference-code)",
    )
    parser.add_argument(
        "--plain-malloc",
        action="store_true",
        help="leave glibc's malloc settings alone (default: opt in with sb3_sacae.accel.tune_malloc() on CPU)",
    )
    parser.add_argument(
        "--profile", type=int, default=0, metavar="N", help="then profile N SACAE steps and print where the time goes"
    )
    args = parser.parse_args(argv)
    if args.steps < 1 or args.warmup < 0:
        parser.error("--steps must be >= 1 and --warmup >= 0")
    if args.frame_stack is not None and (args.frame_stack < 1 or args.channels % args.frame_stack):
        parser.error(f"--frame-stack must divide --channels ({args.channels}) into whole frames, got {args.frame_stack}")
    if args.transitions < args.batch_size:
        parser.error(f"--transitions ({args.transitions}) must be at least --batch-size ({args.batch_size})")

    try:  # before minutes of timing, not after
        if args.baseline_code is not None:
            check_checkout(args.baseline_code)
        if args.reference_code is not None:
            check_official(args.reference_code)
    except ValueError as error:
        parser.error(str(error))
    if args.threads is not None:
        th.set_num_threads(args.threads)
    device = th.device(args.device)
    if device.type == "cuda" and not th.cuda.is_available():
        parser.error("--device cuda given but torch sees no CUDA device: use --device cpu")
    onednn_linears = args.sacae_kwargs.get("fast_kernels", True) and args.policy_kwargs.get("onednn_linear", True)
    if args.versus_compile is not None and onednn_linears and onednn_linear_applies(device):
        # Inductor cannot lower the private oneDNN op of the CPU's fast Linear layers
        parser.error(
            "--versus-compile on the CPU needs the oneDNN Linear layers off: add --policy-kwargs "
            "'{\"onednn_linear\": false}' (or --sacae-kwargs '{\"fast_kernels\": false}' for plain layers throughout)"
        )
    if device.type == "cpu" and not args.plain_malloc:
        tune_malloc()  # what a CPU training script opts into; process-wide, so every model timed here shares it
    load_before = loadavg()

    models = build_models(args, device)
    results: dict[str, dict[str, float]] = {}
    for name, model in models.items():
        prepare(model, args)
        flops = count_flops(model, args.batch_size)
        results[name] = {**time_train(model, args.steps, args.warmup, args.batch_size, device), "flops": flops}

    peak_size = args.peak_size or (8192 if device.type == "cuda" else 4096)
    matmul = {dtype: matmul_peak(dtype, peak_size, device) for dtype in (th.float32, th.bfloat16)}
    conv = {dtype: conv_peak(dtype, peak_size, device) for dtype in (th.float32, th.bfloat16)}
    peak_fp32, peak_bf16 = (max(matmul[dtype], conv[dtype]) for dtype in (th.float32, th.bfloat16))
    load_after = loadavg()

    for result in results.values():
        achieved = result["flops"] * result["steps_per_s"]
        result["fraction_fp32"] = achieved / peak_fp32
        result["fraction_bf16"] = achieved / peak_bf16

    print(
        f"\n{datetime.date.today()}  {cpu_model()} x{os.cpu_count()}  {gpu_name(device)}  torch {th.__version__}  "
        f"device {device}  threads {th.get_num_threads()}  load average {load_before} -> {load_after}"
    )
    print(
        f"{args.channels}x{args.image_size}x{args.image_size} uint8, batch {args.batch_size}, {args.warmup} warm-up + "
        f"{args.steps} timed steps; SACAE kwargs {args.sacae_kwargs}, policy kwargs {args.policy_kwargs}; SACAE's "
        f"replay buffer {type(models['SACAE'].replay_buffer).__name__}"
    )
    print(
        f"peak: float32 {peak_fp32 / 1e9:,.0f} GFLOP/s, bfloat16 {peak_bf16 / 1e9:,.0f} GFLOP/s (best of a "
        f"{peak_size}x{peak_size} matmul: {matmul[th.float32] / 1e9:,.0f} / {matmul[th.bfloat16] / 1e9:,.0f}, "
        f"and a 3x3 256-channel convolution: {conv[th.float32] / 1e9:,.0f} / {conv[th.bfloat16] / 1e9:,.0f})\n"
    )
    print("| model | steps/s | ms/step min / median / max | GFLOP/step | GFLOP/s | % fp32 peak | % bf16 peak |")
    print("|---|---|---|---|---|---|---|")
    for name, result in results.items():
        print(
            f"| {name} | {result['steps_per_s']:.2f} | {result['ms_min']:.0f} / {result['ms_median']:.0f} / "
            f"{result['ms_max']:.0f} | {result['flops'] / 1e9:.1f} | {result['flops'] * result['steps_per_s'] / 1e9:,.0f} | "
            f"{100 * result['fraction_fp32']:.1f} | {100 * result['fraction_bf16']:.1f} |"
        )
    sacae = results["SACAE"]
    sac = results.get("SAC (SB3 CnnPolicy)")
    ratio = sacae["steps_per_s"] / sac["steps_per_s"] if sac else float("nan")
    if sac:
        print(f"\nSACAE / SAC steps per second: {ratio:.2f}")

    row = {
        **settings_row(args, device),
        "sac_policy_kwargs": json.dumps(args.sac_policy_kwargs, sort_keys=True),
        "sacae_steps_per_s": f"{sacae['steps_per_s']:.4f}",
        "sac_steps_per_s": f"{sac['steps_per_s']:.4f}" if sac else "",
        "ratio": f"{ratio:.4f}" if sac else "",
        "sacae_gflop_per_step": f"{sacae['flops'] / 1e9:.3f}",
        "sac_gflop_per_step": f"{sac['flops'] / 1e9:.3f}" if sac else "",
        "peak_fp32_gflops": f"{peak_fp32 / 1e9:.1f}",
        "peak_bf16_gflops": f"{peak_bf16 / 1e9:.1f}",
        "matmul_fp32_gflops": f"{matmul[th.float32] / 1e9:.1f}",
        "matmul_bf16_gflops": f"{matmul[th.bfloat16] / 1e9:.1f}",
        "conv_fp32_gflops": f"{conv[th.float32] / 1e9:.1f}",
        "conv_bf16_gflops": f"{conv[th.bfloat16] / 1e9:.1f}",
        "sacae_fraction_fp32_peak": f"{sacae['fraction_fp32']:.4g}",
        "sac_fraction_fp32_peak": f"{sac['fraction_fp32']:.4g}" if sac else "",
        "loadavg_before": load_before,
        "loadavg_after": load_after,
    }
    if args.csv is not None:
        append_csv(args.csv, row)
        print(f"appended to {args.csv}")
    if args.versus is not None:
        row["versus"] = compare(models["SACAE"], args, device)
    if args.baseline_code is not None:
        row["baseline"] = compare_checkout(models["SACAE"], args, device)
    if args.reference_code is not None:
        row["reference"] = compare_reference(models["SACAE"], args, device)
    if args.versus_compile is not None:
        row["compiled"] = compare_compiled(models["SACAE"], args, device)
    if args.profile > 0:
        profile_steps(models["SACAE"], args.profile, args.batch_size)
    return row


VERSUS_FIELDS = [
    *MACHINE_FIELDS,
    "threads",
    "image_size",
    "frame_stack",
    "batch_size",
    "steps",
    "warmup",
    "sacae_kwargs",
    "policy_kwargs",
    "this_code",
    "other",
    "other_code",
    "this_ms_mean",
    "other_ms_mean",
    "this_ms_median",
    "other_ms_median",
    "change",
]


def compare(sacae: OffPolicyAlgorithm, args: argparse.Namespace, device: th.device) -> dict[str, float]:
    """Print and return the step times of ``sacae`` and of SACAE with ``--versus`` merged in, timed alternately."""
    versus_kwargs = {**args.sacae_kwargs, **args.versus}
    other = prepare(build_sacae(args, device, versus_kwargs), args)
    label = f"SACAE {json.dumps(versus_kwargs, sort_keys=True)}"
    return time_pair(sacae, other, label, git_commit(Path(__file__).resolve().parents[1]), args, device)


def compare_checkout(sacae: OffPolicyAlgorithm, args: argparse.Namespace, device: th.device) -> dict[str, float]:
    """Print and return the step times of ``sacae`` and of the same SACAE built from ``--baseline-code``."""
    checkout = OtherCheckout(args.baseline_code)
    with checkout.active():
        env = SyntheticPixelEnv(args.channels, args.image_size, args.action_dim, args.frame_stack)
        policy_kwargs = {**PAPER_POLICY_KWARGS, **args.policy_kwargs}
        other = checkout.SACAE(
            "CnnPolicy", env, policy_kwargs=policy_kwargs, **common_kwargs(args, device), **args.sacae_kwargs
        )
        prepare(other, args)
    label = args.baseline_label or f"sb3_sacae {checkout.version} from {checkout.root}"
    return time_pair(sacae, InCheckout(other, checkout), label, checkout.commit, args, device)


def compare_reference(sacae: OffPolicyAlgorithm, args: argparse.Namespace, device: th.device) -> dict[str, float]:
    """Print and return the step times of ``sacae`` and of the official implementation's update, same sizes."""
    policy_kwargs = {**PAPER_POLICY_KWARGS, **args.policy_kwargs}
    net_arch = policy_kwargs["net_arch"]
    if len(set(net_arch)) != 1:
        raise SystemExit(f"the official networks have equal hidden layers of one width, not net_arch={net_arch}")
    official = OfficialAgent(
        args.reference_code,
        (args.channels, args.image_size, args.image_size),
        args.action_dim,
        batch_size=args.batch_size,
        capacity=args.transitions,
        hidden_dim=net_arch[0],
        feature_dim=policy_kwargs["features_dim"],
        n_filters=policy_kwargs["n_filters"],
        n_conv_layers=policy_kwargs["n_conv_layers"],
        device=device,
    )
    fill_buffer(official, args.transitions, args.seed, args.frame_stack)  # type: ignore[arg-type]
    return time_pair(sacae, official, "official pytorch_sac_ae", official.commit, args, device)


def compile_networks(model: SACAE, mode: str) -> None:
    """
    Compile the forward passes of ``model``'s networks with ``torch.compile(mode=mode)``, in place: the conv trunks'
    features (the shared trunk and the target's), the three projection heads, both critics' Q-heads, the actor's
    sampling of actions and log-probabilities, and the decoder's reconstruction. Each is a method replaced on its
    object, so the parameters and the state dict stay the modules' own. Where the mode replays CUDA graphs, each
    gradient step first tells torch that a new step begins (the outputs of the step before are then done with),
    through a function set on the model: for timing, since a model changed this way cannot be pickled or saved.
    """
    policy = model.policy
    target_trunk = policy.critic_target.features_extractor.trunk
    methods: list[tuple[Any, str]] = [(trunk, "features") for trunk in dict.fromkeys([policy.trunk, target_trunk])]
    encoders = [policy.actor.features_extractor, policy.critic.features_extractor, policy.critic_target.features_extractor]
    methods += [(encoder.head, "forward") for encoder in encoders]
    methods += [(policy.critic, "q_at_actions"), (policy.critic_target, "q_at_actions")]
    methods.append((policy.actor, "action_log_prob_from_features"))
    if policy.decoder is not None:
        methods.append((policy.decoder, "reconstruct"))
    for owner, name in methods:
        setattr(owner, name, th.compile(getattr(owner, name), mode=mode))
    if model.device.type == "cuda" and mode in ("reduce-overhead", "max-autotune"):
        gradient_step = model._gradient_step

        def marked_step(*args: Any, **kwargs: Any) -> None:
            th.compiler.cudagraph_mark_step_begin()
            gradient_step(*args, **kwargs)

        model._gradient_step = marked_step  # type: ignore[method-assign]


def compare_compiled(sacae: OffPolicyAlgorithm, args: argparse.Namespace, device: th.device) -> dict[str, float]:
    """Print and return the step times of ``sacae`` and of the same SACAE with its networks compiled."""
    other = prepare(build_sacae(args, device, args.sacae_kwargs), args)
    compile_networks(other, args.versus_compile)
    start = time.perf_counter()
    # Every kind of step the timed ones run (which networks step depends on the update intervals), twice: compiled
    # on its first call, and recorded as CUDA graphs on a later one
    intervals = [other.actor_update_interval, other.target_update_interval, max(other.decoder_update_interval, 1)]
    other.train(gradient_steps=2 * math.lcm(*intervals), batch_size=args.batch_size)
    synchronize(device)
    label = COMPILED_LABEL.format(mode=args.versus_compile)
    print(f"\ncompiling {label}: {time.perf_counter() - start:.1f} s")
    return time_pair(sacae, other, label, git_commit(Path(__file__).resolve().parents[1]), args, device)


def time_pair(
    sacae: OffPolicyAlgorithm, other: Any, other_label: str, other_code: str, args: argparse.Namespace, device: th.device
) -> dict[str, float]:
    """Alternate single steps of both, print the table and the change, append a ``--versus-csv`` row."""
    times = time_alternating({"this": sacae, "other": other}, args.steps, args.warmup, args.batch_size, device)
    this_label = f"SACAE {json.dumps(args.sacae_kwargs, sort_keys=True)} (this code)"
    print(f"\nin one process, {args.steps} alternating steps each:")
    print("| model | ms/step mean | ms/step median | steps/s |\n|---|---|---|---|")
    for label, seconds in ((this_label, times["this"]), (other_label, times["other"])):
        mean = float(np.mean(seconds))
        print(f"| {label} | {1e3 * mean:.1f} | {1e3 * float(np.median(seconds)):.1f} | {1 / mean:.2f} |")
    this_mean, other_mean = float(np.mean(times["this"])), float(np.mean(times["other"]))
    change = other_mean / this_mean - 1
    print(f"step time of {other_label} against this code: {100 * change:+.1f} %")
    result = {"ms_mean": 1e3 * this_mean, "versus_ms_mean": 1e3 * other_mean, "change": change}
    if args.versus_csv is not None:
        row = {
            **settings_row(args, device),
            "this_code": git_commit(Path(__file__).resolve().parents[1]),
            "other": other_label,
            "other_code": other_code,
            "this_ms_mean": f"{1e3 * this_mean:.2f}",
            "other_ms_mean": f"{1e3 * other_mean:.2f}",
            "this_ms_median": f"{1e3 * float(np.median(times['this'])):.2f}",
            "other_ms_median": f"{1e3 * float(np.median(times['other'])):.2f}",
            "change": f"{change:.4f}",
        }
        append_csv(args.versus_csv, row, VERSUS_FIELDS)
        print(f"appended to {args.versus_csv}")
    return result


if __name__ == "__main__":
    main()
