"""SACAE's Optuna search space, its inverse conversion (--trial-id) and failed trials that do not stop a study."""

from __future__ import annotations

import math
import sys

import optuna
import pytest

from sb3_sacae.zoo.sampler import convert_sacae_params, parse_policy_kwargs, sample_sacae_params

SACAE_KNOBS = {
    "encoder_lr",
    "decoder_lr",
    "encoder_tau",
    "decoder_latent_lambda",
    "decoder_weight_lambda",
    "actor_update_interval",
    "target_update_interval",
    "decoder_update_interval",
}


def sample(seed: int = 0, **additional_args):
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    trial = study.ask()
    return trial, sample_sacae_params(trial, 1, 1, {"using_her_replay_buffer": False, "her_kwargs": {}, **additional_args})


def test_sampler_searches_sac_and_sac_ae_knobs():
    trial, hyperparams = sample()
    assert SACAE_KNOBS <= set(hyperparams)
    assert {"gamma", "learning_rate", "batch_size", "tau", "train_freq", "gradient_steps", "ent_coef"} <= set(hyperparams)
    assert hyperparams["ent_coef"].startswith("auto_")
    assert {"features_dim", "net_arch"} <= set(hyperparams["policy_kwargs"])
    assert trial.user_attrs["batch_size"] == hyperparams["batch_size"]


def test_sampled_policy_kwargs_merge_into_the_configs():
    _, hyperparams = sample(policy_kwargs={"n_filters": 4, "features_dim": 999})
    assert hyperparams["policy_kwargs"]["n_filters"] == 4
    assert hyperparams["policy_kwargs"]["features_dim"] != 999  # the sample wins over the config


@pytest.mark.parametrize("seed", range(5))
def test_trial_params_convert_back_to_the_sampled_hyperparameters(seed):
    trial, hyperparams = sample(seed)
    assert convert_sacae_params(trial.params) == hyperparams


def test_sampled_hyperparameters_build_a_sacae():
    import gymnasium as gym
    import numpy as np

    from sb3_sacae import SACAE

    class TinyPixels(gym.Env):
        observation_space = gym.spaces.Box(0, 255, (3, 16, 16), np.uint8)
        action_space = gym.spaces.Box(-1, 1, (1,), np.float32)

        def reset(self, *, seed=None, options=None):
            return self.observation_space.sample(), {}

        def step(self, action):
            return self.observation_space.sample(), 0.0, False, False, {}

    _, hyperparams = sample(3, policy_kwargs={"n_filters": 4, "n_conv_layers": 2})
    model = SACAE("CnnPolicy", TinyPixels(), buffer_size=10, **hyperparams)
    assert model.encoder_tau == hyperparams["encoder_tau"]


def test_parse_policy_kwargs_accepts_literals_only():
    assert parse_policy_kwargs("dict(features_dim=50, net_arch=[1024, 1024])") == {
        "features_dim": 50,
        "net_arch": [1024, 1024],
    }
    with pytest.raises(ValueError):
        parse_policy_kwargs("dict(activation_fn=__import__('os').system('true'))")


def _constructor_out_of_memory(self, *args, **kwargs):
    raise MemoryError("replay buffer of 200.0 GiB does not fit in memory")


def _learn_out_of_memory(self, *args, **kwargs):
    raise RuntimeError("CUDA out of memory. Tried to allocate 20.00 GiB")


def _learn_diverges(self, *args, **kwargs):
    raise FloatingPointError("non-finite critic loss at step 12")


@pytest.mark.parametrize(
    "method, crash, reason",
    [
        ("learn", _learn_out_of_memory, "RuntimeError: CUDA out of memory"),  # torch.OutOfMemoryError is one
        ("learn", _learn_diverges, "FloatingPointError: non-finite critic loss"),  # SACAE's NaN guard
        ("__init__", _constructor_out_of_memory, "MemoryError: replay buffer"),  # the buffer size guard
    ],
)
def test_crashed_trial_fails_with_its_reason_its_envs_closed_and_the_study_goes_on(
    tmp_path, monkeypatch, method, crash, reason
):
    """A trial that raises is FAIL with the reason, the envs rl_zoo3 made for it are closed, the next trials run."""
    from rl_zoo3.train import train
    from stable_baselines3.common.vec_env import DummyVecEnv

    from sb3_sacae import SACAE
    from sb3_sacae.zoo import register

    register()
    monkeypatch.setattr(SACAE, method, crash)
    opened, closed = [], []
    original_init, original_close = DummyVecEnv.__init__, DummyVecEnv.close

    def init(self, *args, **kwargs):
        opened.append(self)
        original_init(self, *args, **kwargs)

    def close(self):
        closed.append(self)
        original_close(self)

    monkeypatch.setattr(DummyVecEnv, "__init__", init)
    monkeypatch.setattr(DummyVecEnv, "close", close)
    monkeypatch.chdir(tmp_path)
    storage = tmp_path / "study.log"
    argv = ["train", "--algo", "sacae", "--env", "PendulumPixels-v1", "-n", "20", "-optimize", "--n-trials", "3"]
    argv += ["--sampler", "random", "--pruner", "none", "--storage", str(storage), "--study-name", "crash", "--no-optim-plots"]
    argv += ["--n-evaluations", "1", "--eval-episodes", "1", "-f", "logs", "--env-kwargs", "image_size:32", "frame_stack:2"]
    argv += ["--hyperparams", "buffer_size:50", "policy_kwargs:dict(n_filters=4, n_conv_layers=2)"]
    monkeypatch.setattr(sys, "argv", argv)
    # rl_zoo3 then asks for the best trial ("No trials are completed yet"): one line says why instead
    with pytest.raises(SystemExit, match=f"no trial completed, so there is no best trial: {reason}.* \\(x3\\)"):
        train()
    study = optuna.load_study(
        study_name="crash", storage=optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(storage)))
    )
    assert [trial.state for trial in study.trials] == [optuna.trial.TrialState.FAIL] * 3
    assert all(reason in trial.user_attrs["fail_reason"] for trial in study.trials)
    assert all(trial.value is None or math.isnan(trial.value) for trial in study.trials)
    trial_envs = opened[1:]  # the first one is rl_zoo3's env for reading the spaces, closed before the search
    assert trial_envs and all(env in closed for env in trial_envs)


