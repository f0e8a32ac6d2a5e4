"""Atari with discrete SAC: the zoo preset and a few steps of Pong through the usual Atari wrappers (tiny nets)."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from stable_baselines3.common.env_util import make_atari_env
from stable_baselines3.common.vec_env import VecFrameStack, VecTransposeImage

from sb3_sacae import SACAE
from sb3_sacae.buffers import FrameStackReplayBuffer
from sb3_sacae.discrete import CategoricalActor
from tests.conftest import TEST_DEVICE

ROOT = Path(__file__).resolve().parents[2]
ENV_ID = "ALE/Pong-v5"
TINY_MODEL = dict(
    batch_size=8, buffer_size=200, learning_starts=16, policy_kwargs=dict(features_dim=8, n_filters=4, net_arch=[16])
)


def _register_ale() -> None:
    """Register the ALE ids (rl_zoo3 does it itself), or skip when ale-py or its bundled ROMs are missing."""
    gym = pytest.importorskip("gymnasium")
    ale_py = pytest.importorskip("ale_py", reason="ale-py (gymnasium[atari]) is not installed")
    gym.register_envs(ale_py)
    try:
        gym.make(ENV_ID).close()
    except Exception as error:  # ROMs not bundled in this ale-py build
        pytest.skip(f"{ENV_ID} cannot be made: {error}")


def test_atari_preset_uses_the_zoo_atari_conventions():
    entry = yaml.safe_load((ROOT / "hyperparams" / "sacae.yml").read_text())["atari"]
    assert entry["env_wrapper"] == ["stable_baselines3.common.atari_wrappers.AtariWrapper"]
    assert entry["frame_stack"] == 4 and entry["env_kwargs"] == {"frameskip": 1}  # the wrapper skips, not ALE v5
    assert "policy" not in entry and entry["target_entropy"] == "auto"  # CnnPolicy chosen from the images
    # SAC-AE's machinery values are kept
    assert entry["encoder_tau"] == 0.05 and entry["tau"] == 0.01 and entry["decoder_update_interval"] == 1
    # every key except the zoo's own is a SACAE argument
    zoo_keys = {"n_timesteps", "env_wrapper", "frame_stack", "env_kwargs", "policy", "policy_kwargs"}
    arguments = set(SACAE.__init__.__code__.co_varnames[: SACAE.__init__.__code__.co_argcount])
    assert set(entry) - zoo_keys <= arguments


def test_pong_through_the_atari_wrappers_learns_a_few_steps():
    _register_ale()
    env = VecFrameStack(make_atari_env(ENV_ID, n_envs=1, seed=0, env_kwargs={"frameskip": 1}), n_stack=4)
    model = SACAE("CnnPolicy", env, seed=0, device=TEST_DEVICE, **TINY_MODEL)  # VecTransposeImage is added by SB3
    assert isinstance(model.get_env(), VecTransposeImage) and model.observation_space.shape == (4, 84, 84)
    assert isinstance(model.actor, CategoricalActor) and model.actor.action_logits.out_features == 6
    assert isinstance(model.replay_buffer, FrameStackReplayBuffer) and model.replay_buffer.frame_stack == 4
    assert model.target_entropy == pytest.approx(0.98 * np.log(6))
    model.learn(24)
    actions = model.replay_buffer.actions[: model.replay_buffer.pos]
    assert ((actions >= 0) & (actions < 6)).all() and np.issubdtype(actions.dtype, np.integer)
    action, _ = model.predict(model.get_env().reset(), deterministic=True)
    assert action.shape == (1,) and 0 <= int(action[0]) < 6


def test_zoo_trains_pong_with_the_atari_preset(tmp_path):
    _register_ale()
    environ = {key: value for key, value in os.environ.items() if key != "SB3_SACAE_NO_ZOO_HOOK"}
    environ.update(PYTHONPATH=str(ROOT), MPLBACKEND="Agg", OMP_NUM_THREADS="1")
    hyperparams = [f"{key}:{value}" for key, value in TINY_MODEL.items()]
    command = [sys.executable, "-m", "sb3_sacae.zoo", "train", "--algo", "sacae", "--env", ENV_ID, "-n", "32", "-f", "logs"]
    result = subprocess.run(
        [*command, "--seed", "1", "--eval-freq", "-1", "--hyperparams", *hyperparams],
        cwd=tmp_path,
        env=environ,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, f"stdout:\n{result.stdout[-3000:]}\nstderr:\n{result.stderr[-5000:]}"
    assert "Stacking 4 frames" in result.stdout and "AtariWrapper" in result.stdout
    assert (tmp_path / "logs" / "sacae" / "ALE-Pong-v5_1" / "ALE-Pong-v5.zip").is_file()
