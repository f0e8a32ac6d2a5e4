"""Learning runs: SACAE on a registered pixel environment, several seeds, deterministic evaluations to CSV.

For each seed, trains SACAE for ``--steps`` agent steps and evaluates the deterministic policy on a separate
environment (``--eval-episodes`` episodes) before training and every ``--eval-freq`` agent steps (SB3's
EvalCallback). Each evaluation appends a row to ``<out>/<env>/<seed>.csv``:
``agent_steps, env_frames, eval_mean_return, eval_std_return, wall_time_s, eval_time_s``. SB3's
``evaluations/<seed>/evaluations.npz`` (every episode's return) and ``settings-seed<seed>.json`` (command, code
version, settings, machine, threads) sit next to it. Re-running a seed
starts it again from scratch and overwrites its files. Plot with ``benchmarks/plot_learning.py``.

    python benchmarks/learning.py --preset pendulum                 # PendulumPixels-v1, 10,000 agent steps, seeds 0 1 2
    python benchmarks/learning.py --preset cartpole --workers 3     # DMC cartpole_swingup, 100,000 env frames
    python benchmarks/learning.py --preset pendulum --seeds 0 --steps 2000
    python benchmarks/learning.py --env DMC-cheetah-run-v0 --env-kwargs '{"action_repeat": 4}' --steps 50000 \\
        --hyperparams '{"batch_size": 256, "policy_kwargs": {"features_dim": 64}}'

Presets (the SACAE constructor defaults are the paper's; a preset sets only what differs):

- ``pendulum``: PendulumPixels-v1 at 64x64 (3 frames, action repeat 2: 100 agent steps per episode),
  10,000 agent steps, seeds 0 1 2, evaluation every 1,000 agent steps over 10 episodes. The return target is
  -200 (swing-up held upright; a random policy scores about -1,200). 64 px instead of 84 keeps the pendulum
  clearly drawn at about half the convolution cost; the rest is the paper's settings, learning starts after
  1,000 agent steps (10 episodes).
- ``cartpole``: DMC-cartpole-swingup-v0 with the paper's settings (84x84, 3 frames, action repeat 8),
  12,500 agent steps = 100,000 environment frames, seeds 0 1 2, evaluation every 2,500 agent steps
  (20,000 frames) over 10 episodes. Published at 100k frames: SAC+AE 311 +/- 11, DrQ 759 +/- 92.

Evaluation is forward-only but renders every frame, which dominates on software-rendered DeepMind Control: each
row's ``eval_time_s`` is the seconds that evaluation took, and the run prints the share of its wall time spent
evaluating. Evenly spaced evaluations every 20,000 frames keep the 100k end point and the curve's shape at half
the evaluation cost of every 10,000 frames (the measurement itself, 10 deterministic episodes, is unchanged).

The replay buffer holds every transition of the run (``buffer_size`` = agent steps) unless overridden.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import torch as th
from stable_baselines3.common.callbacks import BaseCallback, EvalCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy

from sb3_sacae import SACAE  # importing sb3_sacae registers the pixel environment ids
from sb3_sacae.accel import tune_malloc

RESULTS = Path(__file__).resolve().parent / "results"
CSV_FIELDS = ["agent_steps", "env_frames", "eval_mean_return", "eval_std_return", "wall_time_s", "eval_time_s"]

PRESETS: dict[str, dict[str, Any]] = {
    "pendulum": dict(
        env="PendulumPixels-v1",
        env_kwargs=dict(image_size=64, frame_stack=3, action_repeat=2),
        steps=10_000,
        seeds=[0, 1, 2],
        eval_freq=1_000,
        eval_episodes=10,
        hyperparams={},
    ),
    "cartpole": dict(
        env="DMC-cartpole-swingup-v0",
        env_kwargs=dict(image_size=84, frame_stack=3, action_repeat=8),
        steps=12_500,
        seeds=[0, 1, 2],
        eval_freq=2_500,
        eval_episodes=10,
        hyperparams={},
    ),
}
DEFAULTS: dict[str, Any] = dict(env_kwargs={}, steps=10_000, seeds=[0], eval_freq=1_000, eval_episodes=10, hyperparams={})


def json_object(text: str) -> dict[str, Any]:
    value = json.loads(text)
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object such as '{{\"batch_size\": 256}}', got {text!r}")
    return value


def merge_hyperparams(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Overrides win; ``policy_kwargs`` are merged key by key."""
    merged = {**base, **overrides}
    if "policy_kwargs" in base or "policy_kwargs" in overrides:
        merged["policy_kwargs"] = {**base.get("policy_kwargs", {}), **overrides.get("policy_kwargs", {})}
    return merged


