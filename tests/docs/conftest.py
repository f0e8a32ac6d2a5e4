"""The documentation's code, run as written with tiny networks, images and step counts (the examples' own numbers
are for real training)."""

import os

import gymnasium as gym
import pytest

import sb3_sacae
from sb3_sacae import SACAE
from tests.conftest import TEST_DEVICE, TINY, TINY_POLICY

MAX_STEPS = 40  # agent steps any example may train for here
IMAGE_SIZE = 32


class TinySACAE(SACAE):
    """
    SACAE with tiny networks and batches (over the sizes an example asks for; its other settings as given) and at
    most ``MAX_STEPS`` agent steps per ``learn()`` call.
    """

    def __init__(self, policy, env, **kwargs):
        if kwargs.get("_init_setup_model", True):  # load() rebuilds from the file's values
            policy_kwargs = {**(kwargs.pop("policy_kwargs", None) or {}), **TINY_POLICY}
            kwargs = {**TINY, "seed": 0, "device": TEST_DEVICE, **kwargs}
            kwargs.update(policy_kwargs=policy_kwargs, batch_size=TINY["batch_size"])
        super().__init__(policy, env, **kwargs)

    def learn(self, total_timesteps, *args, **kwargs):
        return super().learn(min(total_timesteps, MAX_STEPS), *args, **kwargs)


@pytest.fixture
def tiny_examples(monkeypatch, tmp_path):
    """Run examples in a temporary folder, with tiny SACAE models and the pixel environments at 32x32 unless the
    example names a size."""
    make = gym.make

    def make_small(env_id, *args, **kwargs):
        if isinstance(env_id, str) and env_id in sb3_sacae.envs.PIXEL_ENVS:
            kwargs.setdefault("image_size", IMAGE_SIZE)
        return make(env_id, *args, **kwargs)

    monkeypatch.setattr(gym, "make", make_small)
    monkeypatch.setattr(sb3_sacae, "SACAE", TinySACAE)
    monkeypatch.chdir(tmp_path)
    # making a MuJoCo env sets MUJOCO_GL and PYOPENGL_PLATFORM in this process: later tests that start renderers in
    # subprocesses with another backend must not inherit them
    environment = dict(os.environ)
    yield tmp_path
    os.environ.clear()
    os.environ.update(environment)
