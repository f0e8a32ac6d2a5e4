"""DeepMind Control Suite from pixels, through Shimmy, as benchmarked by PlaNet, SAC-AE and DrQ.

84x84 RGB frames from camera 0, 3 stacked frames, the PlaNet action repeat of each task, episodes of
1000 environment steps (``1000 / action_repeat`` agent steps) and the environment frames in ``info``
(``info["env_frames"]``, ``info["step_env_frames"]``, see :class:`~sb3_sacae.envs.wrappers.ActionRepeat`).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
from gymnasium.wrappers import TimeLimit

from sb3_sacae.envs.headless import configure_mujoco_gl, explain_rendering_errors
from sb3_sacae.envs.wrappers import Float32Action, check_render_mode, image_hw, pixel_observations, show_frames

# PlaNet benchmark (Hafner et al. 2019), used by SAC-AE: environment steps per agent step
DMC_ACTION_REPEAT: dict[tuple[str, str], int] = {
    ("cartpole", "swingup"): 8,
    ("reacher", "easy"): 4,
    ("cheetah", "run"): 4,
    ("ball_in_cup", "catch"): 4,
    ("finger", "spin"): 2,
    ("walker", "walk"): 2,
}
DEFAULT_ACTION_REPEAT = 4  # tasks outside the benchmark (PlaNet's default)


def make_dmc(
    domain: str,
    task: str,
    image_size: int | tuple[int, int] = 84,
    frame_stack: int = 3,
    action_repeat: int | None = None,
    episode_length: int = 1000,
    camera_id: int = 0,
    fast_render: bool = False,
    channels_first: bool = True,
    render_mode: str | None = None,
    task_kwargs: dict[str, Any] | None = None,
    environment_kwargs: dict[str, Any] | None = None,
) -> gym.Env:
    """
    A DeepMind Control Suite task from pixels.

    Sets ``MUJOCO_GL=egl`` unless ``MUJOCO_GL`` is set (see :mod:`sb3_sacae.envs.headless`). Actions are
    float32 in [-1, 1]; seed with ``env.reset(seed=...)``.

    :param domain: Suite domain, e.g. ``"cheetah"``
    :param task: Suite task, e.g. ``"run"``
    :param image_size: Side of the square images (paper: 84), or ``(height, width)``
    :param frame_stack: Number of stacked RGB frames (paper: 3)
    :param action_repeat: Environment steps per agent step; ``None`` takes the task's PlaNet value
        (cartpole 8; reacher, cheetah, ball_in_cup 4; finger, walker 2; others 4)
    :param episode_length: Episode length in environment steps (1000 in the benchmark; the suite's own
        time limit, 1000 steps for the six benchmark tasks, still ends longer episodes)
    :param camera_id: Camera to render (paper: 0)
    :param fast_render: Turn shadows and anti-aliasing off: about 5x faster software rendering, but the
        pixels differ from the published benchmark's, so results are not comparable
    :param channels_first: ``(frame_stack * 3, H, W)`` observations (default) or ``(H, W, frame_stack * 3)``
    :param render_mode: ``None``, ``"rgb_array"`` (the frames are always rendered offscreen) or ``"human"``
        (those frames also shown in a window)
    :param task_kwargs: Passed to ``dm_control.suite.load``
    :param environment_kwargs: Passed to ``dm_control.suite.load``
    """
    check_render_mode(render_mode)
    if action_repeat is None:
        action_repeat = DMC_ACTION_REPEAT.get((domain, task), DEFAULT_ACTION_REPEAT)
    height, width = image_hw(image_size)
    configure_mujoco_gl()
    with explain_rendering_errors():
        from dm_control import suite
        from shimmy.dm_control_compatibility import DmControlCompatibilityV0

        dm_env = suite.load(domain, task, task_kwargs=task_kwargs, environment_kwargs=environment_kwargs)
        if fast_render:
            dm_env.physics.model.vis.quality.offsamples = 0  # no multisample anti-aliasing
            dm_env.physics.model.light_castshadow[:] = 0
        env: gym.Env = DmControlCompatibilityV0(
            dm_env, render_mode="rgb_array", render_kwargs={"height": height, "width": width, "camera_id": camera_id}
        )
        env = TimeLimit(Float32Action(env), max_episode_steps=episode_length)
        return show_frames(pixel_observations(env, (height, width), frame_stack, action_repeat, channels_first), render_mode)
