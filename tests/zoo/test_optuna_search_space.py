"""The user's own search space: bounds, choices and fixed values from the config or the command line, and a
configuration error that stops the search at its first trial."""

from __future__ import annotations

import math

import optuna
import pytest

from sb3_sacae.zoo.sampler import (
    NET_ARCHS,
    SEARCH_SPACE,
    SearchConfigurationError,
    SearchSpaceError,
    convert_sacae_params,
    record_failed_trial,
    sample_sacae_params,
)


def samples(n: int = 20, **additional_args):
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(n):
        trial = study.ask()
        yield trial, sample_sacae_params(trial, 1, 1, additional_args)


def test_bounds_narrow_the_search_on_the_parameters_own_scale():
    space = {"learning_rate": [1e-3, 2e-3], "batch_size_pow": {"low": 6, "high": 7}, "train_freq": [2, 2]}
    for trial, hyperparams in samples(search_space=space):
        assert 1e-3 <= hyperparams["learning_rate"] <= 2e-3
        assert hyperparams["batch_size"] in (64, 128)
        assert hyperparams["train_freq"] == hyperparams["gradient_steps"] == 2
        assert trial.distributions["learning_rate"].log  # same scale as the default: one study can mix both


def test_fixed_values_override_the_sampler():
    space = {"net_arch": [64, 64], "features_dim": 16, "encoder_tau": 0.05, "one_minus_gamma": 0.01}
    for trial, hyperparams in samples(5, search_space=space):
        assert hyperparams["policy_kwargs"]["net_arch"] == [64, 64]
        assert hyperparams["policy_kwargs"]["features_dim"] == 16
        assert hyperparams["encoder_tau"] == 0.05 and hyperparams["gamma"] == pytest.approx(0.99)
        # recorded in the trial, so --trial-id replays them
        assert convert_sacae_params(trial.params)["policy_kwargs"]["net_arch"] == [64, 64]


def test_net_arch_choices_mix_names_and_layer_sizes():
    space = {"net_arch": ["small", [32], [64, 64]]}
    seen = {tuple(hyperparams["policy_kwargs"]["net_arch"]) for _, hyperparams in samples(30, search_space=space)}
    assert seen == {tuple(NET_ARCHS["small"]), (32,), (64, 64)}


def test_command_line_values_fix_what_they_name():
    """``--hyperparams batch_size:48 policy_kwargs:"dict(net_arch=[8])"``: not searched, used as given."""
    fixed = {"batch_size": 48, "learning_starts": 10, "policy_kwargs": {"net_arch": [8], "n_filters": 4}}
    for trial, hyperparams in samples(5, fixed=fixed):
        assert hyperparams["batch_size"] == 48 and "batch_size_pow" not in trial.params
        assert hyperparams["policy_kwargs"]["net_arch"] == [8] and "net_arch" not in trial.params
        assert "features_dim" in trial.params  # what the command line does not name is still searched
        assert "learning_starts" not in hyperparams  # not a searched argument: left to rl_zoo3


def test_without_a_search_space_the_default_one_is_searched():
    for trial, _ in samples(5):
        assert set(trial.params) == set(SEARCH_SPACE)
        assert trial.params["net_arch"] in NET_ARCHS


@pytest.mark.parametrize(
    ("space", "message"),
    [
        ({"learning_rte": [1e-4, 1e-3]}, "does not draw"),
        ({"learning_rate": [0, 1e-3]}, "log scale"),
        ({"batch_size_pow": [8, 5]}, "above high"),
        ({"features_dim": "big"}, "list of numbers"),
        ({"net_arch": [[64], "huge"]}, "layer sizes"),
        ({"tau": "fast"}, r"\[low, high\]"),
    ],
)
def test_a_search_space_the_sampler_cannot_use_is_refused_with_the_fix(space, message):
    with pytest.raises(SearchSpaceError, match=message):
        next(samples(1, search_space=space))


def test_a_configuration_error_before_any_completed_trial_stops_the_search():
    study = optuna.create_study()
    trial = study.ask()
    with pytest.raises(SearchConfigurationError, match="every trial would: TypeError: unexpected keyword") as raised:
        record_failed_trial(trial, TypeError("unexpected keyword argument 'not_an_argument'"))
    assert isinstance(raised.value.__cause__, TypeError)
    assert "not_an_argument" in trial.user_attrs["fail_reason"]


@pytest.mark.parametrize(
    "error", [MemoryError("buffer"), FloatingPointError("non-finite critic loss"), RuntimeError("CUDA out of memory")]
)
def test_errors_that_depend_on_the_sample_let_the_search_go_on(error):
    trial = optuna.create_study().ask()
    assert math.isnan(record_failed_trial(trial, error))


def test_after_a_completed_trial_a_failing_trial_is_the_samples_fault():
    study = optuna.create_study()
    study.tell(study.ask(), 1.0)
    assert math.isnan(record_failed_trial(study.ask(), ValueError("batch larger than the buffer")))
