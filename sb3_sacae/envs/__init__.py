"""Pixel environments for SAC-AE, registered with Gymnasium on import.

After ``import sb3_sacae`` (or ``import sb3_sacae.envs``)::

    env = gymnasium.make("DMC-cheetah-run-v0")           # (9, 84, 84) uint8, action repeat 4
    env = gymnasium.make("PendulumPixels-v1", image_size=64, frame_stack=2)

Every id takes ``image_size``, ``frame_stack`` and ``action_repeat`` keyword arguments (see the factories
in :mod:`sb3_sacae.envs.gym_pixels` and :mod:`sb3_sacae.envs.dmc`). Importing this package is cheap: the
entry points are strings, so pygame, Box2D, MuJoCo and dm_control load only when an environment is made.
"""

from __future__ import annotations

from typing import Any

from gymnasium.envs.registration import register, registry

from sb3_sacae.envs.headless import HeadlessRenderingError
from sb3_sacae.envs.wrappers import ActionRepeat, ChannelFrameStack, Float32Action, pixel_observations

# the PlaNet benchmark tasks of SAC-AE
DMC_TASKS: tuple[tuple[str, str], ...] = (
    ("cartpole", "swingup"),
    ("reacher", "easy"),
    ("cheetah", "run"),
    ("finger", "spin"),
    ("ball_in_cup", "catch"),
    ("walker", "walk"),
)

# id -> (entry point, fixed kwargs)
PIXEL_ENVS: dict[str, tuple[str, dict[str, Any]]] = {
    "PendulumPixels-v1": ("sb3_sacae.envs.gym_pixels:make_pendulum_pixels", {}),
    "CarRacingPixels-v3": ("sb3_sacae.envs.gym_pixels:make_car_racing_pixels", {}),
    # action repeat 4 for HalfCheetah and 2 for Reacher: the defaults the zoo's sacae.yml relies on
    # one factory per MuJoCo id, which fixes the task: a caller's kwargs (a zoo log folder's env_kwargs) cannot
    # replace it with another id (gymnasium imports the module of an id "module:Name-v0")
    "HalfCheetahPixels-v5": ("sb3_sacae.envs.gym_pixels:make_half_cheetah_pixels", {"action_repeat": 4}),
    "ReacherPixels-v5": (
        "sb3_sacae.envs.gym_pixels:make_reacher_pixels",
        # top-down view of the whole arena: the default camera leaves the arm a few pixels wide at 84 px
        {
            "action_repeat": 2,
            "default_camera_config": {"trackbodyid": 0, "distance": 0.8, "elevation": -90.0},
        },
    ),
    **{
        f"DMC-{domain}-{task}-v0": ("sb3_sacae.envs.dmc:make_dmc", {"domain": domain, "task": task})
        for domain, task in DMC_TASKS
    },
}


#: Keyword arguments of the factories that name the task: fixed by each registered id, never taken from a caller
TASK_KWARGS = ("env_id", "domain", "task")


def register_envs() -> None:
    """Register every id of :data:`PIXEL_ENVS` with Gymnasium (idempotent)."""
    for env_id, (entry_point, kwargs) in PIXEL_ENVS.items():
        if env_id not in registry:
            register(id=env_id, entry_point=entry_point, kwargs=dict(kwargs))


register_envs()

__all__ = [
    "PIXEL_ENVS",
    "TASK_KWARGS",
    "ActionRepeat",
    "ChannelFrameStack",
    "Float32Action",
    "HeadlessRenderingError",
    "pixel_observations",
    "register_envs",
]