def code_version() -> dict[str, Any]:
    """The package version and, in a git checkout, the commit and whether the tree had uncommitted changes."""
    import sb3_sacae

    version: dict[str, Any] = {"sb3_sacae": sb3_sacae.__version__}
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True)
        status = subprocess.run(["git", "status", "--porcelain", "sb3_sacae"], cwd=root, capture_output=True, text=True)
        version.update(git_commit=commit.stdout.strip(), uncommitted_changes=bool(status.stdout.strip()))
    except (OSError, subprocess.CalledProcessError):
        pass
    return version


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        pass
    return {
        "cpu": cpu,
        "cpu_capability": th.backends.cpu.get_cpu_capability(),  # AVX2, AVX512, ...: the model name may hide either
        "nproc": os.cpu_count(),
        "gpu": th.cuda.get_device_name() if th.cuda.is_available() else "",
        "torch": th.__version__,
        "python": platform.python_version(),
    }


def run_seed(config: dict[str, Any], seed: int) -> dict[str, Any]:
    """Train one seed; every evaluation appends a row to ``<out>/<env>/<seed>.csv``. Returns the last row."""
    th.set_num_threads(config["threads"])
    start = time.perf_counter()
    out_dir = Path(config["out"]) / config["env"]
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path = out_dir / f"{seed}.csv"
    with csv_path.open("w", newline="") as handle:
        csv.writer(handle).writerow(CSV_FIELDS)

    eval_clock = {"start": 0.0}

    def write_row(model: SACAE, returns: list[float]) -> dict[str, Any]:
        row = {
            "agent_steps": model.num_timesteps,
            "env_frames": model.env_frames,
            "eval_mean_return": f"{np.mean(returns):.3f}",
            "eval_std_return": f"{np.std(returns):.3f}",
            "wall_time_s": f"{time.perf_counter() - start:.2f}",
            "eval_time_s": f"{time.perf_counter() - eval_clock['start']:.2f}",
        }
        with csv_path.open("a", newline="") as handle:
            csv.DictWriter(handle, fieldnames=CSV_FIELDS).writerow(row)
        print(
            f"[{config['env']} seed {seed}] agent steps {row['agent_steps']:>7}  env frames {row['env_frames']:>8}  "
            f"eval {row['eval_mean_return']:>9} +/- {row['eval_std_return']:<8}  wall {row['wall_time_s']} s",
            flush=True,
        )
        return row

    class WriteRow(BaseCallback):
        """Called by EvalCallback after each evaluation: one CSV row."""

        def _on_step(self) -> bool:
            write_row(self.model, self.parent.evaluations_results[-1])  # type: ignore[union-attr, arg-type]
            return True

    class TimedEvalCallback(EvalCallback):
        """EvalCallback that notes when each evaluation starts, so every row records what it cost."""

        def _on_step(self) -> bool:
            if self.eval_freq > 0 and self.n_calls % self.eval_freq == 0:
                eval_clock["start"] = time.perf_counter()
            return super()._on_step()

    env_kwargs = config["env_kwargs"]
    env = make_vec_env(config["env"], n_envs=1, seed=seed, env_kwargs=env_kwargs)
    eval_env = make_vec_env(config["env"], n_envs=1, seed=seed + 10_000, env_kwargs=env_kwargs)
    hyperparams = {"buffer_size": config["steps"], **config["hyperparams"]}
    model = SACAE("CnnPolicy", env, seed=seed, device=config["device"], verbose=0, **hyperparams)
    if model.device.type == "cpu":
        tune_malloc()  # the opt-in of a CPU training script: the update's large temporaries are reused

    (out_dir / f"settings-seed{seed}.json").write_text(json.dumps({**config["settings"], "seed": seed}, indent=2) + "\n")
    eval_clock["start"] = time.perf_counter()
    initial_returns, _ = evaluate_policy(
        model, eval_env, n_eval_episodes=config["eval_episodes"], deterministic=True, return_episode_rewards=True
    )
    last = write_row(model, list(initial_returns))  # type: ignore[arg-type]
    eval_callback = TimedEvalCallback(
        eval_env,
        eval_freq=config["eval_freq"],
        n_eval_episodes=config["eval_episodes"],
        deterministic=True,
        log_path=str(out_dir / "evaluations" / str(seed)),  # SB3 writes evaluations.npz there
        callback_after_eval=WriteRow(),
        verbose=0,
    )
    model.learn(config["steps"], callback=eval_callback)
    env.close()
    eval_env.close()
    with csv_path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    eval_share = sum(float(row["eval_time_s"]) for row in rows) / float(rows[-1]["wall_time_s"])
    print(f"[{config['env']} seed {seed}] evaluation took {100 * eval_share:.1f} % of the wall time", flush=True)
    return rows[-1] if rows else last


