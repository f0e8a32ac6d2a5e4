"""Saves are atomic, bundles are complete or absent, and only the last K bundles are kept."""

import json
import signal
import zipfile

import numpy as np
import pytest
import torch as th

from sb3_sacae import SACAE
from sb3_sacae.callbacks import CheckpointBundleCallback, list_bundles, save_bundle
from tests.conftest import tiny_model


def test_crash_mid_save_keeps_the_previous_file(tmp_path, monkeypatch):
    model = tiny_model()
    path = tmp_path / "model.zip"
    model.save(path)
    before = path.read_bytes()

    model.learn(20)
    calls = []

    def crash_on_second_tensor_file(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise OSError("disk full (simulated)")
        return real_save(*args, **kwargs)

    real_save = th.save
    monkeypatch.setattr(th, "save", crash_on_second_tensor_file)
    with pytest.raises(OSError, match="simulated"):
        model.save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.zip"]  # no temporary left behind
    monkeypatch.undo()
    SACAE.load(path)  # still a valid model


def test_crash_mid_buffer_save_keeps_the_previous_file(tmp_path, monkeypatch):
    model = tiny_model()
    model.save_replay_buffer(tmp_path / "buffer.npz")
    before = (tmp_path / "buffer.npz").read_bytes()
    model.learn(20)
    monkeypatch.setattr(np.lib.format, "write_array", lambda *a, **k: (_ for _ in ()).throw(OSError("killed (simulated)")))
    with pytest.raises(OSError, match="simulated"):
        model.save_replay_buffer(tmp_path / "buffer.npz")
    assert (tmp_path / "buffer.npz").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["buffer.npz"]


def test_save_adds_zip_suffix_and_keeps_permissions(tmp_path):
    model = tiny_model()
    model.save(tmp_path / "model")
    assert zipfile.is_zipfile(tmp_path / "model.zip")
    (tmp_path / "model.zip").chmod(0o640)
    model.save(tmp_path / "model.zip")
    assert (tmp_path / "model.zip").stat().st_mode & 0o777 == 0o640


def test_keeps_the_last_k_bundles(tmp_path):
    model = tiny_model()
    model.learn(50, callback=CheckpointBundleCallback(10, tmp_path, keep_last=2, name_prefix="run"))
    assert [p.name for p in list_bundles(tmp_path, "run")] == ["run_40_steps", "run_50_steps"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run_40_steps", "run_50_steps"]


def test_a_bundle_holds_model_buffer_counters_and_rng_states(tmp_path):
    model = tiny_model()
    model.learn(30, callback=CheckpointBundleCallback(30, tmp_path))
    bundle = tmp_path / "checkpoint_30_steps"
    assert sorted(p.name for p in bundle.iterdir()) == ["model.zip", "replay_buffer.npz", "state.json"]
    state = json.loads((bundle / "state.json").read_text())
    assert (state["num_timesteps"], state["n_updates"], state["episode_num"]) == (30, 30 - 16, 1)
    assert {"python", "numpy", "torch", "action_space", "envs", "envs_before_last_step"} <= set(state["rng"])
    assert state["interrupted_by"] is None


def test_bundles_are_written_between_steps(tmp_path):
    # At the bundle, the step that reached save_freq is stored and trained on, as at the end of learn()
    model = tiny_model()
    model.learn(25, callback=CheckpointBundleCallback(20, tmp_path, keep_last=5))
    bundle_model = SACAE.load(tmp_path / "checkpoint_20_steps" / "model.zip")
    assert bundle_model.num_timesteps == 20 and bundle_model._n_updates == 20 - 16


def test_a_crash_mid_bundle_leaves_only_complete_bundles(tmp_path, monkeypatch):
    model = tiny_model()
    model.learn(10, callback=CheckpointBundleCallback(10, tmp_path))
    import sb3_sacae.checkpoints as checkpoints

    monkeypatch.setattr(checkpoints, "write_replay_buffer", lambda *a: (_ for _ in ()).throw(OSError("killed (simulated)")))
    with pytest.raises(OSError, match="simulated"):
        save_bundle(model, tmp_path / "checkpoint_20_steps")
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint_10_steps"]


def test_stale_temporaries_of_dead_runs_are_removed(tmp_path):
    stale = tmp_path / ".checkpoint_10_steps.tmp-999999999-abc"
    stale.mkdir()
    (stale / "model.zip").write_bytes(b"half")
    tiny_model().learn(2, callback=CheckpointBundleCallback(10, tmp_path))
    assert not stale.exists()


def test_signal_handlers_are_restored_after_learn(tmp_path):
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    tiny_model().learn(5, callback=CheckpointBundleCallback(10, tmp_path))
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before


@pytest.mark.parametrize("kwargs", [dict(save_freq=0), dict(save_freq=10, keep_last=0)])
def test_bad_arguments_are_refused(tmp_path, kwargs):
    with pytest.raises(ValueError):
        CheckpointBundleCallback(save_path=tmp_path, **kwargs)
