"""Groups of runs as learning curves: load, align and aggregate them (:mod:`~sb3_sacae.plotting.curves`,
:mod:`~sb3_sacae.plotting.stats`), draw them on one axes and summarise their last point."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sb3_sacae.plotting.curves import align, expand_runs, load_curve, resolve_source
from sb3_sacae.plotting.stats import aggregate


@dataclass(frozen=True)
class GroupCurve:
    """Runs of one group aligned on ``x``: their aggregate (``mean``: the mean, or the IQM with ``band="iqm"``) and
    band, the per-run values (``seeds``, one row each) and each run's task (``tasks``)."""

    label: str
    x: np.ndarray
    mean: np.ndarray
    low: np.ndarray
    high: np.ndarray
    seeds: np.ndarray
    band: str
    tasks: tuple[str, ...] = ()

    @property
    def n_seeds(self) -> int:
        return int(self.seeds.shape[0])

    @property
    def n_tasks(self) -> int:
        return len(set(self.tasks)) or 1


def run_task(run: str | Path) -> str:
    """The task of a run: the name of the folder holding the run folder (``runs/<task>/<run>/evaluations.npz``)."""
    path = Path(run)
    folder = path if path.is_dir() else path.parent
    return folder.resolve().parent.name


def learning_curves(
    groups: Mapping[str, Sequence[str | Path]],
    source: str = "auto",
    x_scale: float = 1.0,
    smoothing: int = 1,
    band: str = "ci",
    confidence: float = 0.95,
    n_bootstrap: int = 1000,
    n_points: int = 200,
) -> list[GroupCurve]:
    """
    Load, align and aggregate every group of runs (label -> run folders, log files or globs); see
    :func:`~sb3_sacae.plotting.curves.load_curve`, :func:`~sb3_sacae.plotting.curves.align` and
    :func:`~sb3_sacae.plotting.stats.aggregate` for the arguments. A group's runs may span several tasks (their
    parent folders, :func:`run_task`): ``band="iqm"`` aggregates them across tasks with a bootstrap stratified by task.
    """
    curves = []
    for label, patterns in groups.items():
        runs = expand_runs(patterns)
        group_source = resolve_source(runs, source)
        x, values = align([load_curve(run, group_source, x_scale, smoothing) for run in runs], n_points)
        tasks = tuple(run_task(run) for run in runs)
        mean, low, high = aggregate(values, band, confidence, n_bootstrap, tasks=tasks)
        curves.append(GroupCurve(label, x, mean, low, high, values, band, tasks))
    return curves


def summary_table(curves: Sequence[GroupCurve], confidence: float = 0.95) -> str:
    """A plain-text table of each group's last aligned point: runs (and tasks), x, aggregate and band."""
    level = f"{round(100 * confidence)}% CI"
    band_name = {"ci": f"mean, {level}", "std": "mean +/- std", "iqm": f"IQM, stratified bootstrap {level}"}
    header: tuple[str, ...] = ("group", "seeds", "final x", "final mean", "band", "low", "high")
    if any(c.band == "iqm" for c in curves):
        header = ("group", "runs", "tasks", "final x", "final IQM", "band", "low", "high")
    rows = [
        (
            c.label,
            str(c.n_seeds),
            *([str(c.n_tasks)] if len(header) == 8 else []),
            f"{c.x[-1]:,.0f}",
            f"{c.mean[-1]:.2f}",
            band_name.get(c.band, c.band),
            f"{c.low[-1]:.2f}",
            f"{c.high[-1]:.2f}",
        )
        for c in curves
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in [header, *rows]]
    return "\n".join([lines[0], "  ".join("-" * width for width in widths), *lines[1:]])


def plot_learning_curves(
    curves: Sequence[GroupCurve],
    path: str | Path | None = None,
    title: str | None = None,
    xlabel: str = "agent steps",
    ylabel: str = "episode return",
    figsize: tuple[float, float] = (6.4, 4.0),
    dpi: int = 120,
    references: Sequence[tuple[str, float, float | None]] = (),
):
    """
    Draw each group's mean and band on one axes and save the figure to ``path`` (the extension picks the format:
    .png, .pdf, .svg) when given. Uses matplotlib's Agg canvas: no display, no global pyplot state.

    :param references: ``(label, value, std or None)`` drawn as dashed horizontal lines (published results), the
        std as a light band

    :return: the matplotlib ``Figure``
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=figsize, dpi=dpi)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for curve in curves:
        (line,) = axes.plot(curve.x, curve.mean, label=f"{curve.label} ({curve.n_seeds} seed{'s' * (curve.n_seeds != 1)})")
        axes.fill_between(curve.x, curve.low, curve.high, color=line.get_color(), alpha=0.2, linewidth=0)
    colors = [color for color in _color_cycle() if color not in {line.get_color() for line in axes.lines}]
    for (label, value, std), color in zip(references, colors * (1 + len(references) // max(len(colors), 1)), strict=False):
        axes.axhline(value, linestyle="--", color=color, label=label)
        if std is not None:
            axes.axhspan(value - std, value + std, color=color, alpha=0.1)
    axes.set(xlabel=xlabel, ylabel=ylabel)
    if title:
        axes.set_title(title)
    axes.grid(alpha=0.3)
    if curves or references:
        axes.legend(loc="best", fontsize=8 if references else None)
    figure.tight_layout()
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path)
    return figure


def _color_cycle() -> list[str]:
    from matplotlib import rcParams

    return list(rcParams["axes.prop_cycle"].by_key()["color"])
