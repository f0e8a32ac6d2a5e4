"""n-step returns from the frame-sharing buffer: the same samples as SB3's NStepReplayBuffer, chosen for frame-stacked
models with ``n_steps > 1``, and kept through model and buffer files."""

import warnings

import numpy as np
import pytest
from stable_baselines3.common.buffers import NStepReplayBuffer

from sb3_sacae import SACAE
from sb3_sacae.buffers import FrameStackReplayBuffer
from tests.buffers.test_buffer_matches_sb3 import assert_same_samples
from tests.buffers.test_buffer_streams import FRAME_STACK, stream_spaces, transitions
from tests.conftest import frame_stacked_env, tiny_model


@pytest.mark.parametrize("n_envs, p_irregular, frames_on_device", [(1, 0.0, False), (2, 0.2, False), (2, 0.2, True)])
def test_n_step_samples_equal_sb3_n_step_buffer(n_envs, p_irregular, frames_on_device):
    # episodes of 1 to 7 steps, shorter and longer than n; the ring wraps several times; frames_on_device: the gather
    # from the device copy of the frames (on the CPU a second host copy)
    stream = transitions(n_envs=n_envs, n_steps=150, p_irregular=p_irregular, seed=n_envs)
    kwargs = dict(buffer_size=30 * n_envs, **stream_spaces(), device="cpu", n_envs=n_envs, n_steps=4, gamma=0.9)
    buffer = FrameStackReplayBuffer(**kwargs, frame_stack=FRAME_STACK, frame_margin=6.0, frames_on_device=frames_on_device)
    reference = NStepReplayBuffer(**kwargs)
    for step, transition in enumerate(stream):
        buffer.add(*transition)
        reference.add(*transition)
        assert_same_samples(buffer, reference, seed=step)


def test_n_step_returns_stop_at_episode_ends_and_at_the_newest_transition():
    spaces = stream_spaces()
    buffer = FrameStackReplayBuffer(10, **spaces, device="cpu", frame_stack=FRAME_STACK, n_steps=3, gamma=0.5)
    obs = np.zeros((1, *spaces["observation_space"].shape), dtype=np.uint8)
    for reward, done in [(1.0, False), (2.0, True), (4.0, False), (8.0, False)]:
        buffer.add(obs, obs, np.zeros((1, 2)), np.array([reward]), np.array([done]), [{}])
    samples = buffer._get_samples(np.array([0, 1, 2, 3]))
    # row 0: 1 + 0.5 * 2, then the episode ends; row 2: 4 + 0.5 * 8, the newest row; row 3: 8 alone
    assert samples.rewards.flatten().tolist() == [2.0, 2.0, 8.0, 8.0]
    assert samples.discounts.flatten().tolist() == [0.25, 0.5, 0.25, 0.5]
    assert samples.dones.flatten().tolist() == [1.0, 1.0, 0.0, 0.0]


def test_frame_stacked_models_with_n_steps_get_the_frame_sharing_buffer_and_keep_it(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "n_steps is ignored because a custom replay_buffer_class"
        model = tiny_model(frame_stacked_env((3, 16, 16)), n_steps=3, gamma=0.9)
    assert type(model.replay_buffer) is FrameStackReplayBuffer
    assert (model.replay_buffer.n_steps, model.replay_buffer.gamma, model.replay_buffer.frame_stack) == (3, 0.9, 3)
    model.learn(24)
    assert model.replay_buffer.sample(4).discounts is not None

    model.save(tmp_path / "model.zip")
    model.save_replay_buffer(tmp_path / "buffer")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = SACAE.load(tmp_path / "model.zip", env=frame_stacked_env((3, 16, 16)))
    loaded.load_replay_buffer(tmp_path / "buffer")
    assert type(loaded.replay_buffer) is FrameStackReplayBuffer and loaded.replay_buffer.n_steps == 3
    np.random.seed(0)
    expected = model.replay_buffer.sample(8)
    np.random.seed(0)
    assert_samples_equal(loaded.replay_buffer.sample(8), expected)
    loaded.learn(8, reset_num_timesteps=False)


def test_n_steps_and_gamma_given_to_load_reach_the_buffer(tmp_path):
    model = tiny_model(frame_stacked_env((3, 16, 16)), n_steps=3, gamma=0.99)
    model.save(tmp_path / "model.zip")
    assert "n_steps" not in model.replay_buffer_kwargs  # the model's settings, not the buffer's: not saved twice
    for overrides, expected in [({"n_steps": 5}, (5, 0.99)), ({"gamma": 0.9}, (3, 0.9))]:
        loaded = SACAE.load(tmp_path / "model.zip", env=frame_stacked_env((3, 16, 16)), **overrides)
        assert (loaded.replay_buffer.n_steps, loaded.replay_buffer.gamma) == expected
    one_step = SACAE.load(tmp_path / "model.zip", env=frame_stacked_env((3, 16, 16)), n_steps=1)
    assert one_step.replay_buffer.n_steps == 1 and "n_steps" not in vars(one_step.replay_buffer)


def test_sb3_n_step_buffer_named_by_the_user_is_kept_through_save_and_load(tmp_path):
    # as models saved while frame-stacked n-step models got SB3's buffer: the file names NStepReplayBuffer
    model = tiny_model(frame_stacked_env((3, 16, 16)), n_steps=3, replay_buffer_class=NStepReplayBuffer)
    model.learn(20)
    model.save(tmp_path / "model.zip")
    model.save_replay_buffer(tmp_path / "buffer")
    loaded = SACAE.load(tmp_path / "model.zip", env=frame_stacked_env((3, 16, 16)))
    loaded.load_replay_buffer(tmp_path / "buffer")
    for buffer in (model.replay_buffer, loaded.replay_buffer):
        assert type(buffer) is NStepReplayBuffer and buffer.n_steps == 3


def test_one_step_and_n_step_buffer_files_do_not_mix(tmp_path):
    one_step = tiny_model(frame_stacked_env((3, 16, 16)))
    one_step.learn(20)
    one_step.save_replay_buffer(tmp_path / "buffer")
    n_step = tiny_model(frame_stacked_env((3, 16, 16)), n_steps=3)
    with pytest.raises(
        ValueError, match=r"scalar attributes .* in the file but .*\(only there: \['gamma', 'n_steps'\]\) in the model"
    ):
        n_step.load_replay_buffer(tmp_path / "buffer")


@pytest.mark.parametrize("n_steps, gamma", [(0, 0.99), (2.5, 0.99), (3, 1.5)])
def test_meaningless_n_step_settings_are_refused(n_steps, gamma):
    with pytest.raises(ValueError, match=r"n_steps must be a whole number|gamma must be in"):
        FrameStackReplayBuffer(10, **stream_spaces(), device="cpu", frame_stack=FRAME_STACK, n_steps=n_steps, gamma=gamma)


def assert_samples_equal(samples, expected):
    for name, value in expected._asdict().items():
        assert (getattr(samples, name) is None) == (value is None), name
        if value is not None:
            assert (getattr(samples, name) == value).all(), name
