"""Headless rendering: MUJOCO_GL defaults to egl without overriding the user, and failures name the fix."""

import os
import signal
import subprocess
import sys

import gymnasium as gym
import pytest

from sb3_sacae.envs import headless
from sb3_sacae.envs.headless import HeadlessRenderingError


@pytest.fixture
def no_libraries(monkeypatch):
    """Pretend that no shared library can be found (as on a machine without the Debian packages)."""
    monkeypatch.setattr(headless, "_find_library", lambda name: None)


def test_missing_egl_libraries_say_what_to_install(no_libraries):
    with pytest.raises(HeadlessRenderingError) as error:
        headless.check_mujoco_gl("egl")
    message = str(error.value)
    assert "libEGL" in message
    assert "apt-get install -y libegl1 libegl-mesa0 libgl1-mesa-dri libopengl0" in message
    assert "MUJOCO_GL=egl" in message
    assert "MUJOCO_GL=osmesa" in message  # the software fallback


def test_missing_osmesa_says_what_to_install(no_libraries):
    with pytest.raises(HeadlessRenderingError, match="apt-get install -y libosmesa6 libgl1-mesa-dri") as error:
        headless.check_mujoco_gl("osmesa")
    assert "libOSMesa" in str(error.value)


def test_env_factory_fails_before_importing_mujoco_when_libraries_are_missing(no_libraries, monkeypatch):
    monkeypatch.setenv("MUJOCO_GL", "egl")
    with pytest.raises(HeadlessRenderingError, match="apt-get install"):
        gym.make("DMC-cheetah-run-v0")


def test_unknown_backend_is_named(monkeypatch):
    with pytest.raises(HeadlessRenderingError, match="MUJOCO_GL='vulkan' is not a rendering backend"):
        headless.check_mujoco_gl("vulkan")


def test_glfw_without_display_points_to_egl(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(HeadlessRenderingError, match="set MUJOCO_GL=egl"):
        headless.check_mujoco_gl("glfw")


def test_default_backend_is_egl(monkeypatch):
    monkeypatch.delenv("MUJOCO_GL", raising=False)
    monkeypatch.setattr(headless, "check_mujoco_gl", lambda backend: None)
    assert headless.configure_mujoco_gl() == "egl"
    assert os.environ["MUJOCO_GL"] == "egl"


def test_user_backend_is_never_overridden(monkeypatch):
    monkeypatch.setenv("MUJOCO_GL", "osmesa")
    monkeypatch.setattr(headless, "check_mujoco_gl", lambda backend: None)
    assert headless.configure_mujoco_gl() == "osmesa"
    assert os.environ["MUJOCO_GL"] == "osmesa"


def test_opengl_errors_are_explained(monkeypatch):
    monkeypatch.setenv("MUJOCO_GL", "osmesa")
    with pytest.raises(HeadlessRenderingError, match="apt-get install -y libosmesa6") as error:
        with headless.explain_rendering_errors():
            raise AttributeError("'NoneType' object has no attribute 'glGetError'")  # PyOpenGL without libOSMesa
    assert isinstance(error.value.__cause__, AttributeError)


def test_other_errors_pass_through():
    with pytest.raises(KeyError):
        with headless.explain_rendering_errors():
            raise KeyError("cheetah")


def test_headless_pygame_uses_the_dummy_video_driver(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.delenv("SDL_VIDEODRIVER", raising=False)
    headless.configure_pygame_headless()
    assert os.environ["SDL_VIDEODRIVER"] == "dummy"


def run_python(code: str, unset: tuple[str, ...], **variables: str) -> subprocess.CompletedProcess:
    """Run ``python -c code`` in a fresh process, without the environment variables ``unset`` and with ``variables``."""
    env = {key: value for key, value in os.environ.items() if key not in unset} | variables
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)


def _make_dmc_in_subprocess(mujoco_gl: str | None) -> subprocess.CompletedProcess:
    code = (
        "import os, gymnasium as gym, sb3_sacae.envs; "
        "e = gym.make('DMC-cartpole-swingup-v0', image_size=64, fast_render=True); "
        "o, _ = e.reset(seed=0); e.step(e.action_space.sample()); e.close(); "
        "print(os.environ['MUJOCO_GL'], o.shape, o.max() > 0)"
    )
    return run_python(code, ("MUJOCO_GL",), **({"MUJOCO_GL": mujoco_gl} if mujoco_gl is not None else {}))


@pytest.mark.parametrize("mujoco_gl", [None, "egl", "osmesa"])
def test_dmc_renders_headless_with_each_backend(mujoco_gl):
    if mujoco_gl is not None and headless.missing_libraries(mujoco_gl):
        pytest.skip(f"MUJOCO_GL={mujoco_gl}: missing {headless.missing_libraries(mujoco_gl)}")
    result = _make_dmc_in_subprocess(mujoco_gl)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split("\n")[-2] == f"{mujoco_gl or 'egl'} (9, 64, 64) True"


def test_unusable_backend_fails_with_the_fix_in_a_fresh_process():
    result = _make_dmc_in_subprocess("vulkan")
    assert result.returncode != 0
    assert "HeadlessRenderingError" in result.stderr
    assert "apt-get install" in result.stderr


def test_pixel_observations_sets_the_backend_for_your_own_mujoco_env():
    code = (
        "import os, gymnasium as gym; from sb3_sacae.envs import pixel_observations; "
        "e = pixel_observations(gym.make('InvertedPendulum-v5', render_mode='rgb_array', width=64, height=64), 64, 2, 1); "
        "print(os.environ['MUJOCO_GL'], e.reset(seed=0)[0].shape); e.close()"
    )
    result = run_python(code, ("MUJOCO_GL",))
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split("\n")[-2] == "egl (6, 64, 64)"


def test_dm_control_imported_too_early_is_explained():
    code = "import shimmy, gymnasium as gym, sb3_sacae.envs; gym.make('DMC-cheetah-run-v0')"
    result = run_python(code, ("MUJOCO_GL", "DISPLAY", "WAYLAND_DISPLAY"))
    assert result.returncode != 0
    assert "set MUJOCO_GL in the environment before Python starts" in result.stderr


def test_pygame_envs_leave_sigterm_to_python():
    """pygame.init() must not install SDL's SIGTERM handler: a training process (or a SubprocVecEnv worker drawing
    Pendulum) has to die on kill / terminate()."""
    code = (
        "import os, signal, time, gymnasium as gym, sb3_sacae.envs; "
        "e = gym.make('PendulumPixels-v1', image_size=32); e.reset(seed=0); "
        "os.kill(os.getpid(), signal.SIGTERM); time.sleep(5); print('survived SIGTERM')"
    )
    result = run_python(code, ("SDL_NO_SIGNAL_HANDLERS",))
    assert result.returncode == -signal.SIGTERM and "survived" not in result.stdout, result.stderr
