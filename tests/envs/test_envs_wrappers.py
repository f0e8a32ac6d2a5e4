"""ActionRepeat, ChannelFrameStack and Float32Action, on a tiny counting image env."""

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from stable_baselines3.common.env_checker import check_env
from stable_baselines3.common.vec_env import DummyVecEnv

from sb3_sacae.envs import ActionRepeat, ChannelFrameStack, Float32Action, pixel_observations


class CountingImageEnv(gym.Env):
    """Frame t is filled with the value t (channel c holds t + 100 * c); reward t; terminates at step ``end``."""

    metadata = {"render_modes": []}

    def __init__(self, end: int = 10, size: int = 6, action_dtype: type = np.float32):
        self.observation_space = spaces.Box(0, 255, (size, size, 3), np.uint8)
        self.action_space = spaces.Box(-1.0, 1.0, (2,), action_dtype)
        self.end = end
        self.size = size
        self.t = 0
        self.actions: list[np.ndarray] = []

    def _frame(self) -> np.ndarray:
        return (self.t + 100 * np.arange(3, dtype=np.uint8) * np.ones((self.size, self.size, 1), np.uint8)).astype(np.uint8)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.t = 0
        return self._frame(), {}

    def step(self, action):
        self.actions.append(np.asarray(action))
        self.t += 1
        return self._frame(), float(self.t), self.t >= self.end, False, {"t": self.t}


def frame_values(obs: np.ndarray, frame_stack: int, channels_first: bool = True) -> list[int]:
    """Step index of each stacked frame, oldest first (read from its first channel)."""
    first_channels = obs[::3] if channels_first else np.moveaxis(obs, -1, 0)[::3]
    assert first_channels.shape[0] == frame_stack
    return [int(np.unique(channel).item()) for channel in first_channels]


def test_action_repeat_sums_rewards_and_counts_frames():
    env = ActionRepeat(CountingImageEnv(end=100), action_repeat=3)
    _, info = env.reset()
    assert info["env_frames"] == 0 and info["step_env_frames"] == 0
    _, reward, terminated, truncated, info = env.step(np.zeros(2, np.float32))
    assert reward == 1 + 2 + 3
    assert (terminated, truncated) == (False, False)
    assert info["step_env_frames"] == 3 and info["env_frames"] == 3 and info["t"] == 3
    _, reward, *_, info = env.step(np.zeros(2, np.float32))
    assert reward == 4 + 5 + 6
    assert info["env_frames"] == 6
    assert env.action_repeat == 3


def test_action_repeat_stops_at_termination():
    inner = CountingImageEnv(end=5)
    env = ActionRepeat(inner, action_repeat=4)
    env.reset()
    env.step(np.zeros(2, np.float32))
    _, reward, terminated, _, info = env.step(np.zeros(2, np.float32))
    assert terminated
    assert reward == 5  # only frame 5 of the second step ran
    assert info["step_env_frames"] == 1 and info["env_frames"] == 5
    assert len(inner.actions) == 5


def test_action_repeat_stops_at_truncation():
    env = ActionRepeat(gym.wrappers.TimeLimit(CountingImageEnv(end=100), max_episode_steps=7), action_repeat=4)
    env.reset()
    env.step(np.zeros(2, np.float32))
    _, reward, terminated, truncated, info = env.step(np.zeros(2, np.float32))
    assert truncated and not terminated
    assert reward == 5 + 6 + 7
    assert info["env_frames"] == 7


def test_env_frames_restart_at_reset_but_total_keeps_counting():
    env = ActionRepeat(CountingImageEnv(end=100), action_repeat=2)
    env.reset()
    env.step(np.zeros(2, np.float32))
    _, info = env.reset()
    assert info["env_frames"] == 0
    _, _, _, _, info = env.step(np.zeros(2, np.float32))
    assert info["env_frames"] == 2
    assert env.total_env_frames == 4


