"""Plot the learning curves written by ``benchmarks/learning.py``: mean +/- std over seeds, one PNG per environment.

Drawn and aggregated by :mod:`sb3_sacae.plotting` (the package's plotting command uses the same functions).

Reads ``<results>/<env>/<seed>.csv`` (every environment folder found, or those given with ``--env``), draws the
mean evaluation return over seeds with a +/- one standard deviation band against agent steps (or environment
frames with ``--x env_frames``), adds horizontal reference lines, saves ``<results>/<env>/learning_curve.png``
(or ``--out`` for a single environment) and prints a summary table of the final returns.

    python benchmarks/plot_learning.py --env PendulumPixels-v1 --reference "target=-200"
    python benchmarks/plot_learning.py --env DMC-cartpole-swingup-v0 --x env_frames \\
        --reference "SAC+AE (paper)=311+-11" --reference "DrQ=759+-92"

A reference is ``label=value`` or ``label=value+-std`` (the std is drawn as a light band).
The final return of a seed is its last evaluation; the summary gives their mean and std over seeds.
"""

from __future__ import annotations

import argparse
import csv
import re
from pathlib import Path

import numpy as np

from sb3_sacae.plotting import GroupCurve, aggregate, plot_learning_curves

RESULTS = Path(__file__).resolve().parent / "results"
REFERENCE = re.compile(r"^(?P<label>.+)=(?P<value>[-+0-9.eE]+?)(?:\s*(?:\+-|\+/-|±)\s*(?P<std>[0-9.eE]+))?$")


def parse_reference(text: str) -> tuple[str, float, float | None]:
    match = REFERENCE.match(text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"reference {text!r} is not 'label=value' or 'label=value+-std', e.g. 'DrQ=759+-92'")
    std = match.group("std")
    return match.group("label").strip(), float(match.group("value")), float(std) if std is not None else None


def read_seeds(env_dir: Path) -> dict[int, list[dict[str, float]]]:
    """Rows of every ``<seed>.csv`` in ``env_dir``, as floats, keyed by seed."""
    seeds = {}
    for path in sorted(env_dir.glob("*.csv")):
        if not path.stem.lstrip("-").isdigit():
            continue
        with path.open(newline="") as handle:
            rows = [{key: float(value) for key, value in row.items()} for row in csv.DictReader(handle)]
        if rows:
            seeds[int(path.stem)] = rows
    return seeds


def curve(seeds: dict[int, list[dict[str, float]]], x: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """x values, mean and std of the evaluation return over the seeds evaluated at each x, and their count."""
    by_x: dict[float, list[float]] = {}
    for rows in seeds.values():
        for row in rows:
            by_x.setdefault(row[x], []).append(row["eval_mean_return"])
    xs = np.array(sorted(by_x))
    # seeds may stop at different steps: aggregate at each x the seeds that reached it
    bands = [aggregate(np.asarray(by_x[value])[:, None], band="std") for value in xs]
    means = np.array([mean[0] for mean, _, _ in bands])
    stds = np.array([high[0] - mean[0] for mean, _, high in bands])
    counts = np.array([len(by_x[value]) for value in xs])
    return xs, means, stds, counts


def summary(env: str, seeds: dict[int, list[dict[str, float]]]) -> dict[str, str]:
    finals = [rows[-1] for rows in seeds.values()]
    returns = np.array([row["eval_mean_return"] for row in finals])
    hours = np.array([row["wall_time_s"] for row in finals]) / 3600
    return {
        "env": env,
        "seeds": ", ".join(str(seed) for seed in seeds),
        "agent steps": ", ".join(sorted({f"{row['agent_steps']:.0f}" for row in finals})),
        "env frames": ", ".join(sorted({f"{row['env_frames']:.0f}" for row in finals})),
        "final return": f"{returns.mean():.1f} +/- {returns.std():.1f}",
        "best mean return": f"{max(curve(seeds, 'agent_steps')[1]):.1f}",
        "wall time (h)": f"{hours.mean():.2f}",
    }


def group_curve(seeds: dict[int, list[dict[str, float]]], x: str, label: str) -> GroupCurve:
    """The seeds' mean +/- std curve against ``x``, with each seed's returns, as the plotting functions take it."""
    xs, means, stds, _ = curve(seeds, x)
    per_seed = np.full((len(seeds), len(xs)), np.nan)
    for row_index, rows in enumerate(seeds.values()):
        returns = {row[x]: row["eval_mean_return"] for row in rows}
        per_seed[row_index] = [returns.get(value, np.nan) for value in xs]
    return GroupCurve(label, xs, means, means - stds, means + stds, per_seed, "std")


def axis_label(x: str) -> str:
    return "environment frames" if x == "env_frames" else "agent steps"


def plot(env: str, seeds: dict, x: str, references: list, out: Path) -> None:
    group = group_curve(seeds, x, "SACAE, mean +/- std")
    plot_learning_curves(
        [group],
        out,
        title=env,
        xlabel=axis_label(x),
        ylabel="evaluation return",
        figsize=(6, 4),
        dpi=100,
        references=references,
    )


def main(argv: list[str] | None = None) -> list[dict[str, str]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=Path, default=RESULTS, help=f"results folder (default {RESULTS})")
    parser.add_argument("--env", nargs="+", default=None, help="environment folders to plot (default: all found)")
    parser.add_argument("--x", choices=["agent_steps", "env_frames"], default="agent_steps")
    parser.add_argument("--reference", type=parse_reference, action="append", default=[], help="'label=value[+-std]'")
    parser.add_argument("--out", type=Path, default=None, help="PNG path (one environment only)")
    parser.add_argument("--by-step", action="store_true", help="also print mean +/- std and every seed's return per x")
    args = parser.parse_args(argv)

    env_dirs = (
        [args.results / env for env in args.env] if args.env else sorted(p for p in args.results.iterdir() if p.is_dir())
    )
    found = {env_dir.name: read_seeds(env_dir) for env_dir in env_dirs}
    found = {env: seeds for env, seeds in found.items() if seeds}
    if not found:
        raise SystemExit(f"no <seed>.csv files under {[str(d) for d in env_dirs]}: run benchmarks/learning.py first")
    if args.out is not None and len(found) > 1:
        parser.error("--out names one PNG: give one --env")

    rows = []
    for env, seeds in found.items():
        out = args.out or args.results / env / "learning_curve.png"
        plot(env, seeds, args.x, args.reference, out)
        rows.append(summary(env, seeds))
        print(f"saved {out}")
    print()
    print("| " + " | ".join(rows[0]) + " |")
    print("|" + "---|" * len(rows[0]))
    for row in rows:
        print("| " + " | ".join(row.values()) + " |")
    if args.by_step:
        for env, seeds in found.items():
            print_by_step(env, seeds, args.x)
    return rows


def print_by_step(env: str, seeds: dict[int, list[dict[str, float]]], x: str) -> None:
    """One row per evaluation point: the mean +/- std over seeds and each seed's return (blank where not run)."""
    per_seed = {seed: {row[x]: row["eval_mean_return"] for row in rows} for seed, rows in seeds.items()}
    print(f"\n{env}\n")
    print(f"| {x.replace('_', ' ')} | mean +/- std | " + " | ".join(f"seed {seed}" for seed in per_seed) + " |")
    print("|" + "---|" * (2 + len(per_seed)))
    for value, mean, std, count in zip(*curve(seeds, x), strict=True):
        cells = [f"{returns[value]:.0f}" if value in returns else "" for returns in per_seed.values()]
        print(f"| {value:.0f} | {mean:.0f} +/- {std:.0f} ({count}) | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
