"""DeconvLayer: nn.ConvTranspose2d's parameters and math, with a backward written as regular convolutions."""

import pytest
import torch as th
from torch import nn

from sb3_sacae.accel.deconv import DeconvLayer, _TransposedConvFunction, deconv_backward_applies


def _forward_backward(layer: nn.Module, x: th.Tensor, grad: th.Tensor, autocast: bool = False):
    x = x.detach().clone().requires_grad_()
    layer.zero_grad()
    with th.autocast("cpu", dtype=th.bfloat16, enabled=autocast):
        y = layer(x)
    y.backward(grad.to(y.dtype))
    return y.detach(), x.grad, layer.weight.grad, layer.bias.grad


@pytest.mark.parametrize("in_channels, out_channels, stride, output_padding, side", [(6, 5, 1, 0, 7), (6, 3, 2, 1, 9)])
@pytest.mark.parametrize("channels_last", [False, True])
def test_same_outputs_and_gradients_as_conv_transpose(in_channels, out_channels, stride, output_padding, side, channels_last):
    th.manual_seed(0)
    reference = nn.ConvTranspose2d(in_channels, out_channels, 3, stride=stride, output_padding=output_padding).double()
    ours = DeconvLayer(in_channels, out_channels, 3, stride=stride, output_padding=output_padding).double()
    ours.load_state_dict(reference.state_dict())  # same parameters, same state dict keys
    memory_format = th.channels_last if channels_last else th.contiguous_format
    x = th.randn(4, in_channels, side, side, dtype=th.float64).contiguous(memory_format=memory_format)
    grad = th.randn_like(reference(x))
    for expected, actual in zip(_forward_backward(reference, x, grad), _forward_backward(ours, x, grad), strict=True):
        th.testing.assert_close(actual, expected, rtol=1e-12, atol=1e-12)


def test_gradcheck():
    layer = DeconvLayer(2, 3, 3, stride=2, output_padding=1).double()
    x = th.randn(2, 2, 4, 5, dtype=th.float64, requires_grad=True)
    weight = layer.weight.detach().clone().requires_grad_()
    bias = layer.bias.detach().clone().requires_grad_()
    function = lambda x, w, b: _TransposedConvFunction.apply(x, w, b, (2, 2), (1, 1))  # noqa: E731
    assert th.autograd.gradcheck(function, (x, weight, bias))


def test_autocast_computes_in_bfloat16_and_returns_float32_gradients():
    th.manual_seed(0)
    reference = nn.ConvTranspose2d(8, 4, 3, stride=2, output_padding=1)
    ours = DeconvLayer(8, 4, 3, stride=2, output_padding=1)
    ours.load_state_dict(reference.state_dict())
    x = th.randn(4, 8, 6, 6)
    grad = th.randn(4, 4, 14, 14)
    expected, actual = _forward_backward(reference, x, grad, autocast=True), _forward_backward(ours, x, grad, autocast=True)
    assert actual[0].dtype == expected[0].dtype == th.bfloat16
    assert actual[1].dtype == actual[2].dtype == actual[3].dtype == th.float32
    for want, got in zip(expected, actual, strict=True):
        th.testing.assert_close(got.float(), want.float(), rtol=2e-2, atol=2e-2)


def test_other_configurations_fall_back_to_conv_transpose():
    th.manual_seed(0)
    reference = nn.ConvTranspose2d(3, 2, 3, stride=2, padding=1, output_padding=1)
    ours = DeconvLayer(3, 2, 3, stride=2, padding=1, output_padding=1)
    ours.load_state_dict(reference.state_dict())
    x = th.randn(2, 3, 5, 5)
    th.testing.assert_close(ours(x), reference(x))
    th.testing.assert_close(ours(x, output_size=[9, 9]), reference(x, output_size=[9, 9]))


def test_unbatched_input_falls_back_to_conv_transpose():
    th.manual_seed(0)
    reference = nn.ConvTranspose2d(3, 2, 3, stride=2, output_padding=1)
    ours = DeconvLayer(3, 2, 3, stride=2, output_padding=1)
    ours.load_state_dict(reference.state_dict())
    x = th.randn(3, 5, 5, requires_grad=True)
    ours(x).sum().backward()
    th.testing.assert_close(ours.weight.grad, th.autograd.grad(reference(x).sum(), reference.weight)[0])


def test_float64_stays_float64_under_autocast():
    layer = DeconvLayer(2, 2, 3).double()
    with th.autocast("cpu", dtype=th.bfloat16):
        assert layer(th.randn(1, 2, 4, 4, dtype=th.float64)).dtype == th.float64


def test_double_backward_is_refused():
    layer = DeconvLayer(2, 2, 3).double()
    x = th.randn(1, 2, 4, 4, dtype=th.float64, requires_grad=True)
    (grad,) = th.autograd.grad(layer(x).square().sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match=r"once_differentiable|twice"):
        grad.sum().backward()


@pytest.mark.parametrize("device", [th.device("cuda"), th.device("meta"), "cuda:0"])
def test_the_seam_selects_the_plain_transposed_conv_for_other_devices(device):
    assert deconv_backward_applies(device) is False and deconv_backward_applies("cpu") is True


def test_on_the_meta_device_the_layer_takes_the_plain_path(monkeypatch):
    monkeypatch.setattr(_TransposedConvFunction, "apply", lambda *args: pytest.fail("the CPU backward ran off the CPU"))
    layer = DeconvLayer(2, 3, 3, stride=2, output_padding=1, device="meta")
    out = layer(th.empty(4, 2, 5, 5, device="meta"))
    assert out.shape == (4, 3, 12, 12) and out.device.type == "meta"
