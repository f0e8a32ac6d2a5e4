"""save()/load() round-trip every state; nothing is silently re-initialised; learn() continues."""

import numpy as np
import pytest
import torch as th

from sb3_sacae import SACAE
from tests.conftest import TEST_DEVICE


def _state_equal(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        th.testing.assert_close(a[key], b[key], rtol=0, atol=0)


def _optimizer_states_equal(a: th.optim.Optimizer, b: th.optim.Optimizer) -> None:
    state_a, state_b = a.state_dict(), b.state_dict()
    assert state_a["param_groups"] == state_b["param_groups"]
    assert state_a["state"].keys() == state_b["state"].keys() and state_a["state"]
    for key, value in state_a["state"].items():
        for name, tensor in value.items():
            th.testing.assert_close(tensor, state_b["state"][key][name], rtol=0, atol=0)


@pytest.fixture
def trained_and_loaded(model, tmp_path, env):
    model.learn(16, reset_num_timesteps=False)
    model.save(tmp_path / "model.zip")
    return model, SACAE.load(tmp_path / "model.zip", env=env, device=TEST_DEVICE)


def test_networks_round_trip(trained_and_loaded):
    model, loaded = trained_and_loaded
    _state_equal(model.policy.state_dict(), loaded.policy.state_dict())
    for name in ("encoder", "decoder", "actor", "critic", "critic_target"):
        _state_equal(getattr(model.policy, name).state_dict(), getattr(loaded.policy, name).state_dict())


def test_optimizers_round_trip(trained_and_loaded):
    model, loaded = trained_and_loaded
    for module in ("actor", "critic"):
        _optimizer_states_equal(getattr(model, module).optimizer, getattr(loaded, module).optimizer)
    for name in ("encoder_optimizer", "decoder_optimizer", "ent_coef_optimizer"):
        _optimizer_states_equal(getattr(model, name), getattr(loaded, name))


def test_entropy_coefficient_and_hyperparameters_round_trip(trained_and_loaded):
    model, loaded = trained_and_loaded
    th.testing.assert_close(model.log_ent_coef, loaded.log_ent_coef, rtol=0, atol=0)
    for name in (
        "encoder_tau",
        "actor_update_interval",
        "decoder_update_interval",
        "encoder_lr",
        "decoder_lr",
        "decoder_latent_lambda",
        "decoder_weight_lambda",
        "ent_coef_lr",
        "ent_coef_betas",
        "num_timesteps",
    ):
        assert getattr(model, name) == getattr(loaded, name), name


def test_deterministic_predictions_equal_after_loading(trained_and_loaded, env):
    model, loaded = trained_and_loaded
    observations = np.stack([env.reset(seed=seed)[0] for seed in range(5)])
    np.testing.assert_array_equal(
        model.predict(observations, deterministic=True)[0], loaded.predict(observations, deterministic=True)[0]
    )


def test_learn_continues_after_loading(trained_and_loaded):
    _, loaded = trained_and_loaded
    steps, updates = loaded.num_timesteps, loaded._n_updates
    loaded.learn(16, reset_num_timesteps=False)
    assert loaded.num_timesteps == steps + 16
    assert loaded._n_updates > updates


def test_replay_buffer_saves_and_loads(trained_and_loaded, tmp_path):
    model, loaded = trained_and_loaded
    model.save_replay_buffer(tmp_path / "buffer")
    loaded.load_replay_buffer(tmp_path / "buffer")
    assert loaded.replay_buffer.size() == model.replay_buffer.size()
    size = model.replay_buffer.size()
    np.testing.assert_array_equal(loaded.replay_buffer.observations[:size], model.replay_buffer.observations[:size])
    np.testing.assert_array_equal(loaded.replay_buffer.actions[:size], model.replay_buffer.actions[:size])


def test_load_time_settings_reach_the_optimizers(model, tmp_path, env):
    model.save(tmp_path / "model.zip")
    changed = dict(encoder_lr=5e-4, decoder_lr=2e-4, decoder_weight_lambda=1e-5, ent_coef_lr=3e-3, ent_coef_betas=(0.9, 0.99))
    loaded = SACAE.load(tmp_path / "model.zip", env=env, device=TEST_DEVICE, custom_objects=changed)
    assert loaded.encoder_optimizer.param_groups[0]["lr"] == 5e-4
    decoder_group = loaded.decoder_optimizer.param_groups[0]
    assert decoder_group["lr"] == 2e-4 and decoder_group["weight_decay"] == 1e-5
    ent_group = loaded.ent_coef_optimizer.param_groups[0]
    assert ent_group["lr"] == 3e-3 and tuple(ent_group["betas"]) == (0.9, 0.99)


def test_action_repeat_is_kept_without_env_and_refreshed_by_set_env(tmp_path):
    from sb3_sacae.envs import ActionRepeat
    from tests.conftest import TinyPixelEnv, tiny_model

    model = tiny_model(ActionRepeat(TinyPixelEnv(), 4))
    model.learn(20)
    model.save(tmp_path / "model.zip")
    loaded = SACAE.load(tmp_path / "model.zip", device=TEST_DEVICE)
    assert loaded._action_repeat == 4
    loaded.set_env(ActionRepeat(TinyPixelEnv(), 2))
    assert loaded._action_repeat == 2


def test_load_arguments_that_change_the_networks_are_a_mismatch_named_with_the_fix(model, tmp_path):
    from sb3_sacae.io import CorruptFileError, FileMismatchError

    model.save(tmp_path / "model.zip")
    with pytest.raises(FileMismatchError, match=r"arguments given to load\(\) \(decoder_update_interval\)") as error:
        SACAE.load(tmp_path / "model.zip", device=TEST_DEVICE, decoder_update_interval=0)  # no decoder for its weights
    assert not isinstance(error.value, CorruptFileError) and "decoder.linear.weight" in str(error.value)
