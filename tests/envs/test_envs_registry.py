"""Every pixel env id: registered on import, passes check_env, honours its size / stack / repeat kwargs."""

import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import yaml
from stable_baselines3.common.env_checker import check_env

from sb3_sacae.envs import PIXEL_ENVS, register_envs
from sb3_sacae.envs.dmc import DMC_ACTION_REPEAT

ZOO_YAML = Path(__file__).resolve().parents[2] / "sb3_sacae" / "zoo" / "hyperparams" / "sacae.yml"
SMALL = dict(image_size=64, frame_stack=2, action_repeat=2)

DMC_IDS = [env_id for env_id in PIXEL_ENVS if env_id.startswith("DMC-")]


@pytest.fixture(params=sorted(PIXEL_ENVS))
def small_env(request):
    env = gym.make(request.param, **SMALL)
    yield env
    env.close()


def test_every_id_is_registered_after_import_sb3_sacae():
    code = f"import gymnasium, sb3_sacae; print(sorted(set(gymnasium.registry) & {set(PIXEL_ENVS)!r}))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == str(sorted(PIXEL_ENVS))
    assert len(DMC_IDS) == 6


def test_registration_is_idempotent():
    register_envs()
    register_envs()
    assert set(PIXEL_ENVS) <= set(gym.registry)


