"""Aligning seeds on one x grid: shared x values kept as they are, otherwise interpolated over the common range."""

import numpy as np
import pytest

from sb3_sacae.plotting import Curve, align, smooth


def test_curves_with_the_same_steps_are_not_interpolated():
    x = np.array([100.0, 200.0, 300.0])
    grid, values = align([Curve(x, np.array([1.0, 2.0, 3.0])), Curve(x, np.array([3.0, 4.0, 5.0]))])
    np.testing.assert_array_equal(grid, x)
    np.testing.assert_array_equal(values, [[1, 2, 3], [3, 4, 5]])


def test_different_steps_are_interpolated_over_the_range_every_curve_covers():
    line = Curve(np.array([0.0, 100.0]), np.array([0.0, 100.0]))  # y = x
    late = Curve(np.array([20.0, 50.0, 80.0]), np.array([1.0, 1.0, 1.0]))
    grid, values = align([line, late], n_points=7)
    np.testing.assert_allclose(grid, np.linspace(20, 80, 7))  # never extrapolated beyond either curve
    np.testing.assert_allclose(values[0], grid)
    np.testing.assert_allclose(values[1], 1.0)


def test_curves_that_do_not_overlap_are_refused():
    with pytest.raises(ValueError, match="do not overlap"):
        align([Curve(np.array([0.0, 10.0]), np.zeros(2)), Curve(np.array([20.0, 30.0]), np.zeros(2))])


def test_decreasing_steps_are_refused():
    with pytest.raises(ValueError, match="non-decreasing"):
        align([Curve(np.array([10.0, 0.0]), np.zeros(2))])


def test_a_trailing_window_keeps_the_length_and_averages_what_came_before():
    np.testing.assert_allclose(smooth(np.array([0.0, 2.0, 4.0, 6.0]), 3), [0.0, 1.0, 2.0, 4.0])
    np.testing.assert_array_equal(smooth(np.array([5.0, -1.0]), 1), [5.0, -1.0])
    with pytest.raises(ValueError, match="at least 1"):
        smooth(np.zeros(3), 0)
