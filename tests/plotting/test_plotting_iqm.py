"""IQM over runs with a stratified-bootstrap confidence interval (the rliable protocol), per task and across tasks."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from sb3_sacae.plotting import aggregate, iqm, iqm_ci, learning_curves, stratified_bootstrap_indices, summary_table
from tests.plotting.test_plotting_cli import plot
from tests.plotting.test_plotting_loading import write_evaluations


def test_iqm_is_the_mean_of_the_middle_half():
    values = np.array([100.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, -50.0])  # two outliers out of eight runs
    assert iqm(values) == pytest.approx(3.5)  # mean of 2, 3, 4, 5
    assert iqm(values) == pytest.approx(stats.trim_mean(values, 0.25))  # rliable's aggregate_iqm


def test_stratified_resamples_keep_every_tasks_run_count():
    tasks = ["cheetah"] * 3 + ["walker"] * 5
    indices = stratified_bootstrap_indices(tasks, n_bootstrap=200, seed=1)
    assert indices.shape == (200, 8)
    assert np.all(indices[:, :3] < 3) and np.all(indices[:, 3:] >= 3)  # each task resampled within itself
    assert len(np.unique(indices[:, 3:])) == 5  # with replacement, over all of its runs


def test_iqm_band_contains_the_iqm_and_narrows_with_more_runs():
    rng = np.random.default_rng(0)
    few, many = rng.normal(size=(5, 4)), rng.normal(size=(80, 4))
    for values in (few, many):
        center, low, high = iqm_ci(values, n_bootstrap=500)
        assert np.all(low <= center) and np.all(center <= high)
    assert np.all(np.diff(iqm_ci(many, n_bootstrap=500)[1:], axis=0) < np.diff(iqm_ci(few, n_bootstrap=500)[1:], axis=0))


def test_iqm_band_is_reproducible_and_one_run_has_no_width():
    values = np.random.default_rng(3).normal(size=(6, 5))
    np.testing.assert_array_equal(iqm_ci(values, seed=7)[1], iqm_ci(values, seed=7)[1])
    center, low, high = aggregate(values[:1], band="iqm")
    np.testing.assert_array_equal(low, center)
    np.testing.assert_array_equal(high, center)


def test_iqm_ignores_a_diverged_seed_that_moves_the_mean():
    values = np.array([[10.0], [11.0], [12.0], [13.0], [-1000.0]])
    assert aggregate(values, band="iqm")[0][0] == pytest.approx(11.0, abs=1.0)
    assert aggregate(values, band="ci")[0][0] < -100


def make_task(root, task: str, scores: list[float]) -> None:
    for seed, score in enumerate(scores):
        write_evaluations(root / task / f"sacae_seed{seed}", [100, 200], np.array([[0.0], [score]]))


def test_iqm_across_tasks_from_the_run_folders(tmp_path):
    make_task(tmp_path, "cheetah", [400.0, 500.0, 600.0])
    make_task(tmp_path, "walker", [700.0, 800.0, 900.0, 1000.0])
    (curve,) = learning_curves({"SAC-AE": [str(tmp_path / "*" / "sacae_seed*")]}, band="iqm", n_bootstrap=300)
    assert curve.n_seeds == 7 and curve.n_tasks == 2
    assert curve.mean[-1] == pytest.approx(stats.trim_mean([400, 500, 600, 700, 800, 900, 1000], 0.25))
    assert curve.low[-1] <= curve.mean[-1] <= curve.high[-1]
    table = summary_table([curve])
    assert "IQM, stratified bootstrap 95% CI" in table and "tasks" in table.splitlines()[0]


def test_the_command_takes_band_iqm(tmp_path):
    make_task(tmp_path, "cheetah", [400.0, 500.0, 600.0])
    make_task(tmp_path, "walker", [700.0, 800.0, 900.0])
    result = plot("--group", "SAC-AE=*/sacae_seed*", "--band", "iqm", "--out", "iqm.png", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    row = result.stdout.splitlines()[2].split()
    assert row[:5] == ["SAC-AE", "6", "2", "200", "650.00"]  # runs, tasks, final x, IQM of the six final scores
    assert (tmp_path / "iqm.png").is_file()
