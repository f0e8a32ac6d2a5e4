"""bf16_autocast where the hardware has no bfloat16 kernels: learn() warns, at the caller's line, and names the fix."""

import warnings
from types import SimpleNamespace

import pytest
import torch as th

import sb3_sacae.sacae
from sb3_sacae import SACAE
from sb3_sacae.accel.bf16 import bf16_fallback_warning, bf16_kernels_available
from tests.algorithm.test_mlp_policy import tiny_mlp_model
from tests.conftest import tiny_model


def kernels(monkeypatch, available: bool) -> None:
    """This machine as one with or without bfloat16 kernels, whatever it has."""
    monkeypatch.setattr(sb3_sacae.sacae, "bf16_kernels_available", lambda device: available)


def test_training_images_without_kernels_warns_at_the_callers_line_with_the_fix(monkeypatch):
    kernels(monkeypatch, False)
    model = tiny_model(bf16_autocast=True)

    with pytest.warns(UserWarning, match=r"bf16_autocast=True.*bf16_autocast=False") as record:
        model.learn(4)

    assert record[0].filename == __file__  # the learn() call, not the library's line
    assert model.bf16_autocast  # a warning, not a change of setting


def test_a_loaded_model_warns_when_it_trains_not_when_it_loads(tmp_path, monkeypatch):
    kernels(monkeypatch, True)
    tiny_model(bf16_autocast=True).save(tmp_path / "model.zip")
    kernels(monkeypatch, False)

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = SACAE.load(tmp_path / "model.zip", env=tiny_model().get_env())  # predict() is float32 anyway
        loaded.predict(loaded.get_env().reset())
        # the fix the warning names
        SACAE.load(tmp_path / "model.zip", env=loaded.get_env(), bf16_autocast=False).learn(4)
    with pytest.warns(UserWarning, match="SACAE.load"):
        loaded.learn(4)


def test_silent_with_kernels_without_the_flag_or_without_images(monkeypatch):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        kernels(monkeypatch, True)
        tiny_model(bf16_autocast=True).learn(4)
        kernels(monkeypatch, False)
        tiny_model().learn(4)
        tiny_mlp_model(bf16_autocast=True).learn(4)  # state encoders stay float32: nothing to warn about


def test_cuda_asks_the_models_own_gpu(monkeypatch):
    asked = []

    def properties(device):
        asked.append(device)
        return SimpleNamespace(major={0: 8, 1: 7}[device.index])

    monkeypatch.setattr(th.version, "hip", None)
    monkeypatch.setattr(th.cuda, "get_device_properties", properties)

    assert bf16_kernels_available("cuda:0") and not bf16_kernels_available("cuda:1")  # Ampere, then Volta
    assert asked == [th.device("cuda", 0), th.device("cuda", 1)]


def test_the_warning_says_why_for_each_kind_of_device():
    cpu = bf16_fallback_warning("cpu")
    assert f"torch capability {th.backends.cpu.get_cpu_capability()}" in cpu and "oneDNN" in cpu
    assert "cuda:1 has no native bfloat16" in bf16_fallback_warning("cuda:1")
