"""The reconstruction image: last frame of each stack on top, its reconstruction below, as uint8 RGB pixels."""

import numpy as np
import pytest
import torch as th

from sb3_sacae.diagnostics import infer_channels_per_frame, last_frame_rgb, reconstruction_grid, reconstruction_to_pixels
from sb3_sacae.reconstruction import reconstruction_target


def test_reconstruction_units_map_back_to_the_pixel_range():
    pixels = reconstruction_to_pixels(np.array([-0.5, 0.0, 0.5 - 2**-25, -3.0, 3.0]))
    assert pixels.dtype == np.uint8
    np.testing.assert_array_equal(pixels, [0, 128, 255, 0, 255])


def test_a_perfect_reconstruction_shows_the_input_up_to_the_dropped_bits():
    observations = th.arange(256, dtype=th.uint8).reshape(1, 1, 16, 16)
    shown = reconstruction_to_pixels(reconstruction_target(observations).numpy()).astype(int)
    # 5-bit target: the 3 low bits are replaced by the dequantisation noise
    assert np.all(np.abs(shown - observations.numpy()) < 8)


def test_channels_per_frame_come_from_the_frame_stack_else_from_the_channel_count():
    assert infer_channels_per_frame(9, frame_stack=3) == 3
    assert infer_channels_per_frame(4, frame_stack=4) == 1
    assert infer_channels_per_frame(3, frame_stack=3) == 1  # three stacked grayscale frames
    assert infer_channels_per_frame(9) == 3
    assert infer_channels_per_frame(3) == 3
    assert infer_channels_per_frame(4) == 1
    assert infer_channels_per_frame(1) == 1


def test_the_last_rgb_frame_of_a_stack_is_shown():
    stack = np.zeros((2, 9, 5, 6), dtype=np.uint8)
    stack[:, 6:] = np.arange(3, dtype=np.uint8)[None, :, None, None] + 10  # last frame: R=10, G=11, B=12
    frame = last_frame_rgb(stack, channels_per_frame=3)
    assert frame.shape == (2, 5, 6, 3)
    np.testing.assert_array_equal(frame[0, 0, 0], [10, 11, 12])


def test_a_grayscale_frame_is_repeated_into_rgb():
    stack = np.zeros((1, 4, 5, 5), dtype=np.uint8)
    stack[:, 3] = 200
    frame = last_frame_rgb(stack, channels_per_frame=1)
    assert frame.shape == (1, 5, 5, 3)
    assert np.all(frame == 200)


def test_channels_per_frame_must_divide_the_channels():
    with pytest.raises(ValueError, match="channels_per_frame"):
        last_frame_rgb(np.zeros((1, 9, 5, 5), dtype=np.uint8), channels_per_frame=4)


@pytest.mark.parametrize("n_images, padding", [(1, 0), (4, 2)])
def test_grid_puts_inputs_above_reconstructions(n_images, padding):
    height, width = 7, 5
    observations = np.full((n_images, 9, height, width), 40, dtype=np.uint8)
    reconstructions = np.full((n_images, 9, height, width), 0.25, dtype=np.float32)  # -> pixel 192
    grid = reconstruction_grid(observations, reconstructions, channels_per_frame=3, padding=padding)
    assert grid.dtype == np.uint8
    assert grid.shape == (2 * height + padding, n_images * width + (n_images - 1) * padding, 3)
    for index in range(n_images):
        left = index * (width + padding)
        assert np.all(grid[:height, left : left + width] == 40)
        assert np.all(grid[height + padding :, left : left + width] == 192)
    assert np.all(grid[height : height + padding] == 255)  # white separator


def test_grid_refuses_mismatched_shapes():
    with pytest.raises(ValueError, match="same shape"):
        reconstruction_grid(np.zeros((2, 3, 8, 8)), np.zeros((2, 3, 8, 9)))
