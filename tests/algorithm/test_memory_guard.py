"""A replay buffer that cannot fit in memory is refused when the model is built, with the bytes and the options."""

import pytest

from sb3_sacae import SACAE
from tests.conftest import TinyPixelEnv, tiny_model


def test_oversized_sb3_buffer_is_refused_before_allocation():
    # 3x32x32 obs twice: ~6 kB per transition; 10^9 transitions is ~6 TB
    with pytest.raises(MemoryError, match=r"buffer_size=1_000_000_000.*smaller buffer_size"):
        tiny_model(buffer_size=1_000_000_000)


def test_opt_in_builds_the_buffer_with_a_warning(monkeypatch):
    monkeypatch.setattr("sb3_sacae.buffers.available_memory", lambda: 1000)
    with pytest.raises(MemoryError):
        tiny_model(buffer_size=500)
    with pytest.warns(UserWarning, match="available"):
        model = tiny_model(buffer_size=500, replay_buffer_kwargs=dict(allow_oversize=True))
    assert model.replay_buffer.buffer_size == 500


def test_loading_a_model_never_refuses_its_buffer(tmp_path, monkeypatch):
    model = tiny_model(TinyPixelEnv(), buffer_size=500)
    model.save(tmp_path / "model.zip")
    # Pretend the loading machine has almost no memory: loading to watch a model must still work
    monkeypatch.setattr("sb3_sacae.buffers.available_memory", lambda: 1)
    loaded = SACAE.load(tmp_path / "model.zip", env=TinyPixelEnv(), device="cpu")
    assert loaded.replay_buffer is not None
