"""python -m sb3_sacae.plotting: groups of seeds in, a learning-curve figure and a summary table out."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sb3_sacae.plotting import learning_curves, plot_learning_curves, summary_table
from sb3_sacae.plotting.cli import main
from tests.plotting.test_plotting_loading import write_evaluations, write_monitor

REPO = Path(__file__).resolve().parents[2]
PNG_MAGIC, PDF_MAGIC = b"\x89PNG\r\n\x1a\n", b"%PDF"


def make_runs(root: Path, name: str, offset: float, n_seeds: int = 3) -> None:
    """Seeds whose evaluation return is steps / 100 + offset + seed, and monitor logs of 10-step episodes."""
    steps = np.arange(1, 6) * 100
    for seed in range(n_seeds):
        run = root / f"{name}_seed{seed}"
        write_evaluations(run, steps, np.stack([steps / 100 + offset + seed] * 2, axis=1))
        write_monitor(run, returns=np.arange(50) + offset, lengths=[10] * 50)


def plot(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(
        [sys.executable, "-m", "sb3_sacae.plotting", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def test_two_groups_make_a_png_and_a_summary(tmp_path):
    make_runs(tmp_path, "sacae", offset=0.0)
    make_runs(tmp_path, "pixel", offset=-10.0)
    result = plot(
        "--group", "SAC-AE=sacae_*", "--group", "SAC:pixel=pixel_*", "--x-scale", "4", "--out", "fig.png", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "fig.png").read_bytes()[:8] == PNG_MAGIC
    rows = {line.split()[0]: line.split() for line in result.stdout.splitlines()[2:4]}
    # final mean over seeds 0, 1, 2 at 500 steps (2,000 frames): 5 + offset + 1
    assert rows["SAC-AE"][1:4] == ["3", "2,000", "6.00"]
    assert rows["SAC:pixel"][1:4] == ["3", "2,000", "-4.00"]
    assert "95% CI" in result.stdout


def test_positional_runs_monitor_logs_std_band_and_pdf(tmp_path):
    make_runs(tmp_path, "sacae", offset=0.0, n_seeds=2)
    result = plot("sacae_seed0", "sacae_seed1", "--source", "monitor", "--smooth", "5", "--band", "std", "--out",
                  "out/fig.pdf", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "fig.pdf").read_bytes()[:4] == PDF_MAGIC
    assert "mean +/- std" in result.stdout


def usage_error(argv: list[str], capsys) -> str:
    """Run the CLI in-process; it must exit with status 2 (argparse's usage error); return its stderr."""
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    return capsys.readouterr().err


def test_a_glob_matching_nothing_is_a_clear_error(tmp_path, capsys):
    assert "no run matches" in usage_error(["--group", f"A={tmp_path / 'missing_*'}"], capsys)


def test_no_runs_at_all_is_a_usage_error(capsys):
    assert "--group" in usage_error([], capsys)


def test_the_figure_has_one_line_and_band_per_group(tmp_path):
    make_runs(tmp_path, "a", offset=0.0)
    make_runs(tmp_path, "b", offset=5.0)
    curves = learning_curves({"A": [str(tmp_path / "a_*")], "B": [str(tmp_path / "b_*")]}, band="ci")
    assert [curve.n_seeds for curve in curves] == [3, 3]
    figure = plot_learning_curves(curves, tmp_path / "fig.png", title="t")
    axes = figure.axes[0]
    assert len(axes.lines) == 2 and len(axes.collections) == 2
    assert [text.get_text() for text in axes.get_legend().get_texts()] == ["A (3 seeds)", "B (3 seeds)"]
    table = summary_table(curves)
    assert table.splitlines()[0].split()[:3] == ["group", "seeds", "final"]


@pytest.mark.parametrize("bad", ["noequals", "=glob", "name="])
def test_malformed_groups_are_refused(bad, capsys):
    assert "NAME=GLOB" in usage_error(["--group", bad], capsys)
