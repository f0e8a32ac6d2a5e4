"""
Train SACAE on Pendulum from pixels: the README's first run.

    python examples/train_pendulum_pixels.py --steps 2000 --output runs/demo

Shows a progress bar, evaluates every ``--eval-freq`` steps, and writes into ``--output``:
``sacae_pendulum_pixels.zip`` (the model), ``evaluations.npz`` (EvalCallback), ``monitor.csv`` (training episodes)
and ``learning_curve.png``. The default settings are smaller than the paper's (64 px, 16 filters, 32-dim latent,
256-wide MLPs, batch 64) so the run takes minutes on a 2-core CPU; ``--paper`` uses the paper's networks and batch
at 84 px.
"""

import argparse
from pathlib import Path

import gymnasium as gym
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from stable_baselines3.common.callbacks import EvalCallback
from stable_baselines3.common.monitor import Monitor, load_results

from sb3_sacae import SACAE


def plot_learning_curve(output: Path) -> Path:
    """Evaluation returns (mean and std over episodes) and training episode returns against agent steps."""
    figure, axis = plt.subplots(figsize=(6, 4))
    monitor = load_results(str(output))
    if len(monitor):
        axis.plot(monitor["l"].cumsum(), monitor["r"], ".", alpha=0.4, label="training episodes")
    evaluations = np.load(output / "evaluations.npz")
    mean, std = evaluations["results"].mean(axis=1), evaluations["results"].std(axis=1)
    axis.plot(evaluations["timesteps"], mean, "-o", label="evaluation (deterministic)")
    axis.fill_between(evaluations["timesteps"], mean - std, mean + std, alpha=0.2)
    axis.set(xlabel="agent steps", ylabel="episode return", title="SACAE on PendulumPixels-v1")
    axis.legend()
    figure.tight_layout()
    path = output / "learning_curve.png"
    figure.savefig(path, dpi=100)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=2000, help="agent steps to train")
    parser.add_argument("--output", type=Path, default=Path("runs/demo"))
    parser.add_argument("--eval-freq", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--paper", action="store_true", help="paper networks and 84 px images (slow on CPU)")
    args = parser.parse_args()
    args.output.mkdir(parents=True, exist_ok=True)

    image_size = 84 if args.paper else 64
    small = dict(policy_kwargs=dict(features_dim=32, n_filters=16, net_arch=[256, 256]), batch_size=64)
    env = Monitor(gym.make("PendulumPixels-v1", image_size=image_size), str(args.output))
    eval_env = Monitor(gym.make("PendulumPixels-v1", image_size=image_size))
    model = SACAE(
        "CnnPolicy",
        env,
        buffer_size=min(100_000, args.steps),
        learning_starts=min(1000, args.steps // 4),
        seed=args.seed,
        **({} if args.paper else small),
        verbose=0,
    )
    evaluation = EvalCallback(eval_env, eval_freq=args.eval_freq, n_eval_episodes=3, log_path=str(args.output))
    model.learn(args.steps, callback=evaluation, progress_bar=True)
    model_path = args.output / "sacae_pendulum_pixels.zip"
    model.save(model_path)
    print(f"model: {model_path}\nplot: {plot_learning_curve(args.output)}")
    print(f"last evaluation: {evaluation.last_mean_reward:.1f} after {model.num_timesteps} agent steps")


if __name__ == "__main__":
    main()
