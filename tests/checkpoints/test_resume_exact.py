"""
Training 2N steps straight equals training N steps, checkpointing, and resuming N steps in a fresh process.

N is a multiple of the episode length (resume at an episode boundary), learning_starts < N (the warm-up must not be
repeated) and the learning rate follows a linear schedule (it must continue, not restart). CPU, one thread.
"""

import json
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch as th

from sb3_sacae.callbacks import resume_from_bundle
from sb3_sacae.io import UnsafeFileError
from tests.conftest import TEST_DEVICE, TinyPixelEnv, tiny_model

REPO = Path(__file__).resolve().parents[2]
N = 40

WORKER = """
import sys, json
import torch as th
from stable_baselines3.common.utils import LinearSchedule
from sb3_sacae.callbacks import CheckpointBundleCallback, resume_from_bundle
from tests.conftest import TEST_DEVICE, TinyPixelEnv, tiny_model

th.set_num_threads(1)
mode, checkpoints, out, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
env = TinyPixelEnv(episode_length=10)
if mode == "straight":
    model = tiny_model(env, learning_rate=LinearSchedule(1e-3, 1e-4, 1.0))
    model.learn(2 * n, callback=CheckpointBundleCallback(n, checkpoints, keep_last=5))
else:
    model = resume_from_bundle(f"{checkpoints}/checkpoint_{n}_steps", env, device=TEST_DEVICE)
    model.learn(n, reset_num_timesteps=False)
model.save(f"{out}.zip")
model.save_replay_buffer(f"{out}.npz")
json.dump({"lr": model.actor.optimizer.param_groups[0]["lr"], "n_updates": model._n_updates,
           "episodes": model._episode_num, "timesteps": model.num_timesteps}, open(f"{out}.json", "w"))
"""


def _run(*args: str) -> None:
    result = subprocess.run([sys.executable, "-c", WORKER, *args], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("resume")
    _run("straight", str(root / "checkpoints"), str(root / "straight"), str(N))
    _run("resume", str(root / "checkpoints"), str(root / "resumed"), str(N))
    return root


def test_resumed_run_equals_straight_run(runs):
    from sb3_sacae import SACAE

    straight, resumed = SACAE.load(runs / "straight.zip"), SACAE.load(runs / "resumed.zip")
    for name, tensor in straight.get_parameters().items():
        other = resumed.get_parameters()[name]
        for key, value in tensor.items():
            if isinstance(value, th.Tensor):
                assert th.equal(value, other[key]), f"{name}.{key}"
    for name, tensor in straight.policy.state_dict().items():
        assert th.equal(tensor, resumed.policy.state_dict()[name]), name
    assert th.equal(straight.log_ent_coef, resumed.log_ent_coef)


def test_counters_and_schedule_continue(runs):
    straight, resumed = (json.loads((runs / f"{name}.json").read_text()) for name in ("straight", "resumed"))
    assert straight == resumed
    assert resumed["timesteps"] == 2 * N and resumed["n_updates"] == 2 * N - 16 and resumed["episodes"] == 2 * N // 10


def test_resumed_buffer_equals_straight_buffer(runs):
    with np.load(runs / "straight.npz") as straight, np.load(runs / "resumed.npz") as resumed:
        assert straight.files == resumed.files
        for key in straight.files:
            np.testing.assert_array_equal(straight[key], resumed[key], err_msg=key)


def test_mid_episode_resume_warns(tmp_path):
    from sb3_sacae.callbacks import save_bundle

    model = tiny_model(TinyPixelEnv(episode_length=10))
    model.learn(15)
    save_bundle(model, tmp_path / "checkpoint_15_steps")
    with pytest.warns(UserWarning, match="mid-episode"):
        resumed = resume_from_bundle(tmp_path, TinyPixelEnv(episode_length=10), device=TEST_DEVICE)
    assert resumed.num_timesteps == 15 and resumed.replay_buffer.pos == 15


def test_wrong_algorithm_class_is_refused(tmp_path):
    from stable_baselines3 import SAC

    from sb3_sacae.callbacks import save_bundle

    model = tiny_model()
    model.learn(5)
    save_bundle(model, tmp_path / "checkpoint_5_steps")
    with pytest.raises(ValueError, match="algorithm_class"):
        resume_from_bundle(tmp_path, TinyPixelEnv(), algorithm_class=SAC, trust_remote_code=True)


def test_a_class_without_the_safe_loader_resumes_only_trusted_bundles(tmp_path):
    from stable_baselines3 import SAC

    from sb3_sacae.callbacks import save_bundle

    model = SAC("MlpPolicy", "Pendulum-v1", learning_starts=4, batch_size=4, buffer_size=100, seed=0)
    model.learn(8)
    save_bundle(model, tmp_path / "checkpoint_8_steps")
    # SB3's SAC.load decodes model.zip with cloudpickle: code from the file would run
    with pytest.raises(UnsafeFileError, match=r"algorithm_class=stable_baselines3.sac.sac.SAC.*trust_remote_code=True"):
        resume_from_bundle(tmp_path, gym.make("Pendulum-v1"), algorithm_class=SAC)
    resumed = resume_from_bundle(tmp_path, gym.make("Pendulum-v1"), algorithm_class=SAC, trust_remote_code=True)
    assert resumed.num_timesteps == 8 and not hasattr(resumed, "trust_remote_code")
