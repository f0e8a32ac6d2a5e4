"""The sliced reconstruction loss: the plain MSE to the 5-bit target, same noise, value and gradient; CPU only."""

import pytest
import torch as th
from torch.nn import functional as F

from sb3_sacae.accel import reconstruction as accel_reconstruction
from sb3_sacae.accel.reconstruction import reconstruction_loss, sliced_loss_applies
from sb3_sacae.reconstruction import reconstruction_target


@pytest.mark.parametrize("dtype", [th.float32, th.bfloat16])
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("sliced", [False, True])
def test_loss_equals_mse_to_the_target(monkeypatch, dtype, channels_last, sliced):
    if sliced:
        # 3 x 6 x 9 x 9 elements per slice: 7 rows in 3 slices, the last one short
        monkeypatch.setattr("sb3_sacae.accel.reconstruction._RESIDUAL_CHUNK", 3 * 6 * 9 * 9)
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


def test_fast_false_takes_the_plain_loss_with_the_same_value(monkeypatch):
    pixels = th.randint(0, 256, (3, 3, 5, 5), dtype=th.uint8)
    reconstruction = th.rand(3, 3, 5, 5) - 0.5
    th.manual_seed(2)
    sliced = reconstruction_loss(reconstruction, pixels)
    monkeypatch.setattr(accel_reconstruction, "sliced_reconstruction_loss", lambda *args: pytest.fail("sliced loss ran"))
    th.manual_seed(2)
    plain = reconstruction_loss(reconstruction, pixels, fast=False)
    th.testing.assert_close(sliced, plain, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("device", [th.device("cuda"), th.device("meta"), "cuda:0"])
def test_the_seam_selects_the_plain_loss_for_other_devices(device):
    assert sliced_loss_applies(device) is False and sliced_loss_applies("cpu") is True


def test_on_the_meta_device_the_plain_loss_runs(monkeypatch):
    monkeypatch.setattr(accel_reconstruction, "sliced_reconstruction_loss", lambda *args: pytest.fail("sliced loss ran"))
    loss = reconstruction_loss(th.empty(2, 3, 4, 4, device="meta"), th.empty(2, 3, 4, 4, dtype=th.uint8, device="meta"))
    assert loss.device.type == "meta" and loss.shape == ()
