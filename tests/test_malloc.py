"""tune_malloc: glibc keeps the update's large blocks for reuse instead of mapping and faulting them afresh."""

import subprocess
import sys
import textwrap

import pytest

from sb3_sacae.malloc import _glibc_mallopt
from tests.conftest import TinyPixelEnv, tiny_model

needs_glibc = pytest.mark.skipif(_glibc_mallopt() is None, reason="mallopt is glibc's")

# Rounds of 12 blocks of 12 MB, allocated, written and freed: page faults of the rounds after the first
FAULTS = textwrap.dedent("""
    import resource, sys
    import torch as th
    from sb3_sacae.malloc import tune_malloc

    def faults_per_round():
        xs = [th.empty(3_000_000).fill_(1.0) for _ in range(12)]
        del xs
        start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for _ in range(8):
            xs = [th.empty(3_000_000).fill_(1.0) for _ in range(12)]
            del xs
        return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - start) / 8

    if sys.argv[1] == "tuned":
        assert tune_malloc() and tune_malloc()  # once, then a no-op
    print(faults_per_round())
    """)


def _faults(mode: str) -> float:
    completed = subprocess.run(
        [sys.executable, "-c", FAULTS, mode], capture_output=True, text=True, timeout=120, env={"OMP_NUM_THREADS": "1"}
    )
    assert completed.returncode == 0, completed.stderr
    return float(completed.stdout.strip())


@needs_glibc
def test_tuned_malloc_reuses_freed_blocks_instead_of_faulting_them_again():
    untuned, tuned = _faults("plain"), _faults("tuned")
    pages = 12 * 12_000_000 / 4096
    # glibc's defaults hand part of the 144 MB back in every round (how much varies), and fault it in again
    assert untuned > 4 * tuned
    assert tuned < 0.03 * pages  # a few MB of slack over all rounds at most


def test_sacae_tunes_malloc_on_cpu_unless_told_not_to(monkeypatch):
    calls = []
    monkeypatch.setattr("sb3_sacae.sacae.tune_malloc", lambda: calls.append(1) or True)
    model = tiny_model(TinyPixelEnv())
    assert model.tune_malloc is True and calls == [1]
    assert tiny_model(TinyPixelEnv(), tune_malloc=False).tune_malloc is False and calls == [1]


def test_without_glibc_tune_malloc_does_nothing(monkeypatch):
    import sb3_sacae.malloc as malloc

    monkeypatch.setattr(malloc, "_tuned", False)
    monkeypatch.setattr(malloc, "_glibc_mallopt", lambda: None)
    assert malloc.tune_malloc() is False
