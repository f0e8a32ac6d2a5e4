"""The rl_zoo3 start-up hook and register(): SACAE is a zoo algorithm without flags, and nothing breaks."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ENV_IDS = (
    "PendulumPixels-v1",
    "DMC-cartpole-swingup-v0",
    "DMC-reacher-easy-v0",
    "DMC-cheetah-run-v0",
    "DMC-finger-spin-v0",
    "DMC-ball_in_cup-catch-v0",
    "DMC-walker-walk-v0",
    "CarRacingPixels-v3",
    "HalfCheetahPixels-v5",
)


def run_python(code: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    environ = {key: value for key, value in os.environ.items() if key != "SB3_SACAE_NO_ZOO_HOOK"}
    environ.update(PYTHONPATH=str(ROOT), **env)
    return subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=environ, capture_output=True, text=True, timeout=300, check=False
    )


def site_dir_with_startup_files(tmp_path: Path) -> Path:
    """A site directory holding what the wheel puts at the root of site-packages."""
    site = tmp_path / "site"
    site.mkdir()
    for name in ("sb3_sacae_zoo.pth", "_sb3_sacae_zoo_hook.py"):
        shutil.copy(ROOT / name, site / name)
    return site


def test_source_patches_still_apply_to_installed_rl_zoo3():
    from sb3_sacae.zoo._hook import SOURCE_PATCHES

    for module, patches in SOURCE_PATCHES.items():
        source = importlib.util.find_spec(module).loader.get_source(module)
        for patch in patches:
            assert patch.old in source, f"{module}: upstream changed, the fix '{patch.why}' no longer applies"


def test_register_is_idempotent_and_complete():
    import rl_zoo3.exp_manager
    import rl_zoo3.hyperparams_opt
    from rl_zoo3.utils import ALGOS

    from sb3_sacae import SACAE
    from sb3_sacae.zoo import register
    from sb3_sacae.zoo.sampler import convert_sacae_params

    register()
    init = rl_zoo3.exp_manager.ExperimentManager.__init__
    register()
    assert ALGOS["sacae"] is SACAE
    assert rl_zoo3.hyperparams_opt.HYPERPARAMS_CONVERTER["sacae"] is convert_sacae_params
    assert "sacae" in rl_zoo3.hyperparams_opt.HYPERPARAMS_SAMPLER
    assert rl_zoo3.exp_manager.ExperimentManager.__init__ is init  # not wrapped twice


def test_pth_file_registers_sacae_when_rl_zoo3_is_imported(tmp_path):
    site = site_dir_with_startup_files(tmp_path)
    code = (
        f"import site, sys; site.addsitedir({str(site)!r}); "
        "cheap = 'sb3_sacae' not in sys.modules and 'torch' not in sys.modules; "
        "import rl_zoo3; from rl_zoo3.hyperparams_opt import HYPERPARAMS_SAMPLER; import gymnasium; "
        "print(cheap, 'sacae' in rl_zoo3.ALGOS, 'sacae' in HYPERPARAMS_SAMPLER, 'PendulumPixels-v1' in gymnasium.registry)"
    )
    result = run_python(code, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "True", "True", "True"]


def test_environment_variable_disables_the_hook(tmp_path):
    site = site_dir_with_startup_files(tmp_path)
    code = f"import site; site.addsitedir({str(site)!r}); import rl_zoo3; print('sacae' in rl_zoo3.ALGOS)"
    result = run_python(code, tmp_path, SB3_SACAE_NO_ZOO_HOOK="1")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_broken_sb3_sacae_never_breaks_rl_zoo3(tmp_path):
    site = site_dir_with_startup_files(tmp_path)
    # sb3_sacae.zoo cannot be imported: rl_zoo3 must still import and train other algorithms
    code = (
        f"import site, sys; site.addsitedir({str(site)!r}); sys.modules['sb3_sacae.zoo'] = None; "
        "import rl_zoo3, rl_zoo3.exp_manager; print('sac' in rl_zoo3.ALGOS, 'sacae' in rl_zoo3.ALGOS)"
    )
    result = run_python(code, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "False"]
    assert "sb3-sacae could not register SACAE" in result.stderr


def test_start_file_names_a_stdlib_only_callable():
    entry = (ROOT / "sb3_sacae_zoo.start").read_text().strip()
    module, _, function = entry.partition(":")
    assert (module, function) == ("_sb3_sacae_zoo_hook", "install")
    assert (ROOT / f"{module}.py").is_file()
    pth = (ROOT / "sb3_sacae_zoo.pth").read_text().strip()
    assert pth.startswith("import ") and module in pth


def test_zoo_reads_the_packaged_hyperparameters_and_honours_trial_id_zero():
    import argparse

    from rl_zoo3.exp_manager import ExperimentManager

    from sb3_sacae.zoo import HYPERPARAMS_PATH, register

    register()
    manager = ExperimentManager(argparse.Namespace(), "sacae", "PendulumPixels-v1", "logs-never-written", trial_id=0)
    assert Path(manager.config) == HYPERPARAMS_PATH
    assert manager.trial_id == 0 and bool(manager.trial_id)  # rl_zoo3 tests `if ... and self.trial_id`
    other = ExperimentManager(argparse.Namespace(), "sac", "Pendulum-v1", "logs-never-written")
    assert Path(other.config).parent.parent.name == "rl_zoo3"  # other algorithms untouched


def test_hyperparameter_file_covers_every_pixel_env():
    from sb3_sacae.zoo import HYPERPARAMS_PATH

    repo_level = ROOT / "hyperparams" / "sacae.yml"
    assert repo_level.resolve() == HYPERPARAMS_PATH.resolve()  # one source of truth
    entries = yaml.safe_load(HYPERPARAMS_PATH.read_text())
    for env_id in ("default", *ENV_IDS):
        entry = entries[env_id]
        assert "policy" not in entry  # chosen from the observation space
        assert entry["batch_size"] == 128 and entry["learning_starts"] == 1000
        assert entry["tau"] == 0.01 and entry["encoder_tau"] == 0.05 and entry["ent_coef"] == "auto_0.1"
        assert "features_dim=50" in entry["policy_kwargs"] and "[1024, 1024]" in entry["policy_kwargs"]
        if env_id != "default":
            assert entry["env_kwargs"]["frame_stack"] == 3 and entry["env_kwargs"]["image_size"] == 84
    assert entries["DMC-cartpole-swingup-v0"]["env_kwargs"]["action_repeat"] == 8
    assert entries["DMC-walker-walk-v0"]["env_kwargs"]["action_repeat"] == 2


@pytest.mark.parametrize("module", ["rl_zoo3.enjoy", "rl_zoo3.record_video", "rl_zoo3.load_from_hub"])
def test_patched_zoo_scripts_still_compile(module):
    from sb3_sacae.zoo._hook import patch_source

    source = importlib.util.find_spec(module).loader.get_source(module)
    patched = patch_source(module, source)
    assert patched != source and patched.count("\n") == source.count("\n")
    compile(patched, module, "exec")


def test_pth_line_is_silent_when_the_shim_module_is_missing(tmp_path):
    """A leftover .pth without its shim (half-uninstalled wheel) must not print a traceback at every start."""
    site = tmp_path / "site"
    site.mkdir()
    shutil.copy(ROOT / "sb3_sacae_zoo.pth", site / "sb3_sacae_zoo.pth")
    environ = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "SB3_SACAE_NO_ZOO_HOOK")}
    code = f"import site; site.addsitedir({str(site)!r}); print('started')"
    result = subprocess.run(
        [sys.executable, "-S", "-c", code], cwd=tmp_path, env=environ, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0 and result.stdout.strip() == "started"
    assert result.stderr == ""


def test_a_source_patch_that_no_longer_applies_warns_once_or_fails_closed(monkeypatch):
    """A convenience fix that no longer applies is one warning; a security fix is recorded for check_patched."""
    import warnings

    from sb3_sacae.zoo import _hook

    monkeypatch.setattr(_hook, "UNPATCHED", [])
    monkeypatch.setattr(_hook, "_warned_missing", set())
    with pytest.warns(RuntimeWarning, match=r"could not patch rl_zoo3.enjoy .*not fixed: no full replay buffer"):
        _hook.patch_source("rl_zoo3.enjoy", "print('an rl_zoo3 whose source changed')\n")
    assert _hook.UNPATCHED == ["rl_zoo3.enjoy: args.yml is read with yaml.UnsafeLoader (runs code)"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _hook.patch_source("rl_zoo3.enjoy", "print('an rl_zoo3 whose source changed')\n")  # once per process
    _hook.check_patched("sac")  # other algorithms keep rl_zoo3's behaviour
    with pytest.raises(_hook.ZooNotPatchedError, match=r"rl_zoo3>=2.9.2,<2.10.*SB3_SACAE_ALLOW_UNPATCHED_ZOO=1"):
        _hook.check_patched("sacae")
    monkeypatch.setenv("SB3_SACAE_ALLOW_UNPATCHED_ZOO", "1")
    with pytest.warns(RuntimeWarning, match="unpatched"):
        _hook.check_patched("sacae")


def test_supported_rl_zoo3_range_is_the_one_setup_py_requires():
    from sb3_sacae.zoo._hook import SUPPORTED_ZOO_VERSIONS

    assert f'"rl_zoo3{SUPPORTED_ZOO_VERSIONS}"' in (ROOT / "setup.py").read_text()


@pytest.mark.parametrize(
    ("argv", "algo"),
    [
        (["--algo", "sacae", "--env", "X"], "sacae"),
        (["--env", "X", "--algo=sacae"], "sacae"),
        (["--alg", "sac"], "sac"),
        (["--env", "X"], None),
        (["--algo", "ppo", "--algo", "sacae"], "sacae"),
    ],
)
def test_the_algorithm_is_read_from_the_command_line_as_argparse_does(argv, algo):
    from sb3_sacae.zoo._hook import argv_algo

    assert argv_algo(argv) == algo


def test_entry_not_found_error_comes_from_the_installed_huggingface_hub():
    from huggingface_hub.utils import EntryNotFoundError

    from sb3_sacae.zoo._hook import EntryNotFoundError as patched

    assert patched is EntryNotFoundError


def test_hook_makes_get_saved_hyperparams_safe_before_rl_zoo3_re_exports_it(tmp_path):
    site = site_dir_with_startup_files(tmp_path)
    stats = tmp_path / "logs" / "sacae" / "PendulumPixels-v1_1" / "PendulumPixels-v1"
    stats.mkdir(parents=True)
    marker = tmp_path / "evaluated"
    (stats / "config.yml").write_text(f"normalize: \"__import__('pathlib').Path({str(marker)!r}).touch() or {{}}\"\n")
    code = (
        f"import site; site.addsitedir({str(site)!r}); "
        "import rl_zoo3, rl_zoo3.utils; from rl_zoo3.utils import get_saved_hyperparams as g; "
        "print(rl_zoo3.get_saved_hyperparams is g is rl_zoo3.utils.get_saved_hyperparams, g._sb3_sacae_safe); "
        f"g({str(stats)!r})"
    )
    result = run_python(code, tmp_path)
    assert result.stdout.split() == ["True", "True"], result.stderr
    assert result.returncode != 0 and "UntrustedZooFileError" in result.stderr and "eval()" in result.stderr
    assert not marker.exists()


def test_safe_get_saved_hyperparams_reads_what_rl_zoo3_writes(tmp_path):
    from collections import OrderedDict

    from sb3_sacae.zoo.safety import make_safe_get_saved_hyperparams

    def upstream(*args, **kwargs):
        raise AssertionError("only used when SB3_SACAE_TRUST_ZOO_CONFIG=1")

    safe = make_safe_get_saved_hyperparams(upstream)
    stats = tmp_path / "logs" / "sacae" / "PendulumPixels-v1_1" / "PendulumPixels-v1"
    stats.mkdir(parents=True)
    config = OrderedDict(normalize="dict(norm_obs=True, norm_reward=False)", n_envs=1, frame_stack=2, buffer_size=(100))
    (stats / "config.yml").write_text(yaml.dump(config))  # rl_zoo3's writer: !!python/object/apply:OrderedDict
    hyperparams, path = safe(str(stats), norm_reward=True, test_mode=True)
    assert path == str(stats) and hyperparams["frame_stack"] == 2
    assert hyperparams["normalize_kwargs"] == {"norm_obs": True, "norm_reward": True}
    (stats / "config.yml").write_text("normalize: true\n")
    assert safe(str(stats))[0]["normalize_kwargs"] == {"norm_obs": True, "norm_reward": False}
    assert safe(str(stats.parent / "missing")) == ({}, None)


def test_every_security_patch_applies_to_the_installed_rl_zoo3(tmp_path):
    """Function and source patches alike: nothing is recorded as unpatched, so --algo sacae is not refused."""
    code = (
        "from sb3_sacae.zoo import register, _hook; register(); "
        "import rl_zoo3.enjoy, rl_zoo3.record_video, rl_zoo3.push_to_hub, rl_zoo3.train; "
        "print(_hook.UNPATCHED, rl_zoo3.enjoy._sb3_sacae_patched)"
    )
    result = run_python(code, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["[]", "True"]


def test_a_zoo_script_imported_before_the_hook_fails_closed(tmp_path):
    """An explicit install() after rl_zoo3.enjoy was imported (start-up hook off): its source fix is missing."""
    code = (
        "import os, rl_zoo3.enjoy; from sb3_sacae.zoo import _hook; del os.environ['SB3_SACAE_NO_ZOO_HOOK']; "
        "_hook.install(); print(_hook.UNPATCHED)"
    )
    result = run_python(code, tmp_path, SB3_SACAE_NO_ZOO_HOOK="1")
    assert result.returncode == 0, result.stderr
    assert "rl_zoo3.enjoy: imported before sb3-sacae's hook" in result.stdout
