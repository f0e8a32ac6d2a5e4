"""Learning curves over seeds and tasks: load SB3 monitor logs and EvalCallback ``evaluations.npz`` files
(:mod:`~sb3_sacae.plotting.curves`), aggregate them with confidence bands (:mod:`~sb3_sacae.plotting.stats`: mean,
bootstrap CI, IQM with a stratified bootstrap), draw and summarise them (:mod:`~sb3_sacae.plotting.figures`).

The command line is ``python -m sb3_sacae.plotting`` (:mod:`sb3_sacae.plotting.cli`); the benchmarks' plots
use the same functions. Only drawing needs matplotlib (its Agg canvas: no pyplot state, no display).
"""

from sb3_sacae.plotting.curves import (
    EVALUATIONS_FILE,
    SOURCES,
    Curve,
    align,
    expand_runs,
    has_evaluations,
    has_monitor,
    load_curve,
    load_evaluations,
    load_monitor,
    resolve_source,
    smooth,
)
from sb3_sacae.plotting.figures import GroupCurve, learning_curves, plot_learning_curves, run_task, summary_table
from sb3_sacae.plotting.stats import BANDS, aggregate, bootstrap_ci, iqm, iqm_ci, stratified_bootstrap_indices

__all__ = [
    "BANDS",
    "EVALUATIONS_FILE",
    "SOURCES",
    "Curve",
    "GroupCurve",
    "aggregate",
    "align",
    "bootstrap_ci",
    "expand_runs",
    "has_evaluations",
    "has_monitor",
    "iqm",
    "iqm_ci",
    "learning_curves",
    "load_curve",
    "load_evaluations",
    "load_monitor",
    "plot_learning_curves",
    "resolve_source",
    "run_task",
    "smooth",
    "stratified_bootstrap_indices",
    "summary_table",
]
