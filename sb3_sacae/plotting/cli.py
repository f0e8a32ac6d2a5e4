"""
Learning curves of several seeds from SB3 monitor logs or EvalCallback evaluations, with confidence bands.

    python -m sb3_sacae.plotting runs/sacae_seed*                      # one group, evaluations.npz or monitor.csv
    python -m sb3_sacae.plotting --group "SAC-AE=runs/sacae_*" --group "SAC:pixel=runs/pixel_*" \\
        --x-scale 8 --out cartpole.pdf                                  # env frames with action repeat 8
    python -m sb3_sacae.plotting --group "SAC-AE=runs/*/sacae_*" --band iqm   # IQM across tasks (runs/<task>/)

Each run is a folder (EvalCallback ``log_path`` with ``evaluations.npz``, or a ``Monitor`` folder with
``*monitor.csv``) or one of those files; quote globs so the shell leaves them to this script (``**`` recurses).
The seeds of a group are aligned on a common x grid (interpolated over the steps all of them reached) and drawn
as their mean with a bootstrap 95% confidence band of the mean (``--band std``: mean +/- std over seeds).
A summary table of each group's last aligned point is printed.
"""

import argparse
from collections.abc import Sequence

from stable_baselines3.common.monitor import LoadMonitorResultsError

from sb3_sacae.plotting.curves import SOURCES
from sb3_sacae.plotting.figures import learning_curves, plot_learning_curves, summary_table
from sb3_sacae.plotting.stats import BANDS


def parse_group(text: str) -> tuple[str, str]:
    label, separator, pattern = text.partition("=")
    if not separator or not label.strip() or not pattern.strip():
        raise argparse.ArgumentTypeError(f"group {text!r} is not NAME=GLOB, e.g. 'SAC-AE=runs/sacae_seed*'")
    return label.strip(), pattern.strip()


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m sb3_sacae.plotting", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("runs", nargs="*", help="run folders, log files or globs of one group (labelled by --label)")
    parser.add_argument("--label", default="runs", help="label of the positional runs' group")
    parser.add_argument(
        "--group", action="append", type=parse_group, default=[], metavar="NAME=GLOB",
        help="a labelled group of runs; repeat for several groups, or with the same NAME to add runs to a group",
    )  # fmt: skip
    parser.add_argument(
        "--source", choices=SOURCES, default="auto",
        help="logs to read: evaluations.npz (eval), monitor.csv (monitor), or auto: eval when every run has it",
    )  # fmt: skip
    parser.add_argument(
        "--band", choices=BANDS, default="ci",
        help="ci: bootstrap CI of the mean; std: mean +/- std; iqm: IQM with a bootstrap CI stratified by task",
    )  # fmt: skip
    parser.add_argument("--confidence", type=float, default=0.95, help="confidence level of the bootstrap band")
    parser.add_argument("--n-bootstrap", type=int, default=1000, help="bootstrap resamples of the seeds")
    parser.add_argument(
        "--x-scale", type=float, default=1.0,
        help="multiply x by this factor: the action repeat turns agent steps into environment frames",
    )  # fmt: skip
    parser.add_argument("--smooth", type=int, default=1, help="trailing moving-average window, in episodes (monitor logs)")
    parser.add_argument("--points", type=int, default=200, help="grid points when the seeds' x values differ")
    parser.add_argument("--xlabel", default=None, help="default: agent steps, or environment frames with --x-scale")
    parser.add_argument("--ylabel", default="episode return")
    parser.add_argument("--title", default=None)
    parser.add_argument("--out", default="learning_curve.png", help="figure file; .png, .pdf or .svg")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = make_parser()
    args = parser.parse_args(argv)
    groups: dict[str, list[str]] = {}
    if args.runs:
        groups[args.label] = list(args.runs)
    for label, pattern in args.group:
        groups.setdefault(label, []).append(pattern)
    if not groups:
        parser.error("give run folders or globs, or at least one --group NAME=GLOB")
    try:
        curves = learning_curves(
            groups,
            source=args.source,
            x_scale=args.x_scale,
            smoothing=args.smooth,
            band=args.band,
            confidence=args.confidence,
            n_bootstrap=args.n_bootstrap,
            n_points=args.points,
        )
    except (OSError, ValueError, LoadMonitorResultsError) as error:
        parser.exit(2, f"{parser.prog}: error: {error}\n")
    xlabel = args.xlabel or ("agent steps" if args.x_scale == 1.0 else "environment frames")
    plot_learning_curves(curves, args.out, title=args.title, xlabel=xlabel, ylabel=args.ylabel)
    print(summary_table(curves, args.confidence))
    print(f"figure: {args.out}")
    return 0
