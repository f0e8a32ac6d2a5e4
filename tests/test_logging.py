"""train/ logs the losses, the temperature and, with an action-repeat wrapper, environment frames."""

import gymnasium as gym

from tests.conftest import TinyPixelEnv, tiny_model


class _Repeat(gym.Wrapper):
    """Minimal stand-in exposing the attribute action-repeat wrappers expose."""

    action_repeat = 4


def test_train_logs_losses_and_temperature():
    model = tiny_model()
    model.learn(40)
    logged = model.logger.name_to_value
    for key in ("train/critic_loss", "train/actor_loss", "train/ent_coef_loss", "train/ent_coef",
                "train/ae_loss", "train/latent_loss"):
        assert key in logged, key


def test_env_frames_count_the_action_repeat():
    model = tiny_model(_Repeat(TinyPixelEnv()))
    model.learn(40)
    assert model.env_frames == 4 * model.num_timesteps
    assert model.logger.name_to_value["train/env_frames"] == model.env_frames


def test_no_env_frames_without_action_repeat():
    model = tiny_model()
    model.learn(40)
    assert "train/env_frames" not in model.logger.name_to_value
