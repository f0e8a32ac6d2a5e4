"""Headless MuJoCo / DeepMind Control rendering: pick a backend, and say what to install when it fails.

MuJoCo renders through the backend named by ``MUJOCO_GL`` (``egl``, ``osmesa`` or ``glfw``), read when
``dm_control`` is first imported and when Gymnasium's MuJoCo renderer is created. Unset, ``dm_control``
picks ``glfw``, which needs a display. The environment factories call :func:`configure_mujoco_gl` before
importing MuJoCo code: it sets ``MUJOCO_GL=egl`` unless the user chose a backend (never overriding it) and
checks that the backend's system libraries are present. EGL works without a display, uses the GPU when
there is one and Mesa's software renderer (llvmpipe) otherwise; ``osmesa`` is the pure-software fallback.
"""

from __future__ import annotations

import ctypes.util
import functools
import glob
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

DEFAULT_MUJOCO_GL = "egl"

# backend -> (shared libraries it loads, Debian packages that provide them and the Mesa driver)
BACKEND_REQUIREMENTS: dict[str, tuple[tuple[str, ...], str]] = {
    "egl": (("EGL", "OpenGL"), "libegl1 libegl-mesa0 libgl1-mesa-dri libopengl0"),
    "osmesa": (("OSMesa",), "libosmesa6 libgl1-mesa-dri"),
    "glfw": (("GL",), "libgl1 libglfw3"),
}

_EGL_VENDOR_DIRS = ("/usr/share/glvnd/egl_vendor.d", "/etc/glvnd/egl_vendor.d")

# words that identify an OpenGL / context failure in the errors raised by PyOpenGL, mujoco and dm_control
_GL_ERROR_MARKERS = ("OpenGL", "glGetError", "EGL", "egl", "OSMesa", "osmesa", "GLFW", "glfw", "mjr_makeContext", "display")


class HeadlessRenderingError(RuntimeError):
    """MuJoCo could not render: a system library is missing or ``MUJOCO_GL`` names an unusable backend."""


def install_hint(backend: str) -> str:
    """What to install (and which ``MUJOCO_GL`` to set) so that ``backend`` renders without a display."""
    packages = BACKEND_REQUIREMENTS.get(backend, BACKEND_REQUIREMENTS[DEFAULT_MUJOCO_GL])[1]
    return (
        f"Install the system libraries with `apt-get install -y {packages}` "
        "(or run scripts/install_system_deps.sh from the sb3-sacae repository) and set MUJOCO_GL="
        f"{backend if backend in BACKEND_REQUIREMENTS else DEFAULT_MUJOCO_GL} before starting Python. "
        "Software rendering without EGL: `apt-get install -y libosmesa6 libgl1-mesa-dri` and MUJOCO_GL=osmesa."
    )


@functools.cache
def _find_library(name: str) -> str | None:
    return ctypes.util.find_library(name)


def missing_libraries(backend: str) -> list[str]:
    """Shared libraries (or the EGL vendor driver) that ``backend`` needs and this machine lacks."""
    libraries, _ = BACKEND_REQUIREMENTS[backend]
    missing = [f"lib{name}" for name in libraries if _find_library(name) is None]
    if backend == "egl" and not any(glob.glob(os.path.join(d, "*.json")) for d in _EGL_VENDOR_DIRS):
        missing.append("an EGL vendor driver (glvnd egl_vendor.d is empty)")
    return missing


def check_mujoco_gl(backend: str) -> None:
    """Raise :class:`HeadlessRenderingError`, naming the fix, when ``backend`` cannot work here."""
    if backend not in BACKEND_REQUIREMENTS:
        raise HeadlessRenderingError(
            f"MUJOCO_GL={backend!r} is not a rendering backend; use one of {sorted(BACKEND_REQUIREMENTS)}. "
            + install_hint(DEFAULT_MUJOCO_GL)
        )
    if backend == "glfw" and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise HeadlessRenderingError(
            "MUJOCO_GL=glfw needs a display and none is set (no DISPLAY): on a headless machine set "
            "MUJOCO_GL=egl (or osmesa). " + install_hint(DEFAULT_MUJOCO_GL)
        )
    missing = missing_libraries(backend)
    if missing:
        raise HeadlessRenderingError(
            f"MuJoCo rendering with MUJOCO_GL={backend} needs {', '.join(missing)}, not found on this machine. "
            + install_hint(backend)
        )
    loaded = sys.modules.get("dm_control._render")
    loaded_backend = getattr(loaded, "BACKEND", backend) if loaded is not None else backend
    if loaded_backend != backend:
        raise HeadlessRenderingError(
            f"dm_control was imported with rendering backend {loaded_backend!r} before MUJOCO_GL={backend} "
            "took effect: set MUJOCO_GL in the environment before Python starts (or before importing "
            "dm_control / shimmy)."
        )


def configure_pygame_headless() -> None:
    """Without a display, point SDL (pygame) at its dummy video driver unless ``SDL_VIDEODRIVER`` is set; with or
    without one, keep SDL from installing its signal handlers unless ``SDL_NO_SIGNAL_HANDLERS`` is set.

    Pendulum and CarRacing draw with pygame, which initialises a video driver even for ``rgb_array``
    frames; with no display SDL then prints "XDG_RUNTIME_DIR is invalid" for nothing. ``pygame.init()`` also makes
    SDL catch SIGTERM for an event queue nobody reads, so a training process ignored ``kill`` and a
    ``SubprocVecEnv`` worker survived ``terminate()`` (a run whose eval env was never closed hung at exit).
    """
    os.environ.setdefault("SDL_NO_SIGNAL_HANDLERS", "1")
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")


def configure_mujoco_gl() -> str:
    """Set ``MUJOCO_GL`` to :data:`DEFAULT_MUJOCO_GL` unless already set, check it, and return it."""
    backend = os.environ.setdefault("MUJOCO_GL", DEFAULT_MUJOCO_GL)
    check_mujoco_gl(backend)
    return backend


@contextmanager
def explain_rendering_errors() -> Iterator[None]:
    """Turn the OpenGL errors of PyOpenGL / mujoco / dm_control into a :class:`HeadlessRenderingError`."""
    try:
        yield
    except HeadlessRenderingError:
        raise
    except Exception as error:
        text = f"{type(error).__name__}: {error}"
        if not any(marker in text for marker in _GL_ERROR_MARKERS):
            raise
        backend = os.environ.get("MUJOCO_GL", DEFAULT_MUJOCO_GL)
        raise HeadlessRenderingError(
            f"MuJoCo could not render with MUJOCO_GL={backend} ({text}). " + install_hint(backend)
        ) from error
