"""Class paths in a log folder's config.yml / args.yml: one allow-list on every zoo path that reads them for sacae.

rl_zoo3 imports and calls every ``env_wrapper`` / ``vec_env_wrapper`` / ``callback`` class a saved config names. The
hostile folders below name ``evilmod`` (tests/zoo/hostile_zoo.py), whose import creates a marker file: the zoo
scripts run through the launcher (``python -m sb3_sacae.zoo``) must refuse each in one line and leave no marker.
The same through the installed wheel's ``python -m rl_zoo3.enjoy`` / ``record_video``: test_zoo_wheel.py.
"""

from __future__ import annotations

import pytest

from sb3_sacae.zoo.safety import UntrustedZooFileError, check_class_paths, check_config, check_env_kwargs
from tests.zoo.hostile_zoo import ENV_ID, log_folder, plugin_dir, python_tag, refusal, run_code, run_module

ENTRIES = {
    "env_wrapper": "env_wrapper: evilmod.Wrapper\n",
    "vec_env_wrapper": "vec_env_wrapper: evilmod.VecWrapper\n",
    "callback": (
        "callback:\n- stable_baselines3.common.callbacks.CheckpointCallback:\n    save_freq: 1\n- evilmod.Callback\n"
    ),
    "wrapper_with_kwargs": (
        "env_wrapper:\n- gymnasium.wrappers.TimeLimit:\n    max_episode_steps: 5\n- evilmod.Wrapper:\n    x: 1\n"
    ),
    "replay_buffer_class": "replay_buffer_class: evilmod.Wrapper\n",
}


def enjoy(script: str, work, marker, **env: str):
    return run_module("sb3_sacae.zoo", script, "--algo", "sacae", "--env", ENV_ID, "-f", "logs", "-n", "5",
                      "--no-render", cwd=work, pythonpath=[plugin_dir(work)], SB3_SACAE_TEST_MARKER=str(marker),
                      **env)  # fmt: skip


@pytest.mark.parametrize("entry", ENTRIES)
def test_enjoy_refuses_a_class_path_outside_the_allow_list(tmp_path, entry):
    marker = tmp_path / "pwned"
    log_folder(tmp_path, config=ENTRIES[entry])
    line = refusal(enjoy("enjoy", tmp_path, marker))
    assert "evilmod." in line and entry.split("_with")[0] in line and "SB3_SACAE_ZOO_CLASSES" in line
    assert not marker.exists()


def test_record_video_refuses_a_class_path_outside_the_allow_list(tmp_path):
    marker = tmp_path / "pwned"
    log_folder(tmp_path, config=ENTRIES["vec_env_wrapper"])
    assert "evilmod.VecWrapper" in refusal(enjoy("record_video", tmp_path, marker))
    assert not marker.exists()


@pytest.mark.parametrize(
    "args",
    [
        "hyperparams:\n  callback: evilmod.Callback\nenv_kwargs: null\n",
        "env_kwargs: {tag}\n",
    ],
    ids=["class_path", "python_tag"],
)
def test_enjoy_refuses_args_yml_that_would_run_code(tmp_path, args):
    marker = tmp_path / "pwned"
    log_folder(tmp_path, config="n_timesteps: 10\n", args=args.format(tag=python_tag(marker)))
    line = refusal(enjoy("enjoy", tmp_path, marker))
    assert "args.yml" in line and "SB3_SACAE_TRUST_ZOO_CONFIG" in line
    assert not marker.exists()


@pytest.mark.parametrize(
    "opt_in",
    [
        {"SB3_SACAE_ZOO_CLASSES": "evilmod.Wrapper"},
        {"SB3_SACAE_ZOO_CLASSES": "os.,evilmod."},
        {"SB3_SACAE_TRUST_ZOO_CONFIG": "1"},
    ],
    ids=["class", "module_prefix", "trusted_folder"],
)
def test_the_documented_opt_ins_let_the_class_run(tmp_path, opt_in):
    """The marker does appear once the user opts in: the refusals above are what stopped a live payload."""
    marker = tmp_path / "pwned"
    log_folder(tmp_path, config=ENTRIES["env_wrapper"])
    result = enjoy("enjoy", tmp_path, marker, **opt_in)
    assert "Refusing `env_wrapper" not in result.stderr
    assert marker.exists()


@pytest.mark.parametrize("entry", ENTRIES)
def test_check_class_paths_names_the_entry_and_the_opt_in(entry):
    import yaml

    config = yaml.safe_load(ENTRIES[entry])
    with pytest.raises(UntrustedZooFileError, match=r"Refusing `\w+: evilmod\.\w+` in config.yml.*trust_remote_code"):
        check_config(config)
    check_class_paths(config, "config.yml", trust_remote_code=True)


def test_known_classes_names_and_class_objects_pass(monkeypatch):
    import gymnasium

    check_class_paths(
        {
            "env_wrapper": [{"gymnasium.wrappers.TimeLimit": {"max_episode_steps": 5}}, gymnasium.Wrapper],
            "callback": "rl_zoo3.callbacks.RawStatisticsCallback",
            "policy": "CnnPolicy",  # a name SB3 resolves, not a class path
            "replay_buffer_class": "HerReplayBuffer",
        },
        "config.yml",
    )
    with pytest.raises(UntrustedZooFileError, match="not a class path"):
        check_class_paths({"env_wrapper": "os.system; touch x"}, "config.yml")
    with pytest.raises(UntrustedZooFileError, match=r"policy: evilmod\.Policy"):
        check_class_paths({"policy": "evilmod.Policy"}, "config.yml")
    monkeypatch.setenv("SB3_SACAE_ZOO_CLASSES", "evilmod.Policy")
    check_class_paths({"policy": "evilmod.Policy"}, "config.yml")


