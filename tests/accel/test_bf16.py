"""bf16_autocast where the hardware has no bfloat16 kernels: the model warns, once built or loaded, and names the fix."""

import warnings

import pytest
import torch as th

import sb3_sacae.sacae
from sb3_sacae import SACAE
from sb3_sacae.accel.bf16 import bf16_fallback_warning, bf16_kernels_available
from tests.conftest import tiny_model


@pytest.fixture
def no_bf16_kernels(monkeypatch):
    """This machine as one without bfloat16 kernels, whatever it has."""
    monkeypatch.setattr(sb3_sacae.sacae, "bf16_kernels_available", lambda device: False)


def test_bf16_autocast_without_kernels_warns_with_the_fix(no_bf16_kernels):
    with pytest.warns(UserWarning, match=r"many times slower than float32.*Pass bf16_autocast=False"):
        tiny_model(bf16_autocast=True)


def test_loading_a_bf16_model_on_such_a_machine_warns_too(tmp_path, monkeypatch):
    monkeypatch.setattr(sb3_sacae.sacae, "bf16_kernels_available", lambda device: True)
    model = tiny_model(bf16_autocast=True)
    model.save(tmp_path / "model.zip")
    monkeypatch.setattr(sb3_sacae.sacae, "bf16_kernels_available", lambda device: False)

    with pytest.warns(UserWarning, match="bf16_autocast=True"):
        loaded = SACAE.load(tmp_path / "model.zip", device=model.device)

    assert loaded.bf16_autocast  # a warning, not a change: the file's setting is kept


def test_no_warning_without_bf16_autocast_or_with_kernels(no_bf16_kernels, monkeypatch):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tiny_model()
        monkeypatch.setattr(sb3_sacae.sacae, "bf16_kernels_available", lambda device: True)
        tiny_model(bf16_autocast=True)


def test_the_warning_says_why_for_each_kind_of_device():
    cpu = bf16_fallback_warning("cpu")
    assert th.backends.cpu.get_cpu_capability() in cpu and "AVX-512" in cpu
    assert "Ampere" in bf16_fallback_warning(th.device("cuda", 0))


def test_the_cpu_answer_is_onednns():
    # what oneDNN says of this CPU's flags; devices without a bfloat16 question (meta) have nothing to warn about
    assert bf16_kernels_available("cpu") == th.ops.mkldnn._is_mkldnn_bf16_supported()
    assert bf16_kernels_available("meta")
