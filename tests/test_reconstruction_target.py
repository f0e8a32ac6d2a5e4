"""The decoder target: 5-bit pixels, dequantised by one bin of uniform noise, in [-0.5, 0.5) (Glow)."""

import torch as th

from sb3_sacae.torch_layers import reconstruction_target


def test_target_lies_in_minus_half_to_half():
    pixels = th.arange(256, dtype=th.uint8).repeat(50)
    target = reconstruction_target(pixels)
    assert target.min() >= -0.5 and target.max() < 0.5


def test_target_stays_inside_the_five_bit_bin_of_its_pixel():
    pixels = th.arange(256, dtype=th.uint8).repeat(50)
    target = reconstruction_target(pixels)
    bin_index = pixels.long() // 8  # 256 values -> 32 bins
    position = (target + 0.5) * 32
    assert th.all(position >= bin_index) and th.all(position < bin_index + 1)


def test_dequantisation_noise_covers_the_bin():
    pixels = th.full((20_000,), 200, dtype=th.uint8)
    position = (reconstruction_target(pixels) + 0.5) * 32 - 200 // 8
    assert position.min() < 0.05 and position.max() > 0.95
    assert abs(position.mean().item() - 0.5) < 0.02


def test_pixels_in_the_same_bin_share_a_target_distribution():
    th.manual_seed(0)
    low = reconstruction_target(th.full((1000,), 64, dtype=th.uint8))
    th.manual_seed(0)
    high = reconstruction_target(th.full((1000,), 71, dtype=th.uint8))
    assert th.equal(low, high)
