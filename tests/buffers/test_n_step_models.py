"""n-step returns (``n_steps > 1``, SB3's NStepReplayBuffer) survive save and load with their own n and gamma."""

import warnings

from stable_baselines3.common.buffers import NStepReplayBuffer

from sb3_sacae import SACAE
from tests.conftest import tiny_model


def saved_and_loaded(model: SACAE, path) -> SACAE:
    model.save(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # SB3's "n_steps is ignored because a custom replay_buffer_class" included
        return SACAE.load(path, env=model.get_env())


def test_a_loaded_n_step_model_keeps_its_n_and_gamma(tmp_path):
    model = tiny_model(n_steps=5, gamma=0.9)

    loaded = saved_and_loaded(model, tmp_path / "model.zip")

    for buffer in (model.replay_buffer, loaded.replay_buffer):
        assert type(buffer) is NStepReplayBuffer and (buffer.n_steps, buffer.gamma) == (5, 0.9)
    loaded.learn(20)  # and it trains on them


def test_files_saved_without_the_buffers_arguments_get_them_from_the_model(tmp_path):
    model = tiny_model(n_steps=5, gamma=0.9)
    model.replay_buffer_kwargs = {}  # as files saved before the arguments were kept: the buffer's defaults were 3, 0.99

    loaded = saved_and_loaded(model, tmp_path / "model.zip")

    assert (loaded.replay_buffer.n_steps, loaded.replay_buffer.gamma) == (5, 0.9)


def test_an_n_step_buffer_passed_by_the_user_is_built_as_given(tmp_path):
    kwargs = dict(n_steps=4, gamma=0.95)
    model = tiny_model(replay_buffer_class=NStepReplayBuffer, replay_buffer_kwargs=kwargs)  # SACAE's n_steps stays 1

    model.save(tmp_path / "model.zip")
    loaded = SACAE.load(tmp_path / "model.zip", env=model.get_env())

    for buffer in (model.replay_buffer, loaded.replay_buffer):
        assert type(buffer) is NStepReplayBuffer and (buffer.n_steps, buffer.gamma) == (4, 0.95)
    assert loaded.replay_buffer_kwargs == kwargs