def test_import_loads_no_simulator():
    code = (
        "import sys, sb3_sacae.envs; "
        "heavy = [m for m in ('mujoco', 'dm_control', 'shimmy', 'pygame', 'Box2D') if m in sys.modules]; "
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_check_env(small_env):
    check_env(small_env)


def test_kwargs_set_size_stack_and_repeat(small_env):
    assert small_env.observation_space.shape == (6, 64, 64)
    assert small_env.observation_space.dtype == np.uint8
    assert small_env.get_wrapper_attr("frame_stack") == 2
    assert small_env.get_wrapper_attr("action_repeat") == 2
    assert small_env.action_space.dtype == np.float32


def test_steps_report_env_frames(small_env):
    obs, info = small_env.reset(seed=0)
    assert info["env_frames"] == 0
    assert obs.shape == (6, 64, 64)
    # reset repeats the first frame
    assert np.array_equal(obs[:3], obs[3:])
    for step in range(1, 3):
        obs, reward, _, _, info = small_env.step(small_env.action_space.sample())
        assert info["step_env_frames"] == 2
        assert info["env_frames"] == 2 * step
        assert small_env.observation_space.contains(obs)
        assert np.isfinite(reward)


@pytest.mark.parametrize("env_id", DMC_IDS)
def test_dmc_defaults_follow_the_planet_benchmark(env_id):
    _, domain, task, _ = env_id.split("-")
    env = gym.make(env_id)
    assert env.observation_space.shape == (9, 84, 84)
    assert env.get_wrapper_attr("frame_stack") == 3
    assert env.get_wrapper_attr("action_repeat") == DMC_ACTION_REPEAT[(domain, task)]
    assert env.action_space.dtype == np.float32
    env.close()


def test_dmc_episode_is_1000_env_frames():
    env = gym.make("DMC-cartpole-swingup-v0", image_size=64, fast_render=True)
    env.reset(seed=0)
    terminated = truncated = False
    steps = 0
    while not (terminated or truncated):
        _, _, terminated, truncated, info = env.step(env.action_space.sample())
        steps += 1
    env.close()
    assert truncated and not terminated
    assert steps == 125 and info["env_frames"] == 1000


def test_dmc_episode_length_kwarg_counts_env_frames():
    env = gym.make("DMC-cheetah-run-v0", image_size=64, episode_length=12, fast_render=True)
    env.reset(seed=0)
    truncated = [env.step(env.action_space.sample())[3] for _ in range(3)]
    env.close()
    assert truncated == [False, False, True]


def test_dmc_seeding_is_reproducible():
    def first_obs(seed):
        env = gym.make("DMC-reacher-easy-v0", image_size=64, fast_render=True)
        obs, _ = env.reset(seed=seed)
        env.close()
        return obs

    assert np.array_equal(first_obs(3), first_obs(3))
    assert not np.array_equal(first_obs(3), first_obs(4))


def test_dmc_fast_render_changes_the_look_not_the_shape():
    envs = [gym.make("DMC-cheetah-run-v0", image_size=64, fast_render=fast) for fast in (False, True)]
    benchmark, fast = (env.reset(seed=0)[0] for env in envs)
    for env in envs:
        env.close()
    assert benchmark.shape == fast.shape
    assert not np.array_equal(benchmark, fast)


def test_pendulum_draws_at_the_requested_size_without_resizing():
    env = gym.make("PendulumPixels-v1", image_size=48)
    assert env.unwrapped.screen_dim == 48
    assert "ResizeObservation" not in str(env)
    assert env.get_wrapper_attr("action_repeat") == 2
    env.close()


def test_pendulum_episode_is_200_env_frames():
    env = gym.make("PendulumPixels-v1", image_size=32)
    env.reset(seed=0)
    done, steps = False, 0
    while not done:
        _, _, terminated, truncated, info = env.step(env.action_space.sample())
        done, steps = terminated or truncated, steps + 1
    env.close()
    assert steps == 100 and info["env_frames"] == 200


def test_non_square_images():
    env = gym.make("PendulumPixels-v1", image_size=(48, 64))
    assert env.observation_space.shape == (9, 48, 64)
    assert env.reset(seed=0)[0].shape == (9, 48, 64)
    env.close()


def test_human_render_mode_shows_the_frames_and_keeps_observations():
    env = gym.make("PendulumPixels-v1", render_mode="human", image_size=32, frame_stack=2)
    assert env.render_mode == "human"
    obs, _ = env.reset(seed=0)
    assert obs.shape == (6, 32, 32) and obs.dtype == np.uint8
    obs, *_ = env.step(env.action_space.sample())
    assert obs.shape == (6, 32, 32)
    assert env.render() is None  # drawn in the window, as Gymnasium's own "human" environments
    env.close()


def test_unknown_render_mode_is_refused_with_the_accepted_ones():
    with pytest.raises(ValueError, match="'human'"):
        gym.make("PendulumPixels-v1", render_mode="ansi")


@pytest.mark.parametrize("env_id, action_repeat", [("HalfCheetahPixels-v5", 4), ("ReacherPixels-v5", 2)])
def test_mujoco_default_action_repeat_lives_in_the_registration(env_id, action_repeat):
    """The zoo's sacae.yml sets no action_repeat for these ids: the registration is the one place."""
    assert gym.spec(env_id).kwargs["action_repeat"] == action_repeat
    entry = yaml.safe_load(ZOO_YAML.read_text())[env_id]
    assert "action_repeat" not in entry["env_kwargs"]


@pytest.mark.parametrize("env_id", ["HalfCheetahPixels-v5", "ReacherPixels-v5"])
def test_mujoco_ids_fix_their_task_and_import_nothing_a_caller_names(env_id, tmp_path, monkeypatch):
    """``env_id="module:Name-v0"`` in a caller's kwargs (a zoo log folder's env_kwargs) would import ``module``."""
    marker = tmp_path / "pwned"
    (tmp_path / "sacae_evil_env.py").write_text(f"import pathlib\npathlib.Path({str(marker)!r}).touch()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ValueError, match="takes no env_id keyword"):
        gym.make(env_id, env_id="sacae_evil_env:Evil-v0")
    assert "env_id" not in gym.spec(env_id).kwargs
    from sb3_sacae.envs.gym_pixels import make_mujoco_pixels

    with pytest.raises(ValueError, match="plain Gymnasium id"):
        make_mujoco_pixels("sacae_evil_env:Evil-v0")
    assert not marker.exists()
