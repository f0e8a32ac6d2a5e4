"""DrQ random shift (pad, crop back at a random offset), off by default, applied to the sampled batch."""

import pytest
import torch as th

from sb3_sacae.torch_layers import random_shift
from tests.conftest import tiny_model


def _reference_shift(image: th.Tensor, pad: int, dy: int, dx: int) -> th.Tensor:
    """Replicate-pad one image by ``pad`` and crop at offset (pad + dy, pad + dx): the DrQ definition."""
    padded = th.nn.functional.pad(image[None].float(), (pad, pad, pad, pad), mode="replicate")[0]
    height, width = image.shape[1:]
    return padded[:, pad + dy : pad + dy + height, pad + dx : pad + dx + width].to(image.dtype)


def test_each_sample_is_a_replicate_padded_crop():
    th.manual_seed(0)
    images = th.randint(0, 256, (16, 6, 20, 24), dtype=th.uint8)
    shifted = random_shift(images, pad=4)
    assert shifted.shape == images.shape and shifted.dtype == th.uint8
    for image, result in zip(images, shifted, strict=True):
        matches = [
            (dy, dx) for dy in range(-4, 5) for dx in range(-4, 5) if th.equal(_reference_shift(image, 4, dy, dx), result)
        ]
        assert matches, "not a crop of the padded image"


def test_offsets_vary_across_the_batch():
    th.manual_seed(1)
    image = th.randint(0, 256, (1, 3, 16, 16), dtype=th.uint8).repeat(64, 1, 1, 1)
    shifted = random_shift(image, pad=4)
    assert len({tuple(s.flatten().tolist()) for s in shifted}) > 10


def test_zero_pad_is_the_identity():
    images = th.randint(0, 256, (4, 3, 8, 8), dtype=th.uint8)
    assert th.equal(random_shift(images, pad=0), images)


def test_off_by_default_and_trains_when_on(monkeypatch):
    assert tiny_model().random_shift == 0
    calls = []
    monkeypatch.setattr("sb3_sacae.torch_layers.random_shift", lambda obs, pad: calls.append(pad) or obs)
    tiny_model().learn(20)
    assert not calls
    tiny_model(random_shift=4).learn(20)
    assert calls and set(calls) == {4}


def test_negative_pad_is_refused():
    with pytest.raises(ValueError, match="random_shift"):
        tiny_model(random_shift=-1)
