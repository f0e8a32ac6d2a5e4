"""The real upload to the Hugging Face Hub: only with a token (HF_TOKEN), otherwise skipped."""

from __future__ import annotations

import os
import uuid

import numpy as np
import pytest

from sb3_sacae.zoo import hub

pytestmark = pytest.mark.skipif(not os.environ.get("HF_TOKEN"), reason="set HF_TOKEN to test the real Hub upload")


def test_push_then_load_from_the_real_hub(tmp_path):
    import gymnasium as gym
    from huggingface_hub import HfApi

    import sb3_sacae  # noqa: F401
    from sb3_sacae import SACAE

    env = gym.make("PendulumPixels-v1", image_size=32, frame_stack=2)
    model = SACAE("CnnPolicy", env, buffer_size=100, learning_starts=8, batch_size=8,
                  policy_kwargs=dict(features_dim=8, net_arch=[16], n_filters=4, n_conv_layers=2))  # fmt: skip
    folder = tmp_path / "repo"
    folder.mkdir()
    model.save(folder / hub.model_filename("PendulumPixels-v1"))
    api = HfApi()
    repo_id = f"{api.whoami()['name']}/sb3-sacae-test-{uuid.uuid4().hex[:8]}"
    try:
        hub.upload(folder, repo_id, private=True)
        loaded = hub.load_from_hub(repo_id, cache_dir=tmp_path / "cache")
        obs = env.observation_space.sample()
        assert np.allclose(loaded.predict(obs, deterministic=True)[0], model.predict(obs, deterministic=True)[0])
    finally:
        api.delete_repo(repo_id)
