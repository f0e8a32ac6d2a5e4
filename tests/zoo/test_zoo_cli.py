"""Every zoo script with --algo sacae, run as a user would (subprocess, tiny settings), through the launcher.

The launcher registers explicitly, so these run against the working tree without an install; the real start-up
hook of an installed wheel (``python -m rl_zoo3.train`` with no launcher) is tested in test_zoo_wheel.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ENV_ID = "PendulumPixels-v1"
TINY_ENV = ["--env-kwargs", "image_size:32", "frame_stack:2"]
TINY_MODEL = [
    "--hyperparams",
    "learning_starts:16",
    "batch_size:8",
    "buffer_size:200",
    "policy_kwargs:dict(features_dim=8, net_arch=[16], n_filters=4, n_conv_layers=2)",
]


def zoo(*args: str, cwd: Path, timeout: int = 300, **env: str) -> subprocess.CompletedProcess:
    environ = {key: value for key, value in os.environ.items() if key != "SB3_SACAE_NO_ZOO_HOOK"}
    environ.update(PYTHONPATH=str(ROOT), MPLBACKEND="Agg", OMP_NUM_THREADS="1", **env)
    result = subprocess.run(
        [sys.executable, "-m", "sb3_sacae.zoo", *args], cwd=cwd, env=environ, capture_output=True, text=True, timeout=timeout
    )
    return result


def check(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, f"stdout:\n{result.stdout[-3000:]}\nstderr:\n{result.stderr[-5000:]}"
    return result.stdout


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """logs/ of a 64-step SACAE run on 32x32 Pendulum pixels."""
    workdir = tmp_path_factory.mktemp("zoo")
    out = check(
        zoo(
            "train",
            "--algo",
            "sacae",
            "--env",
            ENV_ID,
            "-n",
            "64",
            "-f",
            "logs",
            "--seed",
            "1",
            *TINY_ENV,
            *TINY_MODEL,
            cwd=workdir,
        )
    )
    assert "sb3_sacae/zoo/hyperparams/sacae.yml" in out  # the packaged file, not rl_zoo3/hyperparams/sacae.yml
    return workdir


def test_train_writes_the_zoo_layout(trained):
    run = trained / "logs" / "sacae" / f"{ENV_ID}_1"
    assert (run / f"{ENV_ID}.zip").is_file()
    assert (run / ENV_ID / "config.yml").is_file() and (run / ENV_ID / "args.yml").is_file()


def saved_config(run: Path, env_id: str) -> dict:
    """The hyperparameters rl_zoo3 saved in ``config.yml`` (a list of key/value pairs)."""
    text = (run / env_id / "config.yml").read_text().removeprefix("!!python/object/apply:collections.OrderedDict\n")
    return dict(yaml.safe_load(text)[0])


def test_partial_env_kwargs_keep_the_config_keys(trained):
    """--env-kwargs image_size:32 frame_stack:2 overrides two keys; the YAML's action_repeat stays."""
    env_kwargs = saved_config(trained / "logs" / "sacae" / f"{ENV_ID}_1", ENV_ID)["env_kwargs"]
    assert env_kwargs == {"image_size": 32, "frame_stack": 2, "action_repeat": 2}
    assert saved_config(trained / "logs" / "sacae" / f"{ENV_ID}_1", ENV_ID)["policy"] == "CnnPolicy"


def test_state_observations_train_with_the_mlp_policy(tmp_path):
    """Pendulum-v1 has vector observations: the policy is chosen from the observation space."""
    check(zoo("train", "--algo", "sacae", "--env", "Pendulum-v1", "-n", "32", "-f", "logs", *TINY_MODEL, cwd=tmp_path))
    assert saved_config(tmp_path / "logs" / "sacae" / "Pendulum-v1_1", "Pendulum-v1")["policy"] == "MlpPolicy"


def test_enjoy_loads_without_allocating_the_replay_buffer(trained, tmp_path):
    shutil.copytree(trained / "logs", tmp_path / "logs")
    model_path = tmp_path / "logs" / "sacae" / f"{ENV_ID}_1" / f"{ENV_ID}.zip"
    # a buffer of 10**10 transitions cannot be allocated: loading it would fail with MemoryError
    with zipfile.ZipFile(model_path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    data = json.loads(members["data"])
    data["buffer_size"] = 10**10
    members["data"] = json.dumps(data).encode()
    with zipfile.ZipFile(model_path, "w") as archive:
        for name, payload in members.items():
            archive.writestr(name, payload)
    out = check(zoo("enjoy", "--algo", "sacae", "--env", ENV_ID, "-f", "logs", "-n", "110", "--no-render", cwd=tmp_path))
    assert "Episode Reward" in out


def test_enjoy_renders_by_default(trained):
    """Without --no-render, rl_zoo3.enjoy asks for render_mode="human": the pixel env shows its frames in a
    window (SDL's dummy driver here, with no display) instead of refusing the mode."""
    environ = {key: value for key, value in os.environ.items() if key not in ("DISPLAY", "WAYLAND_DISPLAY")}
    result = subprocess.run(
        [sys.executable, "-m", "sb3_sacae.zoo", "enjoy", "--algo", "sacae", "--env", ENV_ID, "-f", "logs", "-n", "20"],
        cwd=trained,
        env={**environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    check(result)
    assert "render_mode" not in result.stderr


def test_record_video(trained, tmp_path):
    check(
        zoo(
            "record_video",
            "--algo",
            "sacae",
            "--env",
            ENV_ID,
            "-f",
            str(trained / "logs"),
            "-n",
            "10",
            "-o",
            "videos",
            cwd=tmp_path,
        )
    )
    assert list((tmp_path / "videos").glob("*.mp4"))


def test_plots(trained):
    pytest.importorskip("seaborn", reason="rl_zoo3.plots imports seaborn")
    check(zoo("plots", "-a", "sacae", "-e", ENV_ID, "-f", "logs", cwd=trained))


def test_launcher_lists_scripts_and_rejects_unknown_ones(tmp_path):
    assert "train" in check(zoo("--help", cwd=tmp_path))
    result = zoo("dance", cwd=tmp_path)
    assert result.returncode != 0 and "unknown script 'dance'" in result.stderr


def test_rl_zoo3_push_to_hub_imports_again(tmp_path):
    # rl_zoo3 2.9.2 imports huggingface_sb3's renamed generate_metadata: the hook restores the name
    assert "--organization" in check(zoo("zoo_push_to_hub", "--help", cwd=tmp_path))