def build_config(args: argparse.Namespace) -> dict[str, Any]:
    preset = PRESETS[args.preset] if args.preset else DEFAULTS
    env_id = args.env or preset.get("env")
    if env_id is None:
        raise SystemExit("give --env <registered pixel env id> or --preset pendulum|cartpole")
    workers = max(1, args.workers)
    return {
        "preset": args.preset,
        "env": env_id,
        "env_kwargs": {**preset["env_kwargs"], **(args.env_kwargs or {})},
        "steps": args.steps if args.steps is not None else preset["steps"],
        "seeds": args.seeds if args.seeds is not None else preset["seeds"],
        "eval_freq": args.eval_freq if args.eval_freq is not None else preset["eval_freq"],
        "eval_episodes": args.eval_episodes if args.eval_episodes is not None else preset["eval_episodes"],
        "hyperparams": merge_hyperparams(preset["hyperparams"], args.hyperparams or {}),
        "device": args.device,
        "threads": args.threads or max(1, (os.cpu_count() or 1) // workers),
        "workers": workers,
        "out": str(args.out),
    }


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=sorted(PRESETS), default=None)
    parser.add_argument("--env", default=None, help="registered pixel env id (overrides the preset's)")
    parser.add_argument("--env-kwargs", type=json_object, default=None, help="gymnasium.make kwargs (JSON), merged")
    parser.add_argument("--steps", type=int, default=None, help="agent steps per seed")
    parser.add_argument("--seeds", type=int, nargs="+", default=None)
    parser.add_argument("--eval-freq", type=int, default=None, help="agent steps between evaluations")
    parser.add_argument("--eval-episodes", type=int, default=None)
    parser.add_argument("--hyperparams", type=json_object, default=None, help="SACAE kwargs (JSON), merged")
    parser.add_argument("--workers", type=int, default=1, help="seeds run in parallel processes (default 1)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads per seed (default: cores / workers)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"results folder (default {RESULTS})")
    args = parser.parse_args(argv)
    config = build_config(args)

    out_dir = Path(config["out"]) / config["env"]
    out_dir.mkdir(parents=True, exist_ok=True)
    settings = {
        "command": shlex.join(["python", *sys.argv] if argv is None else ["python", "benchmarks/learning.py", *argv]),
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "code": code_version(),
        "machine": machine(),
        **config,
    }
    (out_dir / "settings.json").write_text(json.dumps(settings, indent=2) + "\n")
    config = {**config, "settings": settings}
    print(f"{config['env']}: {config['steps']} agent steps x seeds {config['seeds']}, results in {out_dir}", flush=True)

    if config["workers"] == 1:
        finals = [run_seed(config, seed) for seed in config["seeds"]]
    else:
        with ProcessPoolExecutor(max_workers=config["workers"], mp_context=get_context("spawn")) as pool:
            finals = list(pool.map(run_seed, [config] * len(config["seeds"]), config["seeds"]))
    returns = [float(row["eval_mean_return"]) for row in finals]
    print(
        f"{config['env']}: final evaluation return {np.mean(returns):.1f} +/- {np.std(returns):.1f} "
        f"over seeds {config['seeds']} at {finals[0]['agent_steps']} agent steps / {finals[0]['env_frames']} env frames"
    )
    return finals


if __name__ == "__main__":
    main()