@pytest.mark.parametrize("repeat", [0, -1, 1.5])
def test_action_repeat_rejects_bad_values(repeat):
    with pytest.raises(ValueError, match="action_repeat"):
        ActionRepeat(CountingImageEnv(), repeat)


def test_frame_stack_repeats_first_frame_at_reset():
    env = ChannelFrameStack(CountingImageEnv(), frame_stack=3)
    obs, _ = env.reset()
    assert obs.shape == (9, 6, 6) and obs.dtype == np.uint8
    assert frame_values(obs, 3) == [0, 0, 0]


def test_frame_stack_keeps_the_last_frames_oldest_first():
    env = ChannelFrameStack(CountingImageEnv(), frame_stack=3)
    env.reset()
    obs, *_ = env.step(np.zeros(2, np.float32))
    assert frame_values(obs, 3) == [0, 0, 1]
    for _ in range(3):
        obs, *_ = env.step(np.zeros(2, np.float32))
    assert frame_values(obs, 3) == [2, 3, 4]
    # channels of one frame stay together and in order: R, G, B of frame 4 are the last three channels
    assert [int(np.unique(c).item()) for c in obs[6:]] == [4, 104, 204]


def test_frame_stack_resets_between_episodes():
    env = ChannelFrameStack(CountingImageEnv(), frame_stack=2)
    env.reset()
    env.step(np.zeros(2, np.float32))
    obs, _ = env.reset()
    assert frame_values(obs, 2) == [0, 0]


def test_frame_stack_channel_last_option():
    env = ChannelFrameStack(CountingImageEnv(), frame_stack=3, channels_first=False)
    env.reset()
    obs, *_ = env.step(np.zeros(2, np.float32))
    assert obs.shape == (6, 6, 9)
    assert env.observation_space.shape == (6, 6, 9)
    assert frame_values(obs, 3, channels_first=False) == [0, 0, 1]


def test_frame_stack_accepts_channel_first_frames():
    inner = gym.wrappers.TransformObservation(
        CountingImageEnv(), lambda obs: np.moveaxis(obs, -1, 0), spaces.Box(0, 255, (3, 6, 6), np.uint8)
    )
    env = ChannelFrameStack(inner, frame_stack=2, input_channels_first=True)
    env.reset()
    obs, *_ = env.step(np.zeros(2, np.float32))
    assert obs.shape == (6, 6, 6)
    assert frame_values(obs, 2) == [0, 1]


def test_frame_stack_is_reachable_through_wrappers_and_vec_envs():
    env = gym.wrappers.RecordEpisodeStatistics(pixel_observations(CountingImageEnv(size=40), 40, 3, 2))
    assert env.get_wrapper_attr("frame_stack") == 3
    assert env.get_wrapper_attr("action_repeat") == 2
    vec_env = DummyVecEnv([lambda: env])
    assert vec_env.get_attr("frame_stack") == [3]


def test_frame_stack_rejects_non_images():
    with pytest.raises(ValueError, match="AddRenderObservation"):
        ChannelFrameStack(gym.make("Pendulum-v1"), 3)


def test_float32_action_casts_back_to_float64():
    inner = CountingImageEnv(action_dtype=np.float64)
    env = Float32Action(inner)
    assert env.action_space.dtype == np.float32
    assert np.array_equal(env.action_space.low, [-1, -1]) and np.array_equal(env.action_space.high, [1, 1])
    env.reset()
    env.step(np.array([0.5, -0.5], np.float32))
    assert inner.actions[-1].dtype == np.float64


def test_pixel_stack_passes_check_env():
    check_env(pixel_observations(CountingImageEnv(size=40), image_size=40, frame_stack=3, action_repeat=2))


def test_pixel_stack_resizes_only_when_needed():
    env = pixel_observations(CountingImageEnv(size=40), image_size=20, frame_stack=2, action_repeat=1)
    assert env.observation_space.shape == (6, 20, 20)
    assert "ResizeObservation" in str(env)
    env = pixel_observations(CountingImageEnv(size=40), image_size=40, frame_stack=2, action_repeat=1)
    assert "ResizeObservation" not in str(env)
