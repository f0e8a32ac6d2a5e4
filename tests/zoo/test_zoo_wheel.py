"""The installed wheel: the real ``python -m rl_zoo3.<script>`` CLIs with the start-up hook, no launcher, no flag.

One wheel is built and installed into a fresh virtual environment per test process (tests/zoo/installed.py).
Besides training and watching SACAE, the hostile log folders of test_zoo_log_folder_classes.py,
test_zoo_train_vecnormalize.py and test_zoo_fail_closed.py go through rl_zoo3's own scripts here, and
``--algo sac`` keeps rl_zoo3's behaviour.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.zoo.hostile_zoo import (
    ENV_ID,
    bomb_pickle,
    fake_rl_zoo3,
    log_folder,
    plugin_dir,
    python_tag,
    refusal,
    run_module,
)
from tests.zoo.installed import installed_python

TINY = ["--env-kwargs", "image_size:32", "frame_stack:2", "--hyperparams", "learning_starts:8", "buffer_size:100",
        "policy_kwargs:dict(features_dim=8, net_arch=[16], n_filters=4, n_conv_layers=2)"]  # fmt: skip

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def python() -> str:
    """The interpreter of a fresh venv (system site-packages for the dependencies) with the wheel installed."""
    return str(installed_python())


@pytest.fixture(scope="module")
def trained(python, tmp_path_factory) -> Path:
    """A working folder holding ``logs/`` of a 32-step SACAE run by ``python -m rl_zoo3.train``."""
    work = tmp_path_factory.mktemp("work")
    result = run_module("rl_zoo3.train", "--algo", "sacae", "--env", ENV_ID, "-n", "32", "-f", "logs", *TINY,
                        cwd=work, python=python)  # fmt: skip
    assert result.returncode == 0, result.stderr[-5000:]
    assert "site-packages/sb3_sacae/zoo/hyperparams/sacae.yml" in result.stdout
    return work


def test_installed_wheel_makes_rl_zoo3_scripts_know_sacae(python, trained):
    result = run_module("rl_zoo3.enjoy", "--algo", "sacae", "--env", ENV_ID, "-f", "logs", "-n", "110", "--no-render",
                        cwd=trained, python=python)  # fmt: skip
    assert result.returncode == 0, result.stderr[-5000:]
    assert "Episode Reward" in result.stdout


@pytest.mark.parametrize(
    ("script", "config"),
    [
        ("rl_zoo3.enjoy", "env_wrapper: evilmod.Wrapper\n"),
        ("rl_zoo3.enjoy", "callback: evilmod.Callback\n"),
        ("rl_zoo3.record_video", "vec_env_wrapper: evilmod.VecWrapper\n"),
    ],
)
def test_real_scripts_refuse_class_paths_outside_the_allow_list(python, tmp_path, script, config):
    marker = tmp_path / "pwned"
    log_folder(tmp_path, config=config)
    result = run_module(script, "--algo", "sacae", "--env", ENV_ID, "-f", "logs", "-n", "5", "--no-render", cwd=tmp_path,
                        python=python, pythonpath=[plugin_dir(tmp_path)], SB3_SACAE_TEST_MARKER=str(marker))  # fmt: skip
    assert "evilmod." in refusal(result)
    assert not marker.exists()


def test_real_train_never_unpickles_the_stats_beside_the_model_unless_normalizing(python, trained, tmp_path):
    marker = tmp_path / "pwned"
    model = next((trained / "logs" / "sacae").glob(f"{ENV_ID}_*/{ENV_ID}.zip"))
    (tmp_path / "pre" / ENV_ID).mkdir(parents=True)
    (tmp_path / "pre" / "model.zip").write_bytes(model.read_bytes())
    (tmp_path / "pre" / ENV_ID / "vecnormalize.pkl").write_bytes(bomb_pickle(marker))
    args = ["rl_zoo3.train", "--algo", "sacae", "--env", ENV_ID, "-n", "8", "-f", "logs", "-i", "pre/model.zip", *TINY]
    result = run_module(*args, cwd=tmp_path, python=python)
    assert result.returncode == 0, result.stderr[-5000:]
    assert "Ignoring" in result.stderr and not marker.exists()
    assert "SB3_SACAE_TRUST_VECNORMALIZE=1" in refusal(run_module(*args, "normalize:True", cwd=tmp_path, python=python))
    assert not marker.exists()


def test_real_sac_keeps_rl_zoo3_behaviour_with_the_hook_installed(python, tmp_path):
    """rl_zoo3 saves ``activation_fn: !!python/name:...ReLU``; enjoy --algo sac reads it with rl_zoo3's loader."""
    result = run_module("rl_zoo3.train", "--algo", "sac", "--env", "Pendulum-v1", "-n", "64", "-f", "logs",
                        "--hyperparams", "learning_starts:16", "policy_kwargs:dict(net_arch=[64,64],activation_fn=nn.ReLU)",
                        cwd=tmp_path, python=python)  # fmt: skip
    assert result.returncode == 0, result.stderr[-5000:]
    enjoy = ["rl_zoo3.enjoy", "--algo", "sac", "--env", "Pendulum-v1", "-f", "logs", "-n", "210", "--no-render"]
    result = run_module(*enjoy, cwd=tmp_path, python=python)
    assert result.returncode == 0, result.stderr[-5000:]
    assert "Episode Reward" in result.stdout
    assert "config.yml" in refusal(run_module(*enjoy, cwd=tmp_path, python=python, SB3_SACAE_ZOO_ALL_ALGOS="1"))


def test_real_enjoy_fails_closed_on_an_rl_zoo3_it_cannot_patch(python, tmp_path):
    marker = tmp_path / "pwned"
    log_folder(tmp_path, config="n_timesteps: 10\n", args=f"env_kwargs: {python_tag(marker)}\n")
    fake = fake_rl_zoo3(tmp_path, {"enjoy.py": ("yaml.load(f, Loader=yaml.UnsafeLoader)", "yaml.load(f, yaml.UnsafeLoader)")})
    result = run_module("rl_zoo3.enjoy", "--algo", "sacae", "--env", ENV_ID, "-f", "logs", "-n", "5", "--no-render",
                        cwd=tmp_path, python=python, pythonpath=[fake])  # fmt: skip
    line = refusal(result, "ZooNotPatchedError")
    assert "rl_zoo3>=2.9.2,<2.10" in line and "SB3_SACAE_ALLOW_UNPATCHED_ZOO=1" in line
    assert not marker.exists()
