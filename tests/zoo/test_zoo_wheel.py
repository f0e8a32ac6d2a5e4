"""The installed wheel: `python -m rl_zoo3.train --algo sacae` with no launcher, no flag, no --conf-file."""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_installed_wheel_makes_rl_zoo3_scripts_know_sacae(tmp_path):
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path / "dist")]
    subprocess.run([*build, str(ROOT)], check=True, timeout=600)
    wheel = next((tmp_path / "dist").glob("sb3_sacae-*.whl"))
    venv.create(tmp_path / "venv", system_site_packages=True, with_pip=False)
    python = tmp_path / "venv" / "bin" / "python"
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "SB3_SACAE_NO_ZOO_HOOK")}
    env["OMP_NUM_THREADS"] = "1"
    # --ignore-installed: an editable install of the same version in the system's site-packages must not win
    install = [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--ignore-installed", "-q"]
    subprocess.run([*install, str(wheel)],
                   check=True, timeout=600, env=env)  # fmt: skip
    work = tmp_path / "work"
    work.mkdir()

    def zoo(*args: str) -> str:
        result = subprocess.run([str(python), "-m", *args], cwd=work, env=env, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, f"{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
        return result.stdout

    out = zoo("rl_zoo3.train", "--algo", "sacae", "--env", "PendulumPixels-v1", "-n", "32", "-f", "logs",
              "--env-kwargs", "image_size:32", "frame_stack:2", "--hyperparams", "learning_starts:8", "buffer_size:100",
              "policy_kwargs:dict(features_dim=8, net_arch=[16], n_filters=4, n_conv_layers=2)")  # fmt: skip
    assert "site-packages/sb3_sacae/zoo/hyperparams/sacae.yml" in out
    out = zoo("rl_zoo3.enjoy", "--algo", "sacae", "--env", "PendulumPixels-v1", "-f", "logs", "-n", "110", "--no-render")
    assert "Episode Reward" in out
