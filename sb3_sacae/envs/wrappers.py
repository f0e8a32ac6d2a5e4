"""Small Gymnasium wrappers for learning from pixels, one job each.

Gymnasium already renders (``AddRenderObservation``), resizes (``ResizeObservation``) and stacks
(``FrameStackObservation``); what it lacks is an action repeat, a frame stack along the *channel* axis
(SB3 rejects the leading stack axis for images) and a float32 cast of DeepMind Control's float64 actions.
"""

from __future__ import annotations

from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.wrappers import FrameStackObservation


class ActionRepeat(gym.Wrapper):
    """
    Repeat each action ``action_repeat`` times and sum the rewards (PlaNet / SAC-AE "action repeat").

    The repetition stops early when the inner environment terminates or truncates. Each step reports
    environment frames in ``info`` so that results can be compared with papers that count frames:

    - ``info["step_env_frames"]``: frames simulated by this agent step (``action_repeat`` or fewer at the end);
    - ``info["env_frames"]``: frames since the last ``reset()``.

    ``total_env_frames`` counts frames over the wrapper's lifetime (all episodes).

    Put it *below* the render wrapper (``AddRenderObservation(ActionRepeat(env, k))``) so that only the
    last of the ``k`` frames is rendered.

    :param env: Environment to wrap
    :param action_repeat: Number of environment steps per agent step (>= 1)
    """

    def __init__(self, env: gym.Env, action_repeat: int):
        if int(action_repeat) != action_repeat or action_repeat < 1:
            raise ValueError(f"action_repeat must be an integer >= 1, got {action_repeat!r}")
        super().__init__(env)
        self.action_repeat = int(action_repeat)
        self.env_frames = 0
        self.total_env_frames = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        obs, info = self.env.reset(seed=seed, options=options)
        self.env_frames = 0
        info["step_env_frames"] = 0
        info["env_frames"] = 0
        return obs, info

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        total_reward = 0.0
        frames = 0
        for _ in range(self.action_repeat):
            obs, reward, terminated, truncated, info = self.env.step(action)
            total_reward += float(reward)
            frames += 1
            if terminated or truncated:
                break
        self.env_frames += frames
        self.total_env_frames += frames
        info["step_env_frames"] = frames
        info["env_frames"] = self.env_frames
        return obs, total_reward, terminated, truncated, info


class ChannelFrameStack(gym.ObservationWrapper):
    """
    Stack the last ``frame_stack`` image observations along the channel axis.

    Built on ``gymnasium.wrappers.FrameStackObservation`` with ``padding_type="reset"``: after ``reset()``
    the first frame is repeated ``frame_stack`` times (as in the SAC-AE reference code). The stack axis is
    then merged into the channel axis, oldest frame first:

    - ``channels_first=True`` (default): ``(H, W, C)`` frames become ``(frame_stack * C, H, W)``, so SB3
      uses the observation as is (no ``VecTransposeImage``);
    - ``channels_first=False``: ``(H, W, C)`` frames become ``(H, W, frame_stack * C)``; SB3 then adds
      ``VecTransposeImage`` itself.

    Channel-first input frames ``(C, H, W)`` are accepted too (set ``input_channels_first=True``).

    :param env: Environment with a uint8 image ``Box`` observation space, ``(H, W, C)`` or ``(C, H, W)``
    :param frame_stack: Number of frames to stack (>= 1)
    :param channels_first: Output layout, see above
    :param input_channels_first: Whether the wrapped observations are ``(C, H, W)`` (default: ``(H, W, C)``)
    """

    def __init__(self, env: gym.Env, frame_stack: int, channels_first: bool = True, input_channels_first: bool = False):
        if int(frame_stack) != frame_stack or frame_stack < 1:
            raise ValueError(f"frame_stack must be an integer >= 1, got {frame_stack!r}")
        space = env.observation_space
        if not (isinstance(space, spaces.Box) and len(space.shape) == 3):
            raise ValueError(
                f"ChannelFrameStack needs 3D image observations (H, W, C) or (C, H, W), got {space}: "
                "render to pixels first with gymnasium.wrappers.AddRenderObservation(env, render_only=True)"
            )
        super().__init__(FrameStackObservation(env, int(frame_stack), padding_type="reset"))
        self.frame_stack = int(frame_stack)
        self.channels_first = channels_first
        self.input_channels_first = input_channels_first
        low = self._merge(np.broadcast_to(space.low, (self.frame_stack, *space.shape)))
        high = self._merge(np.broadcast_to(space.high, (self.frame_stack, *space.shape)))
        self.observation_space = spaces.Box(low=low, high=high, dtype=space.dtype)

    def _merge(self, stack: np.ndarray) -> np.ndarray:
        """(k, *frame) -> one image with k * C channels, in the output layout."""
        if self.input_channels_first:
            stack = np.moveaxis(stack, 1, -1)  # (k, C, H, W) -> (k, H, W, C)
        k, height, width, channels = stack.shape
        if self.channels_first:
            return np.ascontiguousarray(stack.transpose(0, 3, 1, 2)).reshape(k * channels, height, width)
        return np.ascontiguousarray(stack.transpose(1, 2, 0, 3)).reshape(height, width, k * channels)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        return self._merge(np.asarray(observation))


