"""Optuna searches and ``--hyperparams`` as a user runs them: ``python -m rl_zoo3.train`` from the installed wheel."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
import yaml

from tests.zoo.installed import run_installed

pytestmark = pytest.mark.slow

SEARCH = ["rl_zoo3.train", "--algo", "sacae", "--env", "PendulumPixels-v1", "-optimize", "-n", "16", "--sampler", "random"]
SEARCH += ["--pruner", "none", "--n-evaluations", "1", "--eval-episodes", "1", "--no-optim-plots", "-f", "logs"]
TINY = ["learning_starts:8", "buffer_size:100"]
CONFIG = {
    "PendulumPixels-v1": {
        "policy": "CnnPolicy",
        "n_timesteps": 16,
        "env_kwargs": {"image_size": 32, "frame_stack": 2},  # the evaluation env of every trial gets them too
        "policy_kwargs": {"n_filters": 4, "n_conv_layers": 2},
        "search_space": {
            "net_arch": [[16], [8, 8]],
            "features_dim": 8,
            "learning_rate": [1e-3, 2e-3],
            "batch_size_pow": [3, 4],
        },
    }
}


def journal(path: Path, name: str) -> optuna.Study:
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path)))
    return optuna.load_study(study_name=name, storage=storage)


def test_search_space_from_the_config_and_fixed_values_from_the_command_line(tmp_path):
    (tmp_path / "search.yml").write_text(yaml.safe_dump(CONFIG))
    command = [*SEARCH, "--conf-file", "search.yml", "--n-trials", "3", "--storage", "s.log", "--study-name", "s"]
    result = run_installed(*command, "--hyperparams", *TINY, "tau:0.02", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-4000:]
    trials = journal(tmp_path / "s.log", "s").trials
    assert [trial.state for trial in trials] == [optuna.trial.TrialState.COMPLETE] * 3
    for trial in trials:
        assert trial.params["net_arch"] in ("16", "8-8") and trial.params["features_dim"] == 8
        assert 1e-3 <= trial.params["learning_rate"] <= 2e-3 and trial.params["batch_size_pow"] in (3, 4)
        assert "tau" not in trial.params and trial.user_attrs["fixed"] == ["tau"]  # --hyperparams tau:0.02 fixes it
    # search_space is the sampler's: a plain training run with this config does not pass it to SACAE, and its
    # evaluations (--eval-freq) run on the config's 32-pixel observations
    train = run_installed("rl_zoo3.train", "--algo", "sacae", "--env", "PendulumPixels-v1", "--conf-file", "search.yml",
                          "-f", "train", "--eval-freq", "8", "--hyperparams", *TINY, cwd=tmp_path)  # fmt: skip
    assert train.returncode == 0, train.stderr[-4000:]


def test_a_configuration_error_stops_the_search_at_the_first_trial(tmp_path):
    (tmp_path / "search.yml").write_text(yaml.safe_dump(CONFIG))
    command = [*SEARCH, "--conf-file", "search.yml", "--n-trials", "5", "--storage", "s.log", "--study-name", "s"]
    result = run_installed(*command, "--hyperparams", *TINY, "not_an_argument:1", cwd=tmp_path)
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("sb3-sacae: the search stopped. Trial 0 failed before any trial of the study completed")
    assert "unexpected keyword argument 'not_an_argument'" in last
    assert "No trials are completed yet" not in result.stderr
    assert len(journal(tmp_path / "s.log", "s").trials) == 1  # not five failed trials


def test_policy_names_need_no_extra_quoting(tmp_path):
    command = ["rl_zoo3.train", "--algo", "sacae", "--env", "Pendulum-v1", "-n", "16", "-f", "logs", "--hyperparams"]
    result = run_installed(*command, *TINY, "policy:MlpPolicy", "policy_kwargs:dict(net_arch=[8])", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-4000:]
    config = next((tmp_path / "logs").rglob("config.yml")).read_text()
    assert "MlpPolicy" in config
    # other algorithms keep rl_zoo3's parser
    other = run_installed("rl_zoo3.train", "--algo", "sac", "--env", "Pendulum-v1", "-n", "16", "-f", "sac",
                          "--hyperparams", "policy:MlpPolicy", cwd=tmp_path)  # fmt: skip
    assert other.returncode != 0 and "NameError: name 'MlpPolicy' is not defined" in other.stderr
