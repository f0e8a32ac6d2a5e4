"""A HerReplayBuffer saves and loads without pickle, and checkpoints that save the buffer work with it."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from stable_baselines3 import HerReplayBuffer
from stable_baselines3.common.callbacks import CheckpointCallback

from sb3_sacae import SACAE
from tests.conftest import TEST_DEVICE


class ReachGoal(gym.Env):
    """A point moved towards a goal drawn at reset: a goal-conditioned env with compute_reward, 10 steps an episode."""

    def __init__(self):
        box = spaces.Box(-1, 1, (2,), np.float32)
        self.observation_space = spaces.Dict(observation=box, achieved_goal=box, desired_goal=box)
        self.action_space = spaces.Box(-1, 1, (2,), np.float32)

    def _obs(self):
        return dict(observation=self.position.copy(), achieved_goal=self.position.copy(), desired_goal=self.goal.copy())

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.position, self.t = np.zeros(2, np.float32), 0
        self.goal = self.np_random.uniform(-1, 1, 2).astype(np.float32)
        return self._obs(), {}

    def compute_reward(self, achieved_goal, desired_goal, info):
        return -(np.linalg.norm(np.asarray(achieved_goal) - np.asarray(desired_goal), axis=-1) > 0.1).astype(np.float32)

    def step(self, action):
        self.position = np.clip(self.position + 0.1 * action, -1, 1).astype(np.float32)
        self.t += 1
        return self._obs(), float(self.compute_reward(self.position, self.goal, {})), False, self.t >= 10, {}


def her_model(**buffer_kwargs) -> SACAE:
    return SACAE(
        "MultiInputPolicy",
        ReachGoal(),
        replay_buffer_class=HerReplayBuffer,
        replay_buffer_kwargs=buffer_kwargs or None,
        policy_kwargs=dict(net_arch=[16], features_dim=8, mlp_encoder_arch=[16]),
        batch_size=8,
        learning_starts=20,
        buffer_size=200,
        seed=0,
        device=TEST_DEVICE,
    )


def test_her_buffers_round_trip_and_training_goes_on(tmp_path):
    model = her_model()
    model.learn(45)  # four episodes and a half: the last one unfinished
    model.save_replay_buffer(tmp_path / "buffer")
    saved = model.replay_buffer

    fresh = her_model()
    fresh.load_replay_buffer(tmp_path / "buffer.npz", truncate_last_traj=False)
    loaded = fresh.replay_buffer
    assert loaded.pos == saved.pos == 45 and loaded.env is fresh.env  # relabels with the loading model's env
    for key in saved.observations:
        np.testing.assert_array_equal(loaded.observations[key], saved.observations[key])
    for name in ("actions", "rewards", "dones", "ep_start", "ep_length", "_current_ep_start"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(saved, name))

    # as SB3 does by default: the unfinished episode ends where the file ends, and training goes on from there
    truncated = her_model()
    with pytest.warns(UserWarning, match="last trajectory"):
        truncated.load_replay_buffer(tmp_path / "buffer.npz")
    assert truncated.replay_buffer.ep_length[40, 0] == 5
    truncated.learn(20, reset_num_timesteps=False)
    assert truncated.replay_buffer.ep_start[45, 0] == 45  # the env's next episode starts afresh


def test_a_resumed_checkpoint_bundle_ends_the_episode_it_cut(tmp_path):
    from sb3_sacae.callbacks import CheckpointBundleCallback
    from sb3_sacae.checkpoints import resume_from_bundle

    model = her_model()
    model.learn(45, callback=CheckpointBundleCallback(45, tmp_path))  # in the middle of the fifth episode
    (bundle,) = tmp_path.glob("*_45_steps")
    with pytest.warns(UserWarning):  # the resume says it cannot be exact, and SB3 that it truncates the episode
        resumed = resume_from_bundle(bundle, ReachGoal(), SACAE, device=TEST_DEVICE)
    resumed.learn(10, reset_num_timesteps=False)
    buffer = resumed.replay_buffer
    # the cut episode is rows 40-44 (a bundle is written before its step's transition is stored: 40-43), the env's
    # new one starts after it; relabelling never mixes them
    cut = buffer.ep_start[40, 0], buffer.ep_length[40, 0]
    assert cut[0] == 40 and cut[1] < 10 and buffer.ep_start[cut[0] + cut[1], 0] == cut[0] + cut[1]


def test_checkpoints_that_save_the_buffer_work_with_her(tmp_path):
    model = her_model()
    model.learn(40, callback=CheckpointCallback(20, str(tmp_path), save_replay_buffer=True))
    # SB3's callback names the files; their content is sb3_sacae's pickle-free format
    fresh = her_model()
    fresh.load_replay_buffer(tmp_path / "rl_model_replay_buffer_40_steps.pkl", truncate_last_traj=False)
    # SB3 calls the callbacks before it stores the step's transition
    assert fresh.replay_buffer.pos == 39
    np.testing.assert_array_equal(fresh.replay_buffer.actions[:39], model.replay_buffer.actions[:39])


def test_her_buffers_that_copy_info_dicts_are_refused_with_the_fix(tmp_path):
    model = her_model(copy_info_dict=True)
    model.learn(25)
    with pytest.raises(TypeError, match="copy_info_dict=False"):
        model.save_replay_buffer(tmp_path / "buffer")
