"""Transition streams for the replay-buffer tests, as SB3's off-policy algorithms produce them.

Imported by the other ``test_buffer_*`` files; its own test checks that the streams reach
every case the buffer must handle.
"""

from collections.abc import Iterator
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.vec_env import DummyVecEnv, VecFrameStack

FRAME_STACK = 3
ACTION_DIM = 2


class RandomFramesEnv(gym.Env):
    """Random uint8 frames, some all-zero or repeated; episodes end at random or at a time limit."""

    def __init__(
        self, frame_shape: tuple[int, ...], max_steps: int, p_terminate: float, p_zero: float, p_still: float, seed: int
    ):
        self.observation_space = gym.spaces.Box(0, 255, frame_shape, dtype=np.uint8)
        self.action_space = gym.spaces.Box(-1, 1, (ACTION_DIM,), dtype=np.float32)
        self.max_steps = max_steps
        self.p_terminate = p_terminate
        self.p_zero = p_zero
        self.p_still = p_still
        self.rng = np.random.default_rng(seed)
        self.frame = np.zeros(frame_shape, dtype=np.uint8)
        self.t = 0

    def _next_frame(self) -> np.ndarray:
        u = self.rng.random()
        if u < self.p_zero:
            self.frame = np.zeros_like(self.frame)
        elif u >= self.p_zero + self.p_still:  # otherwise the scene did not change
            self.frame = self.rng.integers(1, 256, self.frame.shape, dtype=np.uint8)
        return self.frame.copy()

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.t = 0
        return self._next_frame(), {}

    def step(self, action):
        self.t += 1
        terminated = bool(self.rng.random() < self.p_terminate)
        truncated = self.t >= self.max_steps
        return self._next_frame(), float(self.rng.normal()), terminated, truncated, {}


def stream_spaces(channels_last: bool = False) -> dict[str, gym.spaces.Box]:
    """``observation_space`` and ``action_space`` of the stacks ``transitions()`` yields, as buffer kwargs."""
    shape = (10, 10, 3 * FRAME_STACK) if channels_last else (3 * FRAME_STACK, 10, 10)
    return dict(
        observation_space=gym.spaces.Box(0, 255, shape, dtype=np.uint8),
        action_space=gym.spaces.Box(-np.inf, np.inf, (ACTION_DIM,), dtype=np.float32),
    )


def transitions(
    n_envs: int,
    n_steps: int,
    channels_last: bool = False,
    max_steps: int = 7,
    p_terminate: float = 0.15,
    p_irregular: float = 0.0,
    p_zero: float = 0.05,
    p_still: float = 0.05,
    seed: int = 0,
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]]:
    """
    ``(obs, next_obs, action, reward, done, infos)`` for ``ReplayBuffer.add``, built like SB3's
    ``_store_transition``: ``VecFrameStack`` of 3x10x10 frames, ``next_obs`` replaced by
    ``terminal_observation`` at episode ends, ``TimeLimit.truncated`` in infos. Frames are all-zero
    with probability ``p_zero``, unchanged with ``p_still``. With probability ``p_irregular`` an env's
    ``obs`` or ``next_obs`` is replaced by unrelated random stacks (a wrapper that does not stack
    frames). Actions carry a unique transition id in component 0.
    """
    frame_shape = (10, 10, 3) if channels_last else (3, 10, 10)
    env = VecFrameStack(
        DummyVecEnv(
            [
                lambda i=i: RandomFramesEnv(frame_shape, max_steps, p_terminate, p_zero, p_still, seed=seed * 100 + i)
                for i in range(n_envs)
            ]
        ),
        FRAME_STACK,
        channels_order="last" if channels_last else "first",
    )
    rng = np.random.default_rng(seed)
    obs = env.reset().copy()
    for step in range(n_steps):
        action = rng.uniform(-1, 1, (n_envs, ACTION_DIM)).astype(np.float32)
        action[:, 0] = step * n_envs + np.arange(n_envs)
        new_obs, reward, done, infos = env.step(action)
        next_obs = new_obs.copy()
        for i in np.flatnonzero(done):
            next_obs[i] = infos[i]["terminal_observation"]
        for stack in (obs, next_obs):
            irregular = rng.random(n_envs) < p_irregular
            stack[irregular] = rng.integers(0, 256, stack[irregular].shape, dtype=np.uint8)
        yield obs, next_obs, action, reward, done, infos
        obs = new_obs.copy()


def test_streams_cover_episode_ends_timeouts_zero_and_repeated_frames():
    terminated = truncated = zero_frames = repeats = 0
    for obs, next_obs, _, _, done, infos in transitions(n_envs=2, n_steps=200):
        timeouts = np.array([info["TimeLimit.truncated"] for info in infos])
        truncated += int(timeouts.sum())
        terminated += int((done & ~timeouts).sum())
        zero_frames += int((next_obs[:, -3:] == 0).all(axis=(1, 2, 3)).sum())
        repeats += int((next_obs[:, -3:] == next_obs[:, -6:-3]).all(axis=(1, 2, 3)).sum())
        # Within an episode next_obs shares all frames but the newest with obs
        assert np.array_equal(next_obs[:, :-3], obs[:, 3:])
    assert min(terminated, truncated, zero_frames, repeats) > 5
