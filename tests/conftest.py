"""Shared fixtures: a tiny deterministic pixel env and tiny SACAE settings, so the suite runs in minutes on 2 cores."""

import os
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from stable_baselines3.common.vec_env import DummyVecEnv, VecFrameStack

from sb3_sacae import SACAE

# pytest-xdist runs one worker per core: a second torch thread per worker oversubscribes the CPU and makes
# tiny updates orders of magnitude slower (OpenMP threads spin-waiting for each other)
th.set_num_threads(1)


def selected_device(name: str | None = None) -> str:
    """
    The device the suite's models run on: ``SACAE_TEST_DEVICE`` (default ``cpu``), for example
    ``SACAE_TEST_DEVICE=cuda make test`` on a machine with a GPU. Tests of CPU-only pieces (``sb3_sacae.accel``,
    the replay buffers' arrays) stay on the CPU whatever it says.
    """
    name = os.environ.get("SACAE_TEST_DEVICE", "cpu") if name is None else name
    try:
        device = th.device(name)
    except RuntimeError as error:
        raise ValueError(f"SACAE_TEST_DEVICE={name!r} is not a torch device: use cpu, cuda or cuda:N") from error
    if device.type == "cuda" and not th.cuda.is_available():
        raise RuntimeError(
            f"SACAE_TEST_DEVICE={name!r} but torch sees no CUDA GPU: unset SACAE_TEST_DEVICE to test on the CPU"
        )
    return str(device)


TEST_DEVICE = selected_device()
if th.device(TEST_DEVICE).type == "cuda":
    # float32 as on the CPU: cuDNN would otherwise run convolutions in TF32, off the recorded models' predictions
    th.backends.cudnn.allow_tf32 = False
    th.backends.cuda.matmul.allow_tf32 = False

TINY_POLICY = dict(features_dim=8, n_filters=8, net_arch=[16, 16])
TINY = dict(batch_size=8, buffer_size=200, learning_starts=16, policy_kwargs=TINY_POLICY)


class TinyPixelEnv(gym.Env):
    """A point moved by the action, drawn as a bright square: deterministic given the seed."""

    metadata = {"render_modes": []}

    def __init__(self, shape: tuple[int, ...] = (3, 32, 32), episode_length: int = 20, channel_last: bool = False):
        self.shape = shape
        self.observation_space = spaces.Box(0, 255, shape, np.uint8)
        self.action_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.episode_length = episode_length
        self.channel_last = channel_last
        self.position = np.zeros(2)
        self.t = 0

    def _obs(self) -> np.ndarray:
        side_h, side_w = (self.shape[0], self.shape[1]) if self.channel_last else (self.shape[1], self.shape[2])
        # a gradient background keeps the tiny convs' ReLUs alive; the square carries the state
        frame = (np.add.outer(np.arange(side_h), np.arange(side_w)) * 100 // (side_h + side_w)).astype(np.uint8)
        row = int((self.position[0] + 1) / 2 * (side_h - 4))
        col = int((self.position[1] + 1) / 2 * (side_w - 4))
        frame[row : row + 4, col : col + 4] = 255
        channels = self.shape[-1] if self.channel_last else self.shape[0]
        stacked = np.repeat(frame[None], channels, axis=0)
        return np.moveaxis(stacked, 0, -1).copy() if self.channel_last else stacked

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.position = self.np_random.uniform(-1, 1, size=2)
        self.t = 0
        return self._obs(), {}

    def step(self, action):
        self.position = np.clip(self.position + 0.2 * np.asarray(action, dtype=np.float64), -1, 1)
        self.t += 1
        reward = -float(np.linalg.norm(self.position))
        return self._obs(), reward, False, self.t >= self.episode_length, {}


def frame_stacked_env(frame_shape: tuple[int, ...] = (3, 32, 32), n_stack: int = 3) -> VecFrameStack:
    """One channel-first :class:`TinyPixelEnv`, ``n_stack`` frames stacked along its channels by SB3's wrapper."""
    return VecFrameStack(DummyVecEnv([lambda: TinyPixelEnv(frame_shape)]), n_stack, channels_order="first")


def tiny_model(env: gym.Env | None = None, **kwargs: Any) -> SACAE:
    settings = {**TINY, "seed": 0, "device": TEST_DEVICE, **kwargs}
    return SACAE("CnnPolicy", env if env is not None else TinyPixelEnv(), **settings)


@pytest.fixture
def env() -> TinyPixelEnv:
    return TinyPixelEnv()


@pytest.fixture
def model() -> SACAE:
    """A tiny SACAE whose replay buffer already holds enough transitions for a few gradient steps."""
    model = tiny_model()
    model.learn(32)
    return model


@pytest.fixture
def batch(model: SACAE):
    return model.replay_buffer.sample(8)
