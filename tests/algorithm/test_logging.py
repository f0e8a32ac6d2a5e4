"""train/ logs the losses, the temperature and, with an action-repeat wrapper, environment frames."""

from sb3_sacae.envs import ActionRepeat
from tests.conftest import TinyPixelEnv, tiny_model


def test_train_logs_losses_and_temperature():
    model = tiny_model()
    model.learn(40)
    logged = model.logger.name_to_value
    for key in (
        "train/critic_loss",
        "train/actor_loss",
        "train/ent_coef_loss",
        "train/ent_coef",
        "train/ae_loss",
        "train/latent_loss",
        "train/q_value",
        "train/entropy",
    ):
        assert key in logged, key


def test_env_frames_count_the_action_repeat():
    # 20-frame episodes are 5 agent steps of 4 frames: no episode ends inside a repeat
    model = tiny_model(ActionRepeat(TinyPixelEnv(episode_length=20), 4))
    model.learn(40)
    assert model.env_frames == 4 * model.num_timesteps
    assert model.logger.name_to_value["train/env_frames"] == model.env_frames


def test_no_env_frames_without_action_repeat():
    model = tiny_model()
    model.learn(40)
    assert "train/env_frames" not in model.logger.name_to_value


def test_callbacks_see_the_frames_of_the_current_step():
    from stable_baselines3.common.callbacks import BaseCallback

    seen = []

    class _Record(BaseCallback):
        def _on_step(self) -> bool:
            seen.append((self.model.num_timesteps, self.model.env_frames))
            return True

    model = tiny_model(ActionRepeat(TinyPixelEnv(episode_length=20), 4))
    model.learn(12, callback=[_Record()])
    assert seen == [(step, 4 * step) for step in range(1, 13)]


def test_functional_callbacks_still_work():
    calls = []
    tiny_model().learn(5, callback=lambda _locals, _globals: calls.append(1) or True)
    assert len(calls) == 5
