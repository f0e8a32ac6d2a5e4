"""
Diagnostics of a short SACAE run: reconstruction images in TensorBoard and a learning-curve figure over seeds.

    python examples/diagnostics.py --steps 1000 --seeds 2 --output runs/diagnostics
    tensorboard --logdir runs/diagnostics/tb          # IMAGES tab: train/reconstructions; SCALARS: train/...

Trains ``--seeds`` small SACAE agents on ``PendulumPixels-v1`` (64 px, small networks, so it takes minutes on a
CPU) with a ``Monitor`` log, an ``EvalCallback`` and a :class:`~sb3_sacae.diagnostics.ReconstructionImageCallback`,
then writes into ``--output``: ``seed<N>/`` (monitor.csv, evaluations.npz), ``tb/`` (TensorBoard, when the
``tensorboard`` package is installed), ``reconstructions_seed<N>.png`` (the last image, also without TensorBoard)
and ``learning_curve.png`` (mean over seeds with a bootstrap 95% confidence band). The same figure from the shell:

    python -m sb3_sacae.plotting --group "SACAE=runs/diagnostics/seed*" --out runs/diagnostics/learning_curve.png
"""

import argparse
import importlib.util
from pathlib import Path

import gymnasium as gym
import numpy as np
from stable_baselines3.common.callbacks import EvalCallback
from stable_baselines3.common.monitor import Monitor

from sb3_sacae import SACAE  # also registers PendulumPixels-v1
from sb3_sacae.diagnostics import ReconstructionImageCallback
from sb3_sacae.plotting import learning_curves, plot_learning_curves, summary_table


def save_png(image: np.ndarray, path: Path) -> None:
    """An (H, W, 3) uint8 image as PNG, with matplotlib's Agg canvas."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    height, width, _ = image.shape
    figure = Figure(figsize=(width / 100, height / 100), dpi=100)
    FigureCanvasAgg(figure)
    figure.figimage(image)
    figure.savefig(path, dpi=100)


def train_seed(seed: int, args: argparse.Namespace, tensorboard_log: str | None) -> Path:
    run = args.output / f"seed{seed}"
    run.mkdir(parents=True, exist_ok=True)
    env = Monitor(gym.make("PendulumPixels-v1", image_size=64), str(run))
    eval_env = Monitor(gym.make("PendulumPixels-v1", image_size=64))
    model = SACAE(
        "CnnPolicy",
        env,
        buffer_size=args.steps,
        learning_starts=args.steps // 5,
        batch_size=64,
        policy_kwargs=dict(features_dim=32, n_filters=16, net_arch=[256, 256]),
        tensorboard_log=tensorboard_log,
        seed=seed,
    )
    images = ReconstructionImageCallback(every_n_updates=args.image_every, n_images=4)
    evaluation = EvalCallback(eval_env, eval_freq=args.eval_freq, n_eval_episodes=2, log_path=str(run), verbose=0)
    model.learn(args.steps, callback=[images, evaluation], tb_log_name=f"seed{seed}", progress_bar=False)
    grid = images.log_reconstructions()  # the final image, also saved as a PNG
    if grid is not None:
        save_png(grid, args.output / f"reconstructions_seed{seed}.png")
    env.close()
    eval_env.close()
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=1000, help="agent steps per seed")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--eval-freq", type=int, default=250)
    parser.add_argument("--image-every", type=int, default=200, help="gradient updates between reconstruction images")
    parser.add_argument("--output", type=Path, default=Path("runs/diagnostics"))
    args = parser.parse_args()

    tensorboard_log = str(args.output / "tb") if importlib.util.find_spec("tensorboard") else None
    if tensorboard_log is None:
        print("tensorboard is not installed (pip install tensorboard): images are saved as PNG files only")
    runs = [train_seed(seed, args, tensorboard_log) for seed in range(args.seeds)]

    curves = learning_curves({"SACAE": [str(run) for run in runs]}, source="eval", band="ci")
    figure_path = args.output / "learning_curve.png"
    plot_learning_curves(curves, figure_path, title="SACAE on PendulumPixels-v1 (evaluation)")
    print(summary_table(curves))
    print(f"figure: {figure_path}")
    if tensorboard_log is not None:
        print(f"tensorboard --logdir {tensorboard_log}")


if __name__ == "__main__":
    main()
