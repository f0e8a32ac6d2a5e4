"""SIGTERM and SIGINT during learn() write a final bundle and exit non-zero with a message."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from sb3_sacae.callbacks import list_bundles

REPO = Path(__file__).resolve().parents[2]

WORKER = """
import sys
from stable_baselines3.common.callbacks import BaseCallback
from sb3_sacae.callbacks import CheckpointBundleCallback
from tests.conftest import tiny_model

class AnnounceTraining(BaseCallback):
    def _on_step(self):
        if self.num_timesteps == 20:  # past the warm-up: gradient steps are running
            print("training", flush=True)
        return True

tiny_model().learn(10**6, callback=[CheckpointBundleCallback(1000, sys.argv[1]), AnnounceTraining()])
print("finished", flush=True)
"""


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_writes_a_final_bundle_and_exits_non_zero(tmp_path, signum):
    process = subprocess.Popen(
        [sys.executable, "-c", WORKER, str(tmp_path)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    try:
        assert process.stdout.readline().strip() == "training"
        process.send_signal(signum)
        stdout, stderr = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 128 + signum
    assert "finished" not in stdout
    assert f"interrupted by {signal.Signals(signum).name}" in stderr and "resume_from_bundle" in stderr
    bundles = list_bundles(tmp_path)
    assert len(bundles) == 1
    state = json.loads((bundles[0] / "state.json").read_text())
    assert state["interrupted_by"] == signal.Signals(signum).name and state["num_timesteps"] >= 20
