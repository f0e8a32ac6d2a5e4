"""Demonstrations enter the replay buffer as SB3's learn() would have stored them, or are refused with the reason."""

import numpy as np
import pytest
from gymnasium import spaces
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.vec_env import DummyVecEnv

from sb3_sacae.buffers import FrameStackReplayBuffer
from sb3_sacae.demonstrations import add_demonstrations, load_demonstrations, record_demonstrations, save_demonstrations
from sb3_sacae.envs import ChannelFrameStack
from tests.conftest import TinyPixelEnv, tiny_model


class EndingEnv(TinyPixelEnv):
    """Even episodes end in a terminal state after 5 steps, odd ones hit the time limit after 7; actions in [-2, 2]."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.action_space = spaces.Box(-2.0, 2.0, (2,), np.float32)
        self.episodes = -1

    def reset(self, *, seed=None, options=None):
        self.episodes += 1
        return super().reset(seed=seed, options=options)

    def step(self, action):
        obs, reward, _, _, info = super().step(np.asarray(action) / 2)
        terminated = self.episodes % 2 == 0 and self.t >= 5
        return obs, reward, terminated, self.episodes % 2 == 1 and self.t >= 7, info


def stacked_env():
    """Channel-last frames stacked 3 deep: (32, 32, 9), which SB3 transposes to (9, 32, 32) for the model."""
    return ChannelFrameStack(EndingEnv(shape=(32, 32, 3), channel_last=True), 3, channels_first=False)


def assert_buffer_holds(buffer, model, data, rows):
    """Transitions rows of the buffer (env 0) are the recorded ones: actions scaled, timeouts not done."""
    samples = buffer._get_samples(np.asarray(rows))
    np.testing.assert_array_equal(samples.observations.cpu().numpy(), data["observations"])
    np.testing.assert_array_equal(samples.next_observations.cpu().numpy(), data["next_observations"])
    np.testing.assert_allclose(samples.actions.cpu().numpy(), model.policy.scale_action(data["actions"]), rtol=0, atol=1e-7)
    np.testing.assert_array_equal(samples.rewards.cpu().numpy()[:, 0], data["rewards"])
    np.testing.assert_array_equal(samples.dones.cpu().numpy()[:, 0], data["terminated"])


def test_sb3_replay_buffer_holds_the_recorded_transitions(tmp_path):
    data = record_demonstrations(EndingEnv(), None, 4, path=tmp_path / "d.npz", seed=0)
    assert data["terminated"].sum() == 2 and data["truncated"].sum() == 2
    model = tiny_model(EndingEnv())
    assert type(model.replay_buffer) is ReplayBuffer
    assert add_demonstrations(model, tmp_path / "d.npz") == 24
    buffer = model.replay_buffer
    assert buffer.pos == 24 and model.num_timesteps == 0
    assert_buffer_holds(buffer, model, data, range(24))
    np.testing.assert_array_equal(buffer.timeouts[:24, 0], data["truncated"])
    np.testing.assert_array_equal(buffer.dones[:24, 0], data["terminated"] | data["truncated"])


def test_frame_stack_buffer_holds_the_recorded_transitions(tmp_path):
    data = record_demonstrations(stacked_env(), None, 4, path=tmp_path / "d.npz", seed=0)
    assert data["observations"].shape[1:] == (32, 32, 9)  # recorded channel-last, as the raw env returns them
    model = tiny_model(stacked_env())
    assert isinstance(model.replay_buffer, FrameStackReplayBuffer) and model.observation_space.shape == (9, 32, 32)
    add_demonstrations(model, tmp_path / "d.npz")
    channel_first = {**data, **{k: np.moveaxis(data[k], -1, 1) for k in ("observations", "next_observations")}}
    assert_buffer_holds(model.replay_buffer, model, channel_first, range(24))
    # Frames are shared: 4 episodes of 6 steps need about 4 * (3 + 6) frames, not 24 * 6
    assert model.replay_buffer.frame_count <= 4 * 9


def test_sampled_transitions_are_recorded_ones(tmp_path):
    data = record_demonstrations(stacked_env(), None, 4, seed=1)
    model = tiny_model(stacked_env())
    add_demonstrations(model, data)
    recorded = {
        np.moveaxis(obs, -1, 0).tobytes(): (np.moveaxis(nxt, -1, 0), action, reward, terminated)
        for obs, nxt, action, reward, terminated in zip(
            data["observations"], data["next_observations"], data["actions"], data["rewards"], data["terminated"], strict=True
        )
    }
    samples = model.replay_buffer.sample(64)
    for i in range(64):
        nxt, action, reward, terminated = recorded[samples.observations[i].cpu().numpy().tobytes()]
        np.testing.assert_array_equal(samples.next_observations[i].cpu().numpy(), nxt)
        np.testing.assert_allclose(samples.actions[i].cpu().numpy(), model.policy.scale_action(action), atol=1e-7)
        assert samples.rewards[i, 0].item() == reward and samples.dones[i, 0].item() == terminated


def test_several_files_are_added_in_order(tmp_path):
    first = record_demonstrations(EndingEnv(), None, 1, path=tmp_path / "a.npz", seed=0)
    second = record_demonstrations(EndingEnv(), None, 1, path=tmp_path / "b.npz", seed=1)
    model = tiny_model(EndingEnv())
    assert add_demonstrations(model, [tmp_path / "a.npz", tmp_path / "b.npz"]) == 10
    both = {k: np.concatenate([first[k], second[k]]) for k in first if k != "metadata"}
    assert_buffer_holds(model.replay_buffer, model, both, range(10))


def test_two_env_buffers_get_one_contiguous_run_per_env(tmp_path):
    data = record_demonstrations(EndingEnv(), None, 3, seed=0)  # 5 + 7 + 5 = 17 transitions
    model = tiny_model(DummyVecEnv([EndingEnv, EndingEnv]))
    with pytest.warns(UserWarning, match="1 of 17 transitions left out"):
        assert add_demonstrations(model, data) == 16
    buffer = model.replay_buffer
    assert buffer.pos == 8
    np.testing.assert_array_equal(buffer.observations[:8, 0], data["observations"][:8])
    np.testing.assert_array_equal(buffer.observations[:8, 1], data["observations"][8:16])
    np.testing.assert_array_equal(buffer.next_observations[:8, 1], data["next_observations"][8:16])


def test_optimize_memory_usage_buffer_gets_the_same_transitions(tmp_path):
    data = record_demonstrations(EndingEnv(), None, 4, seed=0)
    model = tiny_model(EndingEnv(), optimize_memory_usage=True, replay_buffer_kwargs=dict(handle_timeout_termination=False))
    add_demonstrations(model, data)
    # This SB3 buffer keeps one copy of each observation: next_obs of the last row of an episode is overwritten by
    # the next reset observation, as in SB3's own learn(); within episodes it is exact
    rows = np.flatnonzero(~(data["terminated"] | data["truncated"]))
    samples = model.replay_buffer._get_samples(rows)
    np.testing.assert_array_equal(samples.next_observations.cpu().numpy(), data["next_observations"][rows])


@pytest.mark.parametrize(
    "env, message",
    [
        (lambda: TinyPixelEnv(shape=(3, 24, 24)), r"observations have shape \(3, 24, 24\).*expects \(3, 32, 32\)"),
        (lambda: TinyPixelEnv(shape=(6, 32, 32)), r"observations have shape \(6, 32, 32\)"),
    ],
)
def test_observation_mismatch_is_refused_with_both_shapes(env, message):
    data = record_demonstrations(env(), None, 1)
    model = tiny_model()
    with pytest.raises(ValueError, match=message):
        add_demonstrations(model, data)
    assert model.replay_buffer.pos == 0


def test_dtype_action_shape_and_bounds_mismatch_are_refused(tmp_path):
    data = record_demonstrations(TinyPixelEnv(episode_length=3), None, 1)
    data.pop("metadata")
    model = tiny_model()
    as_float = {
        **data,
        "observations": data["observations"].astype(np.float32),
        "next_observations": data["next_observations"].astype(np.float32),
    }
    with pytest.raises(ValueError, match="observations are float32, but the model expects uint8"):
        add_demonstrations(model, save_demonstrations(tmp_path / "f.npz", **as_float))
    with pytest.raises(ValueError, match=r"actions have shape \(3,\), but the model expects \(2,\)"):
        add_demonstrations(model, {**data, "actions": np.zeros((3, 3), np.float32)})
    with pytest.raises(ValueError, match=r"1 of 3 actions lie outside.*clip them"):
        add_demonstrations(model, {**data, "actions": np.float32([[0, 0], [1.5, 0], [0, 0]])})
    assert model.replay_buffer.pos == 0


def test_files_are_checked_before_anything_is_added(tmp_path):
    good = record_demonstrations(TinyPixelEnv(), None, 1, path=tmp_path / "good.npz")
    record_demonstrations(TinyPixelEnv(shape=(3, 24, 24)), None, 1, path=tmp_path / "bad.npz")
    model = tiny_model()
    with pytest.raises(ValueError, match=r"bad\.npz"):
        add_demonstrations(model, [tmp_path / "good.npz", tmp_path / "bad.npz"])
    assert model.replay_buffer.pos == 0
    assert len(load_demonstrations(tmp_path / "good.npz")["observations"]) == len(good["observations"])
