"""SACAE_TEST_DEVICE picks the device the suite's models run on, and refuses one this machine lacks."""

import pytest
import torch as th

from tests.conftest import TEST_DEVICE, selected_device, tiny_model


def test_models_are_built_on_the_selected_device():
    assert tiny_model().device == th.device(TEST_DEVICE)


def test_cpu_is_the_default(monkeypatch):
    monkeypatch.delenv("SACAE_TEST_DEVICE", raising=False)
    assert selected_device() == "cpu"


def test_a_malformed_device_name_is_refused():
    with pytest.raises(ValueError, match="is not a torch device: use cpu, cuda or cuda:N"):
        selected_device("gpu0")


@pytest.mark.skipif(th.cuda.is_available(), reason="this machine has a CUDA GPU")
def test_cuda_without_a_gpu_is_refused(monkeypatch):
    monkeypatch.setenv("SACAE_TEST_DEVICE", "cuda")
    with pytest.raises(RuntimeError, match="torch sees no CUDA GPU: unset SACAE_TEST_DEVICE"):
        selected_device()
