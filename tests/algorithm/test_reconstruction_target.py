"""The decoder target: 5-bit pixels, dequantised by one bin of uniform noise, in [-0.5, 0.5) (Glow)."""

import pytest
import torch as th

from sb3_sacae.reconstruction import reconstruction_target, uniform_bytes


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


def test_noise_bytes_are_uniform_and_follow_torch_seed():
    th.manual_seed(1)
    first = uniform_bytes((64, 9, 16, 16))
    th.manual_seed(1)
    assert th.equal(first, uniform_bytes((64, 9, 16, 16)))
    counts = th.bincount(first.flatten().long(), minlength=256).float()
    expected = first.numel() / 256
    assert first.dtype == th.uint8 and counts.min() > 0.8 * expected and counts.max() < 1.2 * expected


def test_target_is_on_a_fine_grid_inside_the_bin():
    target = reconstruction_target(th.arange(256, dtype=th.uint8).repeat(100))
    code = (target + 0.5) * 2**13 - 0.5  # 5 bits of pixel and 8 bits of noise
    assert th.equal(code, code.round()) and code.min() >= 0 and code.max() <= 2**13 - 1
    assert target.min() > -0.5 and target.max() < 0.5


def test_layout_does_not_change_the_target():
    pixels = th.randint(0, 256, (2, 3, 5, 7), dtype=th.uint8)
    th.manual_seed(0)
    plain = reconstruction_target(pixels)
    th.manual_seed(0)
    channels_last = reconstruction_target(pixels, memory_format=th.channels_last)
    assert channels_last.is_contiguous(memory_format=th.channels_last) and th.equal(plain, channels_last)


def test_bits_out_of_range_are_refused():
    with pytest.raises(ValueError, match="bits must be in"):
        reconstruction_target(th.zeros(4, dtype=th.uint8), bits=9)
