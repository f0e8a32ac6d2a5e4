"""Float images: never modified in place, and the reconstruction target is computed on the pixel scale."""

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces

from tests.conftest import TINY_POLICY, TinyPixelEnv, tiny_model


class _FloatPixels(gym.ObservationWrapper):
    def __init__(self, env: gym.Env, scale: float):
        super().__init__(env)
        self.scale = scale
        self.observation_space = spaces.Box(0.0, scale, env.observation_space.shape, np.float32)

    def observation(self, observation):
        return observation.astype(np.float32) * (self.scale / 255.0)


@pytest.mark.parametrize("channels_last", [True, False])
def test_preprocess_never_changes_its_input(channels_last):
    model = tiny_model(_FloatPixels(TinyPixelEnv(), 255.0), policy_kwargs={**TINY_POLICY, "channels_last": channels_last})
    observations = th.full((2, 3, 32, 32), 200.0, device=model.device)
    model.policy.encoder.preprocess(observations)
    assert th.all(observations == 200.0)


@pytest.mark.parametrize("dtype", [th.float32, th.bfloat16])
@pytest.mark.parametrize("channels_last", [True, False])
def test_preprocess_of_uint8_pixels_is_the_plain_formula_in_the_trunk_layout(dtype, channels_last):
    model = tiny_model(TinyPixelEnv(), policy_kwargs={**TINY_POLICY, "channels_last": channels_last})
    observations = th.randint(0, 256, (2, 3, 32, 32), dtype=th.uint8, device=model.device)
    before = observations.clone()
    pixels = model.policy.encoder.preprocess(observations, dtype)
    assert th.equal(observations, before)
    assert pixels.dtype == dtype and pixels.is_contiguous(memory_format=th.channels_last) == channels_last
    assert th.equal(pixels, observations.to(dtype) * (1.0 / 255.0))


@pytest.mark.parametrize("scale, normalize", [(255.0, True), (1.0, False)])
def test_reconstruction_target_sees_pixels_on_the_0_255_scale(monkeypatch, scale, normalize):
    seen = []
    monkeypatch.setattr(
        "sb3_sacae.torch_layers.reconstruction_loss",
        lambda reconstruction, pixels, **kwargs: seen.append(pixels.max().item()) or reconstruction.float().square().mean(),
    )
    policy = {**TINY_POLICY, "channels_last": False, "normalize_images": normalize}
    tiny_model(_FloatPixels(TinyPixelEnv(), scale), policy_kwargs=policy, random_shift=2).learn(24)
    assert seen and max(seen) > 100  # TinyPixelEnv's bright square is 255 on the pixel scale
