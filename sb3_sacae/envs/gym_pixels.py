"""Gymnasium environments from pixels: Pendulum, CarRacing and the MuJoCo v5 tasks.

Each factory builds the Gymnasium environment and passes it through
:func:`sb3_sacae.envs.wrappers.pixel_observations` (action repeat, render, resize, channel frame stack).
Heavy imports (pygame, Box2D, MuJoCo) happen here, when an environment is made, never at package import.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from sb3_sacae.envs.headless import configure_mujoco_gl, configure_pygame_headless, explain_rendering_errors
from sb3_sacae.envs.wrappers import check_render_mode, image_hw, pixel_observations, show_frames


def make_pendulum_pixels(
    image_size: int | tuple[int, int] = 84,
    frame_stack: int = 3,
    action_repeat: int = 2,
    episode_length: int = 200,
    channels_first: bool = True,
    render_mode: str | None = None,
    **kwargs: Any,
) -> gym.Env:
    """
    Pendulum-v1 from pixels: Gymnasium's own drawing, made directly at ``image_size`` (the unwrapped
    ``screen_dim`` is set small instead of resizing 500x500 frames).

    The default action repeat of 2 (10 decisions per simulated second) keeps swing-up easy to learn while
    halving the number of agent steps per episode; episodes last ``episode_length`` environment steps
    (200, as Pendulum-v1), so returns stay comparable with state-based Pendulum. (``gymnasium.make``'s own
    ``max_episode_steps`` would count agent steps of the outer env instead.)

    :param image_size: Side of the square images, or ``(height, width)``
    :param frame_stack: Number of stacked RGB frames
    :param action_repeat: Environment steps per agent step
    :param episode_length: Episode length in environment steps
    :param channels_first: ``(frame_stack * 3, H, W)`` observations (default) or ``(H, W, frame_stack * 3)``
    :param render_mode: ``None``, ``"rgb_array"`` (the frames are always rendered offscreen) or ``"human"``
        (those frames also shown in a window)
    :param kwargs: Passed to ``gymnasium.make("Pendulum-v1", ...)`` (e.g. ``g``)
    """
    check_render_mode(render_mode)
    configure_pygame_headless()
    height, width = image_hw(image_size)
    env = gym.make(
        "Pendulum-v1", render_mode="rgb_array", max_episode_steps=episode_length, disable_env_checker=True, **kwargs
    )
    env.unwrapped.screen_dim = max(height, width)  # type: ignore[attr-defined]  # gymnasium's Env stub has no screen_dim; the classic-control env sets it
    return show_frames(pixel_observations(env, (height, width), frame_stack, action_repeat, channels_first), render_mode)


def make_car_racing_pixels(
    image_size: int | tuple[int, int] = 84,
    frame_stack: int = 3,
    action_repeat: int = 4,
    episode_length: int = 1000,
    channels_first: bool = True,
    render_mode: str | None = None,
    **kwargs: Any,
) -> gym.Env:
    """
    CarRacing-v3 (continuous actions) from its native 96x96 pixels, resized to ``image_size``.

    :param image_size: Side of the square images, or ``(height, width)``; 96 keeps the native frames
    :param frame_stack: Number of stacked RGB frames
    :param action_repeat: Environment steps per agent step (default 4, a common choice for CarRacing)
    :param episode_length: Episode length in environment steps (1000, as CarRacing-v3)
    :param channels_first: ``(frame_stack * 3, H, W)`` observations (default) or ``(H, W, frame_stack * 3)``
    :param render_mode: ``None``, ``"rgb_array"`` or ``"human"``; ``"rgb_array"`` makes ``render()`` return the
        large 600x400 view (for videos), at extra cost per step, and ``"human"`` shows that view in a window
    :param kwargs: Passed to ``gymnasium.make("CarRacing-v3", ...)`` (e.g. ``domain_randomize``)
    """
    check_render_mode(render_mode)
    configure_pygame_headless()
    env = gym.make(
        "CarRacing-v3",
        continuous=True,
        render_mode="rgb_array" if render_mode == "human" else render_mode,
        max_episode_steps=episode_length,
        disable_env_checker=True,
        **kwargs,
    )
    return show_frames(pixel_observations(env, image_size, frame_stack, action_repeat, channels_first), render_mode)


def make_mujoco_pixels(
    env_id: str,
    image_size: int | tuple[int, int] = 84,
    frame_stack: int = 3,
    action_repeat: int = 1,
    fast_render: bool = False,
    channels_first: bool = True,
    render_mode: str | None = None,
    **kwargs: Any,
) -> gym.Env:
    """
    A Gymnasium MuJoCo task (``HalfCheetah-v5``, ``Reacher-v5``...) rendered offscreen at ``image_size``.

    Sets ``MUJOCO_GL=egl`` unless ``MUJOCO_GL`` is set (see :mod:`sb3_sacae.envs.headless`).

    :param env_id: Gymnasium MuJoCo id
    :param image_size: Side of the square images, or ``(height, width)``
    :param frame_stack: Number of stacked RGB frames
    :param action_repeat: Environment steps per agent step, on top of the task's own ``frame_skip``
    :param fast_render: Turn shadows and anti-aliasing off: several times faster software rendering, but
        the images differ from the default look
    :param channels_first: ``(frame_stack * 3, H, W)`` observations (default) or ``(H, W, frame_stack * 3)``
    :param render_mode: ``None``, ``"rgb_array"`` (the frames are always rendered offscreen) or ``"human"``
        (those frames also shown in a window)
    :param kwargs: Passed to ``gymnasium.make(env_id, ...)`` (e.g. ``camera_name``, ``max_episode_steps``)
    """
    if not isinstance(env_id, str) or ":" in env_id:
        raise ValueError(
            f"make_mujoco_pixels takes a plain Gymnasium id such as 'HalfCheetah-v5', not {env_id!r}: an id "
            "'module:Name-v0' makes gymnasium import that module. Import the module that registers the task yourself, "
            "then pass its id without the 'module:' prefix"
        )
    check_render_mode(render_mode)
    configure_mujoco_gl()
    height, width = image_hw(image_size)
    with explain_rendering_errors():
        env = gym.make(env_id, render_mode="rgb_array", width=width, height=height, disable_env_checker=True, **kwargs)
        if fast_render:
            model = env.unwrapped.model  # type: ignore[attr-defined]  # gymnasium's Env stub has no model; MuJoCo envs set it
            model.vis.quality.offsamples = 0  # no multisample anti-aliasing
            model.light_castshadow[:] = 0
        return show_frames(pixel_observations(env, (height, width), frame_stack, action_repeat, channels_first), render_mode)


def _mujoco_task(registered_id: str, task_id: str, kwargs: dict[str, Any]) -> gym.Env:
    """``make_mujoco_pixels(task_id, **kwargs)`` for the registered id ``registered_id``, which fixes the task."""
    if "env_id" in kwargs:
        raise ValueError(
            f"{registered_id} always renders {task_id}; it takes no env_id keyword (got {kwargs['env_id']!r}). Remove "
            "env_id from the env kwargs (a zoo log folder's env_kwargs too), or call "
            "sb3_sacae.envs.gym_pixels.make_mujoco_pixels(env_id, ...) from your own code to render another task"
        )
    return make_mujoco_pixels(task_id, **kwargs)


def make_half_cheetah_pixels(**kwargs: Any) -> gym.Env:
    """``HalfCheetahPixels-v5``: HalfCheetah-v5 from pixels; ``kwargs`` as :func:`make_mujoco_pixels` but ``env_id``."""
    return _mujoco_task("HalfCheetahPixels-v5", "HalfCheetah-v5", kwargs)


def make_reacher_pixels(**kwargs: Any) -> gym.Env:
    """``ReacherPixels-v5``: Reacher-v5 from pixels; ``kwargs`` as :func:`make_mujoco_pixels` but ``env_id``."""
    return _mujoco_task("ReacherPixels-v5", "Reacher-v5", kwargs)
