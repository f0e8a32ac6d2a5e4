"""The hook's effects, the safe config reading included, apply to ``--algo sacae`` only: other algorithms keep
rl_zoo3's behaviour unless ``SB3_SACAE_ZOO_ALL_ALGOS=1``.

A SAC run whose ``policy_kwargs`` hold ``nn.ReLU`` saves a ``config.yml`` with a Python tag: rl_zoo3 reads it with
its unsafe loader, which the safe reader refuses. Through the launcher here (it registers as the hook does); through
the installed wheel's real ``python -m rl_zoo3.train`` / ``rl_zoo3.enjoy``: test_zoo_wheel.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.zoo.hostile_zoo import refusal, run_module

RELU = "policy_kwargs:dict(net_arch=[64,64],activation_fn=nn.ReLU)"


@pytest.fixture(scope="module")
def sac_logs(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("sac")
    result = run_module("sb3_sacae.zoo", "train", "--algo", "sac", "--env", "Pendulum-v1", "-n", "64", "-f", "logs",
                        "--hyperparams", "learning_starts:16", RELU, cwd=work)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "!!python/name:torch.nn.modules.activation.ReLU" in next(work.glob("logs/sac/*/*/config.yml")).read_text()
    return work


def enjoy_sac(work: Path, **env: str):
    return run_module("sb3_sacae.zoo", "enjoy", "--algo", "sac", "--env", "Pendulum-v1", "-f", "logs", "-n", "210",
                      "--no-render", cwd=work, **env)  # fmt: skip


def test_enjoy_sac_reads_its_own_config_as_rl_zoo3_does(sac_logs):
    result = enjoy_sac(sac_logs)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Episode Reward" in result.stdout


def test_all_algorithms_opt_in_reads_every_config_safely(sac_logs):
    line = refusal(enjoy_sac(sac_logs, SB3_SACAE_ZOO_ALL_ALGOS="1"))
    assert "config.yml" in line and "SB3_SACAE_TRUST_ZOO_CONFIG=1" in line
