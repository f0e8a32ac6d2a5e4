"""Fused gradient norms: the norms torch.linalg.vector_norm computes, one call for all tensors; CPU and CUDA only."""

import pytest
import torch as th

from sb3_sacae.accel import norms as accel_norms
from sb3_sacae.accel.norms import foreach_norm_applies, norms


def test_fused_norms_equal_one_norm_per_tensor():
    tensors = [th.randn(7, 3), th.randn(11), th.zeros(2, 2), th.full((5,), float("inf"))]
    fused, plain = norms(tensors), norms(tensors, fast=False)
    assert len(fused) == len(plain) == len(tensors)
    for ours, reference, tensor in zip(fused, plain, tensors, strict=True):
        th.testing.assert_close(ours, reference)
        th.testing.assert_close(reference, th.linalg.vector_norm(tensor))


@pytest.mark.parametrize("device", [th.device("meta"), "xla", "mps"])
def test_the_seam_selects_one_norm_per_tensor_for_other_devices(device):
    assert foreach_norm_applies(device) is False
    assert foreach_norm_applies("cpu") is True and foreach_norm_applies(th.device("cuda")) is True


def test_on_the_meta_device_the_plain_norms_run(monkeypatch):
    monkeypatch.setattr(accel_norms.th, "_foreach_norm", lambda *args: pytest.fail("fused norm ran"), raising=False)
    result = norms([th.empty(3, device="meta"), th.empty(2, 2, device="meta")])
    assert [value.device.type for value in result] == ["meta", "meta"]
