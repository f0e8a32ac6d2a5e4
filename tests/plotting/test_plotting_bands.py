"""Bands over seeds: a percentile bootstrap confidence interval of the mean, or mean +/- std."""

import numpy as np
import pytest

from sb3_sacae.plotting import aggregate, bootstrap_ci


def test_the_bootstrap_interval_matches_the_normal_approximation_for_many_seeds():
    rng = np.random.default_rng(1)
    values = rng.normal(10.0, 2.0, size=(400, 3))
    mean, low, high = aggregate(values, "ci", confidence=0.95, n_bootstrap=2000)
    standard_error = values.std(axis=0, ddof=1) / np.sqrt(len(values))
    np.testing.assert_allclose(mean, values.mean(axis=0))
    np.testing.assert_allclose(high - low, 2 * 1.96 * standard_error, rtol=0.15)
    assert np.all((low < mean) & (mean < high))


def test_a_higher_confidence_gives_a_wider_interval():
    values = np.random.default_rng(2).normal(size=(10, 5))
    low90, high90 = bootstrap_ci(values, 0.90)
    low99, high99 = bootstrap_ci(values, 0.99)
    assert np.all(high99 - low99 > high90 - low90)


def test_identical_seeds_and_a_single_seed_give_a_zero_width_interval():
    _, low, high = aggregate(np.tile([1.0, 2.0], (5, 1)), "ci")
    np.testing.assert_allclose(low, high)
    mean, low, high = aggregate(np.array([[3.0, 4.0]]), "ci")
    np.testing.assert_array_equal(low, mean)
    np.testing.assert_array_equal(high, mean)


def test_the_bootstrap_is_reproducible():
    values = np.random.default_rng(3).normal(size=(6, 4))
    np.testing.assert_array_equal(bootstrap_ci(values, seed=7)[0], bootstrap_ci(values, seed=7)[0])


def test_the_std_band_is_mean_plus_minus_the_population_std():
    values = np.array([[0.0, 10.0], [2.0, 10.0], [4.0, 10.0]])
    mean, low, high = aggregate(values, "std")
    np.testing.assert_allclose(mean, [2.0, 10.0])
    np.testing.assert_allclose(high - mean, [np.sqrt(8 / 3), 0.0])
    np.testing.assert_allclose(mean - low, high - mean)


def test_unknown_band_or_confidence_is_refused():
    with pytest.raises(ValueError, match="band"):
        aggregate(np.zeros((2, 2)), "iqr")
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_ci(np.zeros((2, 2)), confidence=95)