def test_get_trained_models_reads_sacae_args_safely(tmp_path):
    """``rl_zoo3.benchmark`` lists a log folder with ``get_trained_models``, which reads every args.yml unsafely."""
    import rl_zoo3.utils

    from sb3_sacae.zoo import register

    register()
    marker = tmp_path / "pwned"
    log_folder(tmp_path, algo="sac", env_id="Pendulum-v1", args="env: Pendulum-v1\nenv_kwargs: null\n")
    assert rl_zoo3.utils.get_trained_models(str(tmp_path / "logs")) == {"sac-Pendulum-v1": ("sac", "Pendulum-v1")}
    log_folder(tmp_path, args=f"env: {python_tag(marker)}\n")
    with pytest.raises(UntrustedZooFileError, match="SB3_SACAE_TRUST_ZOO_CONFIG"):
        rl_zoo3.utils.get_trained_models(str(tmp_path / "logs"))
    assert not marker.exists()


def test_the_rl_zoo3_console_script_refuses_too(tmp_path):
    """``rl_zoo3 enjoy --algo sacae`` (rl_zoo3.cli imports the script module instead of running it with runpy)."""
    marker = tmp_path / "pwned"
    log_folder(tmp_path, config=ENTRIES["env_wrapper"])
    argv = ["rl_zoo3", "enjoy", "--algo", "sacae", "--env", ENV_ID, "-f", "logs", "-n", "5", "--no-render"]
    code = f"import sys; sys.argv = {argv!r}; from rl_zoo3.cli import main; main()"
    result = run_code(code, tmp_path, pythonpath=[plugin_dir(tmp_path)], SB3_SACAE_TEST_MARKER=str(marker))
    assert "evilmod.Wrapper" in refusal(result)
    assert not marker.exists()


MUJOCO_ID = "HalfCheetahPixels-v5"


@pytest.mark.parametrize(
    "file, text",
    [
        ("args.yml", "env: HalfCheetahPixels-v5\nenv_kwargs:\n  env_id: evilmod:Evil-v0\n"),
        ("config.yml", "env_kwargs:\n  xml_file: evilmod:Evil-v0\n"),
    ],
    ids=["args_env_id", "config_module_id"],
)
def test_enjoy_refuses_env_kwargs_naming_a_module(tmp_path, file, text):
    """gymnasium.make imports ``module`` for an id ``"module:Name-v0"``: sb3-sacae's MuJoCo ids passed an
    ``env_id`` keyword on to it, so a log folder's env_kwargs chose the module imported."""
    marker = tmp_path / "pwned"
    files = {"config": "n_timesteps: 10\n", "args": "env_kwargs: null\n", file.split(".")[0]: text}
    log_folder(tmp_path, env_id=MUJOCO_ID, **files)
    result = run_module("sb3_sacae.zoo", "enjoy", "--algo", "sacae", "--env", MUJOCO_ID, "-f", "logs", "-n", "5",
                        "--no-render", cwd=tmp_path, pythonpath=[plugin_dir(tmp_path)],
                        SB3_SACAE_TEST_MARKER=str(marker))  # fmt: skip
    line = refusal(result)
    assert "evilmod:Evil-v0" in line and file in line and "SB3_SACAE_TRUST_ZOO_CONFIG=1" in line
    assert not marker.exists()


def test_check_env_kwargs_refuses_module_ids_task_keywords_and_odd_keys():
    genuine = {"image_size": 64, "default_camera_config": {"distance": 0.8}, "render_mode": "rgb_array"}
    assert check_env_kwargs(genuine, "args.yml", "ReacherPixels-v5") == genuine
    assert check_env_kwargs(None, "args.yml") is None
    with pytest.raises(UntrustedZooFileError, match=r"'pkg.mod:Env-v0' in args.yml.*SB3_SACAE_TRUST_ZOO_CONFIG=1"):
        check_env_kwargs({"options": [{"inner": "pkg.mod:Env-v0"}]}, "args.yml")
    assert check_env_kwargs({"id": "pkg:Env-v0"}, "args.yml", trust_remote_code=True) == {"id": "pkg:Env-v0"}
    for env_id, key in [("HalfCheetahPixels-v5", "env_id"), ("DMC-cheetah-run-v0", "domain")]:
        with pytest.raises(UntrustedZooFileError, match=f"Refusing `{key}`.*{env_id} fixes its task.*Remove the entry"):
            check_env_kwargs({key: "Walker2d-v5"}, "args.yml", env_id)
    with pytest.raises(UntrustedZooFileError, match="keyword names"):
        check_env_kwargs({"__class__": 1}, "args.yml")
    with pytest.raises(UntrustedZooFileError, match="must hold a mapping"):
        check_env_kwargs("pkg:Env-v0", "args.yml")
