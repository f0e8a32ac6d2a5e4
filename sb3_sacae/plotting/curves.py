"""Runs as curves: SB3 monitor logs and EvalCallback ``evaluations.npz`` files loaded, smoothed and aligned on one
x grid (pure functions on numpy arrays)."""

from __future__ import annotations

import glob
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas
from stable_baselines3.common.monitor import Monitor, get_monitor_files, load_results

EVALUATIONS_FILE = "evaluations.npz"
SOURCES = ("auto", "eval", "monitor")


@dataclass(frozen=True)
class Curve:
    """One run: returns ``y`` at steps ``x`` (increasing)."""

    x: np.ndarray
    y: np.ndarray


def load_monitor(path: str | Path) -> Curve:
    """
    Training episodes of a run: ``x`` = agent steps at the end of each episode (cumulative episode lengths),
    ``y`` = episode return.

    :param path: one ``monitor.csv`` file (SB3 ``Monitor``), or a folder whose ``*monitor.csv`` files (one per env
        of a VecEnv) are merged in the order the episodes ended, as ``stable_baselines3.common.monitor.load_results``
    """
    path = Path(path)
    if path.is_dir():
        frame = load_results(str(path))  # raises LoadMonitorResultsError when the folder has no monitor file
    elif path.name.endswith(Monitor.EXT):
        frame = pandas.read_csv(path, comment="#")  # the first line is Monitor's JSON header
    else:
        raise ValueError(f"{path} is neither a folder nor a monitor file (*{Monitor.EXT})")
    if len(frame) == 0:
        raise ValueError(f"no finished episode in the monitor log(s) of {path}")
    return Curve(x=np.cumsum(frame["l"].to_numpy(dtype=np.float64)), y=frame["r"].to_numpy(dtype=np.float64))


