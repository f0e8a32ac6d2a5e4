"""OneDNNLinear: nn.Linear's float32 math on oneDNN, same parameters, same results to float32 rounding."""

import copy

import pytest
import torch as th
from torch import nn

from sb3_sacae.accel.onednn import _ONEDNN_LINEAR, OneDNNLinear, onednn_linear_applies, use_onednn_linears
from tests.conftest import TinyPixelEnv, tiny_model

needs_onednn = pytest.mark.skipif(_ONEDNN_LINEAR is None, reason="this torch build has no oneDNN Linear")


def _pair(in_features: int, out_features: int, bias: bool = True) -> tuple[nn.Linear, nn.Linear]:
    reference = nn.Linear(in_features, out_features, bias=bias)
    ours = use_onednn_linears(copy.deepcopy(reference))
    assert type(ours) is OneDNNLinear
    return ours, reference


@needs_onednn
@pytest.mark.parametrize("shape", [(20,), (6, 20), (3, 2, 20)])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("out_features", [7, 40])  # narrow and wide outputs take different weight-gradient paths
def test_forward_and_gradients_match_nn_linear(shape, bias, out_features):
    ours, reference = _pair(20, out_features, bias)
    inputs = th.randn(*shape, requires_grad=True)
    inputs_ref = inputs.detach().clone().requires_grad_()
    outputs, expected = ours(inputs), reference(inputs_ref)
    assert outputs.shape == expected.shape and outputs.dtype == th.float32
    th.testing.assert_close(outputs, expected)
    upstream = th.randn_like(expected)
    outputs.backward(upstream)
    expected.backward(upstream)
    th.testing.assert_close(inputs.grad, inputs_ref.grad)
    th.testing.assert_close(ours.weight.grad, reference.weight.grad)
    if bias:
        th.testing.assert_close(ours.bias.grad, reference.bias.grad)


@needs_onednn
def test_float32_error_is_that_of_the_blas_matmul():
    ours, reference = _pair(1024, 256)
    inputs = th.randn(128, 1024)
    exact = inputs.double() @ reference.weight.double().t() + reference.bias.double()
    ours_error = (ours(inputs).double() - exact).abs().max()
    blas_error = (reference(inputs).double() - exact).abs().max()
    assert ours_error <= 4 * blas_error + 1e-6


@needs_onednn
def test_broadcast_and_non_contiguous_gradients():
    ours, reference = _pair(20, 5)
    inputs = th.randn(20, 6).t().requires_grad_()  # non-contiguous input
    inputs_ref = inputs.detach().clone().requires_grad_()
    ours(inputs).sum().backward()  # the upstream gradient is an expanded scalar (stride 0)
    reference(inputs_ref).sum().backward()
    th.testing.assert_close(inputs.grad, inputs_ref.grad)
    th.testing.assert_close(ours.weight.grad, reference.weight.grad)


def test_double_backward_matches_nn_linear():
    ours, reference = _pair(12, 4)
    inputs = th.randn(5, 12, requires_grad=True)
    inputs_ref = inputs.detach().clone().requires_grad_()
    (grad,) = th.autograd.grad(ours(inputs).square().sum(), inputs, create_graph=True)
    grad.square().sum().backward()
    (grad_ref,) = th.autograd.grad(reference(inputs_ref).square().sum(), inputs_ref, create_graph=True)
    grad_ref.square().sum().backward()
    th.testing.assert_close(inputs.grad, inputs_ref.grad)
    th.testing.assert_close(ours.weight.grad, reference.weight.grad)


def test_other_dtypes_and_autocast_take_torch_linear():
    ours, _ = _pair(6, 3)
    ours.double()
    th.autograd.gradcheck(ours, (th.randn(4, 6, dtype=th.float64, requires_grad=True),))
    ours.float()
    with th.autocast("cpu", dtype=th.bfloat16):
        assert ours(th.randn(4, 6)).dtype == th.bfloat16
    assert ours(th.randn(0, 6)).shape == (0, 3)


def test_conversion_keeps_objects_parameters_and_keys():
    shared = nn.Linear(4, 4)
    net = nn.ModuleDict({"a": nn.Sequential(shared, nn.ReLU()), "b": nn.Sequential(shared), "c": nn.Bilinear(2, 2, 2)})
    parameters, keys = list(net.parameters()), list(net.state_dict())
    use_onednn_linears(net)
    assert net["a"][0] is net["b"][0] is shared and type(shared) is OneDNNLinear
    assert type(net["c"]) is nn.Bilinear
    assert list(net.parameters()) == parameters and list(net.state_dict()) == keys


def test_policy_uses_onednn_linears_by_default_and_can_opt_out(tmp_path):
    model = tiny_model(TinyPixelEnv())
    linears = [module for module in model.policy.modules() if isinstance(module, nn.Linear)]
    assert linears and all(type(module) is OneDNNLinear for module in linears)
    model.learn(24)
    model.save(tmp_path / "model")
    loaded = type(model).load(tmp_path / "model", device="cpu")
    assert all(type(m) is OneDNNLinear for m in loaded.policy.modules() if isinstance(m, nn.Linear))

    plain = tiny_model(TinyPixelEnv(), policy_kwargs={**model.policy_kwargs, "onednn_linear": False})
    assert all(type(m) is nn.Linear for m in plain.policy.modules() if isinstance(m, nn.Linear))
    plain.save(tmp_path / "plain")
    assert type(model).load(tmp_path / "plain", device="cpu").policy.onednn_linear is False


@pytest.mark.parametrize("device", [th.device("cuda"), th.device("meta"), "cuda:0"])
def test_the_seam_selects_the_plain_linear_for_other_devices(device):
    assert onednn_linear_applies(device) is False


@needs_onednn
def test_the_seam_selects_onednn_on_cpu():
    assert onednn_linear_applies(th.device("cpu")) and onednn_linear_applies("cpu")


def test_on_the_meta_device_the_layer_takes_the_plain_path():
    layer = use_onednn_linears(nn.Linear(4, 3, device="meta"))
    out = layer(th.empty(2, 4, device="meta"))
    assert type(layer) is OneDNNLinear and out.shape == (2, 3) and out.device.type == "meta"
