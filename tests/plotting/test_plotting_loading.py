"""Loading learning curves: SB3 monitor logs and EvalCallback evaluations.npz files, in folders or as files."""

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from stable_baselines3.common.monitor import LoadMonitorResultsError

from sb3_sacae.plotting import expand_runs, load_curve, load_evaluations, load_monitor, resolve_source


def write_monitor(folder: Path, returns: Sequence[float], lengths: Sequence[int], name: str = "monitor.csv") -> Path:
    """A monitor file as SB3's Monitor writes it: a JSON header line, then r,l,t rows."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    rows = [f"{ret},{length},{0.1 * (i + 1):.1f}" for i, (ret, length) in enumerate(zip(returns, lengths, strict=True))]
    path.write_text("#" + json.dumps({"t_start": 0.0, "env_id": "Tiny"}) + "\nr,l,t\n" + "\n".join(rows) + "\n")
    return path


def write_evaluations(folder: Path, timesteps: Sequence[int], results: np.ndarray) -> Path:
    """An evaluations.npz as SB3's EvalCallback writes it: timesteps, results and ep_lengths (n_evals, n_episodes)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "evaluations.npz"
    results = np.asarray(results, dtype=np.float64)
    np.savez(path, timesteps=np.asarray(timesteps), results=results, ep_lengths=np.full(results.shape, 10))
    return path


def test_monitor_x_is_the_cumulative_episode_length(tmp_path):
    write_monitor(tmp_path, returns=[1.0, 2.0, 3.0], lengths=[10, 20, 30])
    curve = load_monitor(tmp_path)
    np.testing.assert_array_equal(curve.x, [10, 30, 60])
    np.testing.assert_array_equal(curve.y, [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(load_monitor(tmp_path / "monitor.csv").x, curve.x)


def test_the_monitor_files_of_a_vec_env_are_merged(tmp_path):
    write_monitor(tmp_path, returns=[1.0, 3.0], lengths=[10, 10], name="0.monitor.csv")
    write_monitor(tmp_path, returns=[2.0], lengths=[10], name="1.monitor.csv")
    curve = load_monitor(tmp_path)
    assert len(curve.x) == 3
    np.testing.assert_array_equal(curve.x, [10, 20, 30])


def test_evaluations_are_averaged_over_episodes(tmp_path):
    write_evaluations(tmp_path, [100, 200], [[1.0, 3.0], [5.0, 7.0]])
    curve = load_evaluations(tmp_path)
    np.testing.assert_array_equal(curve.x, [100, 200])
    np.testing.assert_array_equal(curve.y, [2.0, 6.0])
    np.testing.assert_array_equal(load_evaluations(tmp_path / "evaluations.npz").y, curve.y)


def test_x_scale_turns_agent_steps_into_env_frames_and_smoothing_applies_to_monitors(tmp_path):
    write_monitor(tmp_path, returns=[0.0, 2.0, 4.0], lengths=[10, 10, 10])
    curve = load_curve(tmp_path, "monitor", x_scale=4, smoothing=2)
    np.testing.assert_array_equal(curve.x, [40, 80, 120])
    np.testing.assert_array_equal(curve.y, [0.0, 1.0, 3.0])


def test_source_auto_prefers_evaluations_when_every_run_has_them(tmp_path):
    both, monitor_only = tmp_path / "both", tmp_path / "monitor_only"
    write_evaluations(both, [100], [[1.0]])
    write_monitor(both, [1.0], [10])
    write_monitor(monitor_only, [1.0], [10])
    assert resolve_source([both]) == "eval"
    assert resolve_source([both, monitor_only]) == "monitor"
    assert resolve_source([both], "monitor") == "monitor"
    with pytest.raises(ValueError, match="--source"):
        resolve_source([both, tmp_path / "empty"])


def test_globs_expand_and_unmatched_patterns_are_errors(tmp_path):
    for seed in range(3):
        write_evaluations(tmp_path / f"seed{seed}", [100], [[1.0]])
    assert expand_runs([str(tmp_path / "seed*")]) == [tmp_path / f"seed{seed}" for seed in range(3)]
    assert len(expand_runs([str(tmp_path / "**" / "evaluations.npz")])) == 3
    with pytest.raises(FileNotFoundError, match="no run matches"):
        expand_runs([str(tmp_path / "nothing*")])


def test_empty_or_foreign_logs_are_refused(tmp_path):
    with pytest.raises(LoadMonitorResultsError):
        load_monitor(tmp_path)
    write_monitor(tmp_path / "empty", [], [])
    with pytest.raises(ValueError, match="no finished episode"):
        load_monitor(tmp_path / "empty")
    np.savez(tmp_path / "evaluations.npz", something=np.zeros(3))
    with pytest.raises(ValueError, match="timesteps"):
        load_evaluations(tmp_path)


def _deflated_evaluations(path: Path, n_results: int) -> Path:
    """A small deflated ``evaluations.npz`` whose ``results`` array (zeros) is ``8 * n_results`` bytes once read."""
    import io
    import zipfile

    def npy(array: np.ndarray) -> bytes:
        buffer = io.BytesIO()
        np.save(buffer, array)
        return buffer.getvalue()

    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("timesteps.npy", npy(np.arange(1, dtype=np.int64)))
        archive.writestr("results.npy", npy(np.zeros((1, n_results))))
    return path


def test_evaluations_over_the_limit_are_refused_before_they_are_allocated(tmp_path, monkeypatch):
    """A small deflated file stating a large array (a downloaded run's evaluations.npz) is refused from its header."""
    from sb3_sacae.io import FileLimitError

    path = _deflated_evaluations(tmp_path / "evaluations.npz", 100_000)  # 800 kB of arrays in a ~1 kB file
    assert path.stat().st_size < 5_000
    monkeypatch.setenv("SB3_SACAE_MAX_METADATA_BYTES", "100000")
    with pytest.raises(FileLimitError, match=r"array 'results'.*800,000 bytes.*SB3_SACAE_MAX_METADATA_BYTES"):
        load_evaluations(tmp_path)
    monkeypatch.delenv("SB3_SACAE_MAX_METADATA_BYTES")
    assert load_evaluations(tmp_path).y.tolist() == [0.0]


def test_evaluations_that_are_not_a_regular_file_are_refused(tmp_path):
    import os

    from sb3_sacae.io import UnsafeFileError

    os.mkfifo(tmp_path / "evaluations.npz")  # reading a FIFO would block
    with pytest.raises(UnsafeFileError, match="not a regular file"):
        load_evaluations(tmp_path / "evaluations.npz")