def load_evaluations(path: str | Path) -> Curve:
    """
    Evaluations of a run written by SB3's ``EvalCallback(log_path=...)``: ``x`` = ``timesteps``, ``y`` = mean
    return over the evaluation episodes.

    :param path: ``evaluations.npz`` or the folder holding it
    """
    from sb3_sacae.io import read_regular_file
    from sb3_sacae.io.archives import read_npz
    from sb3_sacae.io.limits import MAX_METADATA_BYTES

    path = Path(path)
    if path.is_dir():
        path = path / EVALUATIONS_FILE
    # a downloaded run (a Hub train_eval_metrics.zip) is a file like any other: a regular file, read within the limit,
    # and only the two arrays read, each size checked from its .npy header before it is allocated
    raw = read_regular_file(path, "evaluations file", MAX_METADATA_BYTES)
    data = read_npz(raw, f"evaluations file {path}", limit=MAX_METADATA_BYTES, keys={"timesteps", "results"})
    if "timesteps" not in data or "results" not in data:
        raise ValueError(f"{path} is not an EvalCallback file: it needs the arrays 'timesteps' and 'results'")
    try:
        timesteps, results = data["timesteps"].astype(np.float64), data["results"].astype(np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{path} is not an EvalCallback file: 'timesteps' and 'results' must be numbers ({error})") from error
    if len(timesteps) == 0:
        raise ValueError(f"{path} holds no evaluation")
    return Curve(x=timesteps, y=results.reshape(len(timesteps), -1).mean(axis=1))


def has_evaluations(path: str | Path) -> bool:
    """Whether ``path`` is an ``evaluations.npz`` or a folder holding one."""
    path = Path(path)
    return path.name == EVALUATIONS_FILE or (path.is_dir() and (path / EVALUATIONS_FILE).is_file())


def has_monitor(path: str | Path) -> bool:
    """Whether ``path`` is a monitor file or a folder holding some."""
    path = Path(path)
    return path.name.endswith(Monitor.EXT) or (path.is_dir() and bool(get_monitor_files(str(path))))


def resolve_source(paths: Sequence[str | Path], source: str = "auto") -> str:
    """
    The log type to read for a group of runs: ``source`` itself, or with ``"auto"`` evaluations when every run has
    an ``evaluations.npz``, else monitor logs when every run has them.
    """
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, got {source!r}")
    if source != "auto":
        return source
    if all(has_evaluations(path) for path in paths):
        return "eval"
    if all(has_monitor(path) for path in paths):
        return "monitor"
    missing = [str(path) for path in paths if not has_evaluations(path) and not has_monitor(path)]
    raise ValueError(
        f"cannot tell which logs to plot: {missing or 'some runs have only evaluations.npz, others only monitor.csv'}; "
        "give run folders holding evaluations.npz (EvalCallback log_path) or monitor.csv (Monitor) files, "
        "or choose with --source eval / --source monitor"
    )


def load_curve(path: str | Path, source: str = "eval", x_scale: float = 1.0, smoothing: int = 1) -> Curve:
    """
    One run's curve from its ``source`` (``"eval"`` or ``"monitor"``), with x multiplied by ``x_scale`` (the action
    repeat turns agent steps into environment frames) and, for monitor logs, returns averaged over a trailing
    window of ``smoothing`` episodes.
    """
    if source == "eval":
        curve = load_evaluations(path)
    elif source == "monitor":
        curve = load_monitor(path)
        curve = Curve(curve.x, smooth(curve.y, smoothing))
    else:
        raise ValueError(f"source must be 'eval' or 'monitor', got {source!r}")
    return Curve(curve.x * float(x_scale), curve.y)


def smooth(values: np.ndarray, window: int) -> np.ndarray:
    """
    Trailing moving average: each value is the mean of itself and up to ``window - 1`` values before it (fewer at
    the start, so the output keeps the input's length). ``window=1`` returns the values unchanged.
    """
    if int(window) < 1:
        raise ValueError(f"the smoothing window must be at least 1 episode, got {window}")
    values = np.asarray(values, dtype=np.float64)
    cumulative = np.concatenate([[0.0], np.cumsum(values)])
    ends = np.arange(1, len(values) + 1)
    starts = np.maximum(ends - int(window), 0)
    return (cumulative[ends] - cumulative[starts]) / (ends - starts)


def align(curves: Sequence[Curve], n_points: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """
    Put the curves on one x grid by linear interpolation: ``n_points`` evenly spaced steps over the range every
    curve covers (from the largest first x to the smallest last x; never extrapolated). When all curves share the
    same x values (evaluations at the same steps), those are the grid and nothing is interpolated.

    :return: the grid ``(n_points,)`` and the values ``(n_curves, n_points)``
    """
    if not curves:
        raise ValueError("no curve to align")
    for curve in curves:
        if len(curve.x) == 0 or len(curve.x) != len(curve.y):
            raise ValueError(
                f"a curve needs as many y as x values and at least one point, got {len(curve.x)} and {len(curve.y)}"
            )
        if np.any(np.diff(curve.x) < 0):
            raise ValueError("curve x values must be non-decreasing (agent steps)")
    first = curves[0].x
    if all(len(curve.x) == len(first) and np.array_equal(curve.x, first) for curve in curves):
        return first.astype(np.float64), np.stack([curve.y for curve in curves]).astype(np.float64)
    low, high = max(curve.x[0] for curve in curves), min(curve.x[-1] for curve in curves)
    if low > high:
        raise ValueError(
            f"the curves do not overlap: one starts at x={low:g} after another ends at x={high:g}; "
            "plot runs of comparable length, or put them in separate groups"
        )
    grid = np.linspace(low, high, int(n_points)) if high > low else np.array([low])
    return grid, np.stack([np.interp(grid, curve.x, curve.y) for curve in curves])


def expand_runs(patterns: Sequence[str | Path]) -> list[Path]:
    """Run folders or log files from paths and glob patterns (``**`` recursive), sorted; a pattern matching nothing raises."""
    runs: list[Path] = []
    for pattern in patterns:
        matches = sorted(glob.glob(str(pattern), recursive=True))
        if not matches:
            raise FileNotFoundError(f"no run matches {str(pattern)!r}: give run folders, log files or a quoted glob")
        runs += [Path(match) for match in matches if Path(match) not in runs]
    return runs