class Float32Action(gym.ActionWrapper):
    """
    Expose a float64 ``Box`` action space (DeepMind Control) as float32, as SB3 policies output float32.

    Actions are cast back to the inner space's dtype before stepping.

    :param env: Environment with a ``Box`` action space
    """

    def __init__(self, env: gym.Env):
        if not isinstance(env.action_space, spaces.Box):
            raise ValueError(f"Float32Action needs a Box action space, got {env.action_space}")
        super().__init__(env)
        inner = env.action_space
        self._inner_dtype = inner.dtype
        self.action_space = spaces.Box(low=inner.low.astype(np.float32), high=inner.high.astype(np.float32), dtype=np.float32)

    def action(self, action: np.ndarray) -> np.ndarray:
        return np.asarray(action, dtype=self._inner_dtype)


def image_hw(image_size: int | tuple[int, int]) -> tuple[int, int]:
    """``84`` or ``(84, 84)`` -> ``(height, width)``."""
    height, width = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    if height < 1 or width < 1:
        raise ValueError(f"image_size must be positive, got {image_size!r}")
    return int(height), int(width)


RENDER_MODES = (None, "rgb_array", "human")


def check_render_mode(render_mode: str | None) -> None:
    """Pixel environments render offscreen; ``"human"`` shows those frames in a window (see :func:`show_frames`)."""
    if render_mode not in RENDER_MODES:
        raise ValueError(
            f"Pixel environments render offscreen; render_mode must be None, 'rgb_array' or 'human', got {render_mode!r}"
        )


def show_frames(env: gym.Env, render_mode: str | None) -> gym.Env:
    """
    With ``render_mode="human"``, wrap ``env`` in Gymnasium's ``HumanRendering``: every ``reset()`` and
    ``step()`` draws the rendered frame in a pygame window, as Gymnasium's own environments do.

    Without a display SDL's dummy video driver is selected (see
    :func:`sb3_sacae.envs.headless.configure_pygame_headless`), so the window is drawn nowhere and the
    environment runs as it does with a display, like Gymnasium's own ``"human"`` environments.
    Other modes return ``env`` unchanged.
    """
    if render_mode != "human":
        return env
    from gymnasium.wrappers import HumanRendering

    from sb3_sacae.envs.headless import configure_pygame_headless

    configure_pygame_headless()
    return HumanRendering(env)


def pixel_observations(
    env: gym.Env,
    image_size: int | tuple[int, int] = 84,
    frame_stack: int = 3,
    action_repeat: int = 1,
    channels_first: bool = True,
) -> gym.Env:
    """
    The usual pixel stack: ``ActionRepeat`` -> render (unless observations are already images) -> resize
    (only when the frames are not ``image_size`` already) -> ``ChannelFrameStack``.

    The action repeat sits below the renderer so that only the last of the repeated frames is rendered.
    For Gymnasium MuJoCo environments, ``MUJOCO_GL`` defaults to ``egl`` (see :mod:`sb3_sacae.envs.headless`).

    :param env: Environment whose observations are images, or with ``render_mode="rgb_array"``
    :param image_size: Side of the square output images, or ``(height, width)``
    :param frame_stack: Number of stacked frames
    :param action_repeat: Environment steps per agent step
    :param channels_first: Output ``(frame_stack * 3, H, W)`` (default) or ``(H, W, frame_stack * 3)``
    """
    from gymnasium.wrappers import AddRenderObservation, ResizeObservation

    from sb3_sacae.envs.headless import configure_mujoco_gl, explain_rendering_errors

    env = ActionRepeat(env, action_repeat)
    space = env.observation_space
    already_pixels = isinstance(space, spaces.Box) and space.dtype == np.uint8 and len(space.shape) == 3
    if not already_pixels:
        if hasattr(env.unwrapped, "mujoco_renderer"):
            # a Gymnasium MuJoCo env reads MUJOCO_GL when its renderer is created, on the first render below
            configure_mujoco_gl()
        with explain_rendering_errors():
            env = AddRenderObservation(env, render_only=True)
    height, width = image_hw(image_size)
    if env.observation_space.shape[:2] != (height, width):  # type: ignore[index]  # gymnasium types shape as Optional; AddRenderObservation always sets it
        env = ResizeObservation(env, (height, width))
    return ChannelFrameStack(env, frame_stack, channels_first=channels_first)
