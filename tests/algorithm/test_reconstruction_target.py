"""The decoder target: 5-bit pixels, dequantised by one bin of uniform noise, in [-0.5, 0.5) (Glow)."""

import pytest
import torch as th
from torch.nn import functional as F

from sb3_sacae.torch_layers import reconstruction_loss, reconstruction_target, uniform_bytes


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


@pytest.mark.parametrize("dtype", [th.float32, th.bfloat16])
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("sliced", [False, True])
def test_loss_equals_mse_to_the_target(monkeypatch, dtype, channels_last, sliced):
    if sliced:
        # 3 x 6 x 9 x 9 elements per slice: 7 rows in 3 slices, the last one short
        monkeypatch.setattr("sb3_sacae.torch_layers._RESIDUAL_CHUNK", 3 * 6 * 9 * 9)
    pixels = th.randint(0, 256, (7, 6, 9, 9), dtype=th.uint8)
    reconstruction = (th.rand(7, 6, 9, 9) - 0.5).to(dtype)
    if channels_last:
        reconstruction = reconstruction.contiguous(memory_format=th.channels_last)
        pixels = pixels.contiguous(memory_format=th.channels_last)
    ours, reference = reconstruction.clone().requires_grad_(), reconstruction.clone().requires_grad_()
    th.manual_seed(3)
    loss = reconstruction_loss(ours, pixels)
    loss.backward()
    th.manual_seed(3)
    expected = F.mse_loss(reference.float(), reconstruction_target(pixels))
    expected.backward()
    th.testing.assert_close(loss, expected, rtol=1e-6, atol=1e-7)
    assert ours.grad.dtype == dtype and ours.grad.is_contiguous(memory_format=th.channels_last) == channels_last
    th.testing.assert_close(ours.grad.float(), reference.grad.float(), rtol=0, atol=0)


def test_loss_gradient_follows_the_outer_gradient():
    pixels = th.randint(0, 256, (3, 3, 5, 5), dtype=th.uint8)
    reconstruction = th.rand(3, 3, 5, 5) - 0.5
    ours, reference = reconstruction.clone().requires_grad_(), reconstruction.clone().requires_grad_()
    th.manual_seed(1)
    (3.0 * reconstruction_loss(ours, pixels)).backward()
    th.manual_seed(1)
    (3.0 * F.mse_loss(reference, reconstruction_target(pixels))).backward()
    th.testing.assert_close(ours.grad, reference.grad)


def test_loss_backward_twice_accumulates_without_touching_the_saved_gradient():
    pixels = th.randint(0, 256, (2, 3, 5, 5), dtype=th.uint8)
    reconstruction = (th.rand(2, 3, 5, 5) - 0.5).requires_grad_()
    loss = reconstruction_loss(reconstruction, pixels)
    loss.backward(retain_graph=True)
    once = reconstruction.grad.clone()
    loss.backward(retain_graph=True)
    loss.backward()
    th.testing.assert_close(reconstruction.grad, 3 * once)


def test_loss_refuses_mismatched_shapes():
    with pytest.raises(ValueError, match="same shape"):
        reconstruction_loss(th.zeros(2, 3, 4, 4), th.zeros(2, 3, 4, 5, dtype=th.uint8))
    with pytest.raises(ValueError, match="batch first"):
        reconstruction_loss(th.zeros(()), th.zeros((), dtype=th.uint8))


def test_bits_out_of_range_are_refused():
    with pytest.raises(ValueError, match="bits must be in"):
        reconstruction_target(th.zeros(4, dtype=th.uint8), bits=9)