def test_trial_id_replays_the_trials_networks_over_the_command_lines_policy_kwargs(tmp_path):
    """``--hyperparams policy_kwargs:...`` with ``--trial-id``: the trial's sampled network sizes are kept."""
    import argparse

    import optuna
    from rl_zoo3.exp_manager import ExperimentManager

    from sb3_sacae.zoo import register
    from sb3_sacae.zoo.sampler import sample_sacae_params

    register()
    command_line = {"policy_kwargs": {"n_filters": 8, "n_conv_layers": 2}}
    storage = str(tmp_path / "study.log")
    journal = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(storage))
    study = optuna.create_study(storage=journal, study_name="search", sampler=optuna.samplers.RandomSampler(seed=0))
    trial = study.ask()
    # as the search draws it: the trial's network sizes over the policy_kwargs it was given
    searched = sample_sacae_params(trial, 1, 1, {"policy_kwargs": command_line["policy_kwargs"]})["policy_kwargs"]
    study.tell(trial, 1.0)
    assert searched["n_filters"] == 8 and "features_dim" in searched and "net_arch" in searched

    manager = ExperimentManager(
        argparse.Namespace(),
        "sacae",
        "PendulumPixels-v1",
        str(tmp_path / "logs"),
        hyperparams={key: dict(value) for key, value in command_line.items()},
        storage=storage,
        study_name="search",
        trial_id=0,
    )
    hyperparams, _ = manager.read_hyperparameters()
    assert hyperparams["policy_kwargs"] == searched  # what the trial trained, not the command line's alone


def _shared_study(tmp_path, params: dict) -> str:
    """A journal storage someone shares ("replay the best trial with --trial-id 0") holding one trial of ``params``."""
    from optuna.distributions import CategoricalDistribution

    storage = str(tmp_path / "study.log")
    journal = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(storage))
    study = optuna.create_study(storage=journal, study_name="shared", direction="maximize")
    distributions = {name: CategoricalDistribution([value]) for name, value in params.items()}
    study.add_trial(optuna.trial.create_trial(params=params, distributions=distributions, value=1.0))
    return storage


@pytest.mark.parametrize("name", ["replay_buffer_kwargs", "policy_kwargs", "policy", "env_wrapper"])
def test_trial_id_refuses_a_stored_parameter_the_sampler_does_not_draw(tmp_path, name):
    """rl_zoo3 eval()s string policy_kwargs / replay_buffer_kwargs and imports class paths a trial hands it."""
    import argparse

    from rl_zoo3.exp_manager import ExperimentManager

    from sb3_sacae.io import UnsafeFileError
    from sb3_sacae.zoo import register

    register()
    marker = tmp_path / "pwned"
    payload = f"__import__('pathlib').Path({str(marker)!r}).touch() or {{}}"
    storage = _shared_study(tmp_path, {"learning_rate": 1e-3, name: payload})
    manager = ExperimentManager(argparse.Namespace(), "sacae", "PendulumPixels-v1", str(tmp_path / "logs"),
                                storage=storage, study_name="shared", trial_id=0)  # fmt: skip
    with pytest.raises(UnsafeFileError, match=f"Refusing parameter '{name}' of the Optuna trial.*--hyperparams"):
        manager.read_hyperparameters()
    assert not marker.exists()


@pytest.mark.parametrize(
    "params",
    [
        {"net_arch": "__import__('os')"},
        {"features_dim": "50"},
        {"batch_size_pow": 10**9},
        {"learning_rate": float("nan")},
        {"tau": -0.1},
        {"train_freq": True},
    ],
    ids=["net_arch_code", "string_number", "huge_power", "nan", "negative_log", "bool"],
)
def test_stored_values_must_be_what_the_distribution_gives(params):
    from sb3_sacae.io import UnsafeFileError

    with pytest.raises(UnsafeFileError, match=f"Refusing parameter {next(iter(params))}=.*not a value"):
        convert_sacae_params(params)


def test_a_genuine_study_still_replays_with_layer_sizes_and_fixed_values():
    params = {"net_arch": "64-64", "features_dim": 50, "batch_size_pow": 7, "train_freq": 2, "one_minus_gamma": 0.01}
    converted = convert_sacae_params(params)
    assert converted["policy_kwargs"] == {"net_arch": [64, 64], "features_dim": 50}
    assert converted["batch_size"] == 128 and converted["gradient_steps"] == 2 and converted["gamma"] == 0.99
