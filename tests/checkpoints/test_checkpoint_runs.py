"""Runs sharing a checkpoint directory: pruning and resolving stay within one run, in write order."""

import json
import os
import shutil
import signal
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from stable_baselines3.common.callbacks import BaseCallback

from sb3_sacae.callbacks import CheckpointBundleCallback, list_bundles, resume_from_bundle, save_bundle
from tests.conftest import TEST_DEVICE, TinyPixelEnv, tiny_model

REPO = Path(__file__).resolve().parents[2]


def _state(bundle: Path) -> dict:
    return json.loads((bundle / "state.json").read_text())


def _learn(model, steps, path, **kwargs):
    model.learn(steps, callback=CheckpointBundleCallback(10, path, **kwargs), reset_num_timesteps=False)
    return model


def test_bundles_record_run_and_write_order(tmp_path):
    _learn(tiny_model(), 30, tmp_path, keep_last=5)
    states = [_state(b) for b in list_bundles(tmp_path)]
    assert len({s["run_id"] for s in states}) == 1
    assert [s["sequence"] for s in states] == [1, 2, 3]
    assert [s["num_timesteps"] for s in states] == [10, 20, 30]


def test_a_new_run_keeps_its_bundles_beside_an_older_run_with_more_steps(tmp_path):
    _learn(tiny_model(), 50, tmp_path, keep_last=2)
    older = {b.name: _state(b)["run_id"] for b in list_bundles(tmp_path)}
    assert sorted(older) == ["checkpoint_40_steps", "checkpoint_50_steps"]
    new = tiny_model()
    with pytest.warns(UserWarning, match="another run, up to step 50"):
        _learn(new, 20, tmp_path, keep_last=2)
    names = {b.name: _state(b) for b in list_bundles(tmp_path)}
    assert {name: names[name]["run_id"] for name in older} == older  # the older run's bundles are untouched
    mine = [name for name, state in names.items() if state["run_id"] not in older.values()]
    assert sorted(mine) == ["checkpoint_10_steps", "checkpoint_20_steps"]  # and the new run's are not pruned
    resumed = resume_from_bundle(tmp_path, TinyPixelEnv(), device=TEST_DEVICE)
    assert resumed.num_timesteps == 20  # the run written last, not the one with the most steps


def test_a_same_step_bundle_of_another_run_is_not_replaced(tmp_path):
    _learn(tiny_model(), 20, tmp_path)
    first = {b.name: _state(b)["run_id"] for b in list_bundles(tmp_path)}
    second = tiny_model()
    with pytest.warns(UserWarning, match="another run, up to step 20"):
        _learn(second, 20, tmp_path)
    bundles = {b.name: _state(b)["run_id"] for b in list_bundles(tmp_path)}
    assert {name: bundles[name] for name in first} == first
    run_id = next(run for run in bundles.values() if run not in first.values())
    assert sorted(set(bundles) - set(first)) == [f"checkpoint_10_steps-{run_id[:8]}", f"checkpoint_20_steps-{run_id[:8]}"]
    assert resume_from_bundle(tmp_path, TinyPixelEnv(), device=TEST_DEVICE).num_timesteps == 20
    assert _state(next(tmp_path.glob("checkpoint_20_steps-*")))["run_id"] == run_id
    with pytest.raises(FileExistsError, match="another run"):
        save_bundle(second, tmp_path / "checkpoint_10_steps")


def test_a_resumed_run_continues_its_run_and_prunes_its_earlier_bundles(tmp_path):
    model = _learn(tiny_model(), 30, tmp_path, keep_last=2)
    run_id = _state(tmp_path / "checkpoint_30_steps")["run_id"]
    resumed = resume_from_bundle(tmp_path, TinyPixelEnv(), device=TEST_DEVICE)
    del model
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _learn(resumed, 20, tmp_path, keep_last=2)
    bundles = list_bundles(tmp_path)
    assert [b.name for b in bundles] == ["checkpoint_40_steps", "checkpoint_50_steps"]
    assert [(_state(b)["run_id"], _state(b)["sequence"]) for b in bundles] == [(run_id, 4), (run_id, 5)]


