"""Fail closed: when a security patch cannot apply to the installed rl_zoo3, the script refuses ``--algo sacae``.

An rl_zoo3 release whose source differs is simulated by a copy of the installed one with one line changed, first on
PYTHONPATH. The refusal is one line naming the supported versions and the bypass; nothing of the log folder runs.
Through the installed wheel's real ``python -m rl_zoo3.enjoy``: test_zoo_wheel.py.
"""

from __future__ import annotations

import pytest

from tests.zoo.hostile_zoo import ENV_ID, fake_rl_zoo3, log_folder, python_tag, refusal, run_module

# enjoy.py reading args.yml with the same unsafe loader, written differently: the source fix no longer matches
ENJOY_CHANGED = {"enjoy.py": ("yaml.load(f, Loader=yaml.UnsafeLoader)", "yaml.load(f, yaml.UnsafeLoader)")}
# the method that unpickles vecnormalize.pkl renamed: the function patch no longer applies
TRAIN_CHANGED = {"exp_manager.py": ("_maybe_normalize", "_maybe_normalise")}


def enjoy(work, fake, algo: str = "sacae", **env: str):
    return run_module("sb3_sacae.zoo", "enjoy", "--algo", algo, "--env", ENV_ID, "-f", "logs", "-n", "5", "--no-render",
                      cwd=work, pythonpath=[fake], **env)  # fmt: skip


def test_enjoy_refuses_sacae_when_the_args_yml_fix_does_not_apply(tmp_path):
    marker = tmp_path / "pwned"
    log_folder(tmp_path, config="n_timesteps: 10\n", args=f"env_kwargs: {python_tag(marker)}\n")
    line = refusal(enjoy(tmp_path, fake_rl_zoo3(tmp_path, ENJOY_CHANGED)), "ZooNotPatchedError")
    assert "rl_zoo3.enjoy" in line and 'pip install "rl_zoo3>=2.9.2,<2.10"' in line
    assert "SB3_SACAE_ALLOW_UNPATCHED_ZOO=1" in line
    assert not marker.exists()


def test_train_refuses_sacae_when_a_function_patch_does_not_apply(tmp_path):
    fake = fake_rl_zoo3(tmp_path, TRAIN_CHANGED)
    result = run_module("sb3_sacae.zoo", "train", "--algo", "sacae", "--env", ENV_ID, "-n", "8", cwd=tmp_path,
                        pythonpath=[fake])  # fmt: skip
    line = refusal(result, "ZooNotPatchedError")
    assert "no method _maybe_normalize" in line and "rl_zoo3>=2.9.2,<2.10" in line
    assert not (tmp_path / "logs").exists()


@pytest.mark.parametrize("algo", ["sac", "sacae"])
def test_other_algorithms_and_the_bypass_run_unpatched(tmp_path, algo):
    """``--algo sac`` is rl_zoo3's business; the bypass really gives up the protection (the payload runs)."""
    marker = tmp_path / "pwned"
    log_folder(tmp_path, algo=algo, config="n_timesteps: 10\n", args=f"env_kwargs: {python_tag(marker)}\n")
    env = {"SB3_SACAE_ALLOW_UNPATCHED_ZOO": "1"} if algo == "sacae" else {}
    result = enjoy(tmp_path, fake_rl_zoo3(tmp_path, ENJOY_CHANGED), algo, **env)
    assert "ZooNotPatchedError" not in result.stderr
    assert marker.exists()
    if algo == "sacae":
        assert "unpatched (SB3_SACAE_ALLOW_UNPATCHED_ZOO=1)" in result.stderr
