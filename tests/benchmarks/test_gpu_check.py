"""benchmarks/gpu/check.sh, the GPU checks in one call, refuses a machine without a CUDA GPU before it times anything."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch as th

ROOT = Path(__file__).parents[2]


@pytest.mark.skipif(th.cuda.is_available(), reason="this machine has a CUDA GPU")
def test_check_stops_with_the_reason_on_a_machine_without_a_gpu(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    # python3 here is the interpreter running the tests, whatever python3 is on PATH
    (bin_dir / "python3").symlink_to(sys.executable)
    env = {**os.environ, "OUT": str(tmp_path / "out"), "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    result = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "gpu" / "check.sh")], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 1
    assert "torch sees no CUDA GPU" in result.stdout + result.stderr
    assert "torch sees no CUDA GPU" in (tmp_path / "out" / "check.log").read_text()


def test_both_scripts_parse():
    for script in ("check.sh", "wheels.sh"):
        subprocess.run(["bash", "-n", str(ROOT / "benchmarks" / "gpu" / script)], check=True)
