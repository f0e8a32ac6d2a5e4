"""Aggregates over runs and their confidence bands, at every point of an aligned x grid.

``"iqm"`` follows the protocol of Agarwal et al. 2021 ("Deep Reinforcement Learning at the Edge of the
Statistical Precipice", arXiv:2108.13264) that the rliable library implements: the interquartile mean (the mean
of the middle 50% of all runs' scores, ``scipy.stats.trim_mean(scores, 0.25)``, rliable's ``aggregate_iqm``) with
a percentile confidence interval from a *stratified* bootstrap (runs resampled with replacement within each task,
rliable's ``StratifiedBootstrap``). It is computed here with numpy and scipy because rliable 1.2.0, the current
release, requires ``arch<8``, and arch 7 does not import with pandas 3 (``TypeError`` in
``pandas.util._decorators.deprecate_kwarg``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import stats

BANDS = ("ci", "std", "iqm")


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), e.g. 0.95, got {confidence}")


def _percentiles(samples: np.ndarray, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    tail = 100.0 * (1.0 - confidence) / 2.0
    return np.percentile(samples, tail, axis=0), np.percentile(samples, 100.0 - tail, axis=0)


def bootstrap_ci(
    values: np.ndarray, confidence: float = 0.95, n_bootstrap: int = 1000, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """
    Percentile bootstrap confidence interval of the mean over seeds (axis 0), at every x: the seeds are resampled
    with replacement ``n_bootstrap`` times. One seed gives a zero-width interval.

    :param values: ``(n_seeds, n_points)``
    :return: lower and upper bounds ``(n_points,)``
    """
    _check_confidence(confidence)
    values = np.asarray(values, dtype=np.float64)
    n_seeds = values.shape[0]
    indices = np.random.default_rng(seed).integers(0, n_seeds, size=(int(n_bootstrap), n_seeds))
    return _percentiles(values[indices].mean(axis=1), confidence)  # means: (n_bootstrap, n_points)


def iqm(values: np.ndarray, axis: int = 0) -> np.ndarray:
    """Interquartile mean along ``axis``: the mean of the values left after cutting the lowest and highest 25%."""
    return np.asarray(stats.trim_mean(np.asarray(values, dtype=np.float64), 0.25, axis=axis))


def stratified_bootstrap_indices(tasks: Sequence[str], n_bootstrap: int, seed: int = 0) -> np.ndarray:
    """``(n_bootstrap, n_runs)`` run indices: each resample draws, within every task, as many runs as it has."""
    labels = np.asarray(list(tasks))
    rng = np.random.default_rng(seed)
    columns = []
    for task in dict.fromkeys(labels.tolist()):  # tasks in order of first appearance
        members = np.flatnonzero(labels == task)
        columns.append(members[rng.integers(0, len(members), size=(int(n_bootstrap), len(members)))])
    return np.concatenate(columns, axis=1)


def iqm_ci(
    values: np.ndarray,
    tasks: Sequence[str] | None = None,
    confidence: float = 0.95,
    n_bootstrap: int = 1000,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """
    IQM over all runs (axis 0) and its stratified-bootstrap percentile confidence interval, at every x.

    :param values: ``(n_runs, n_points)``, the runs of every task together (scores on comparable scales)
    :param tasks: the task of each run (the bootstrap's strata); None: all runs are seeds of one task
    :return: IQM, lower and upper bounds ``(n_points,)``
    """
    _check_confidence(confidence)
    values = np.asarray(values, dtype=np.float64)
    tasks = ["task"] * values.shape[0] if tasks is None else list(tasks)
    if len(tasks) != values.shape[0]:
        raise ValueError(f"one task per run: got {len(tasks)} tasks for {values.shape[0]} runs")
    indices = stratified_bootstrap_indices(tasks, n_bootstrap, seed)
    # resampled runs along axis 1: (n_bootstrap, n_runs, n_points) -> IQM over the runs of each resample
    low, high = _percentiles(iqm(values[indices], axis=1), confidence)
    return iqm(values, axis=0), low, high


def aggregate(
    values: np.ndarray,
    band: str = "ci",
    confidence: float = 0.95,
    n_bootstrap: int = 1000,
    seed: int = 0,
    tasks: Sequence[str] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """
    The runs' aggregate (axis 0) and its band: ``"ci"``, the mean and the bootstrap confidence interval of the mean
    (:func:`bootstrap_ci`); ``"std"``, mean +/- the standard deviation over seeds (population, ``ddof=0``);
    ``"iqm"``, the interquartile mean and its stratified-bootstrap confidence interval over ``tasks``
    (:func:`iqm_ci`).

    :return: aggregate, lower and upper band ``(n_points,)``
    """
    values = np.asarray(values, dtype=np.float64)
    if band == "iqm":
        return iqm_ci(values, tasks, confidence, n_bootstrap, seed)
    mean = values.mean(axis=0)
    if band == "ci":
        low, high = bootstrap_ci(values, confidence, n_bootstrap, seed)
    elif band == "std":
        std = values.std(axis=0)
        low, high = mean - std, mean + std
    else:
        raise ValueError(f"band must be one of {BANDS}, got {band!r}")
    return mean, low, high