def test_resuming_from_an_earlier_bundle_continues_the_sequence(tmp_path):
    _learn(tiny_model(), 30, tmp_path, keep_last=3)
    resumed = resume_from_bundle(tmp_path / "checkpoint_10_steps", TinyPixelEnv(), device=TEST_DEVICE)
    _learn(resumed, 10, tmp_path, keep_last=3)  # rewrites step 20 of the same run: newest in write order
    states = {b.name: _state(b)["sequence"] for b in list_bundles(tmp_path)}
    assert states == {"checkpoint_20_steps": 4, "checkpoint_30_steps": 3, "checkpoint_10_steps": 1}
    assert resume_from_bundle(tmp_path, TinyPixelEnv(), device=TEST_DEVICE).num_timesteps == 20


@pytest.mark.parametrize("kind", ["old", "tmp"])
def test_a_bundle_caught_mid_swap_is_restored(tmp_path, kind):
    model = tiny_model()
    save_bundle(model, tmp_path / "checkpoint_0_steps")
    # killed between the two renames of a swap: the final name is missing
    os.rename(tmp_path / "checkpoint_0_steps", tmp_path / f".checkpoint_0_steps.{kind}-999999999")
    half = tmp_path / ".checkpoint_5_steps.tmp-999999999-xyz"
    half.mkdir()
    (half / "model.zip").write_bytes(b"half")  # no state.json: incomplete
    tiny_model().learn(2, callback=CheckpointBundleCallback(10, tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint_0_steps"]
    assert _state(tmp_path / "checkpoint_0_steps")["num_timesteps"] == 0


def test_a_replaced_bundle_is_dropped_when_the_swap_completed(tmp_path):
    model = tiny_model()
    save_bundle(model, tmp_path / "checkpoint_0_steps")
    shutil.copytree(tmp_path / "checkpoint_0_steps", tmp_path / ".checkpoint_0_steps.old-999999999")
    tiny_model().learn(2, callback=CheckpointBundleCallback(10, tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint_0_steps"]


RAISING_WORKER = """
import os, signal, sys
# Python's own SIGINT handler, as in a foreground process (a shell's background job starts with SIGINT ignored)
signal.signal(signal.SIGINT, signal.default_int_handler)
from stable_baselines3.common.callbacks import BaseCallback
from sb3_sacae.callbacks import CheckpointBundleCallback
from tests.conftest import tiny_model

class Boom(BaseCallback):
    def _on_step(self):
        if self.num_timesteps == 5:
            raise RuntimeError("boom")
        return True

checkpoints = CheckpointBundleCallback(10, sys.argv[1])
try:
    tiny_model().learn(100, callback=[checkpoints, Boom()])
except RuntimeError:
    print("learn raised", flush=True)
signum = getattr(signal, sys.argv[2])
try:
    os.kill(os.getpid(), signum)
    signal.pthread_sigmask(signal.SIG_BLOCK, [])  # a bytecode boundary for the handler to run at
    print("swallowed", flush=True)
except KeyboardInterrupt:
    print("KeyboardInterrupt", flush=True)
print("default handler back:", signal.getsignal(signal.SIGINT) is signal.default_int_handler, flush=True)
"""


@pytest.mark.parametrize("signame", ["SIGINT", "SIGTERM"])
def test_signals_behave_as_usual_after_learn_raised(tmp_path, signame):
    result = subprocess.run(
        [sys.executable, "-c", RAISING_WORKER, str(tmp_path), signame],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert "learn raised" in result.stdout, result.stderr
    assert "swallowed" not in result.stdout
    if signame == "SIGINT":
        assert result.returncode == 0, result.stderr
        assert "KeyboardInterrupt" in result.stdout and "default handler back: True" in result.stdout
    else:
        assert result.returncode == -signal.SIGTERM  # killed by the default action, as without the callback
    assert list_bundles(tmp_path) == []


def test_handlers_are_restored_by_a_later_learn_after_one_raised(tmp_path):
    class Boom(BaseCallback):
        def _on_step(self):
            raise RuntimeError("boom")

    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    callback = CheckpointBundleCallback(10, tmp_path)
    model = tiny_model()
    with pytest.raises(RuntimeError):
        model.learn(5, callback=[callback, Boom()])
    assert signal.getsignal(signal.SIGINT) == callback._on_signal  # SB3 skipped on_training_end
    model.learn(5, callback=callback)
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before
