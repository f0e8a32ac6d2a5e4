"""Critic options from recent SAC practice: LayerNorm in the Q-heads and a replay-ratio knob."""

import pytest
from stable_baselines3.common.env_util import make_vec_env
from torch import nn

from sb3_sacae import SACAE
from tests.conftest import TEST_DEVICE, TINY_POLICY, TinyPixelEnv, tiny_model


def test_critic_layer_norm_after_each_hidden_layer():
    model = tiny_model(policy_kwargs={**TINY_POLICY, "critic_layer_norm": True})
    for q_net in (*model.critic.q_networks, *model.critic_target.q_networks):
        # Linear layers are nn.Linear subclasses (OneDNNLinear) by default
        kinds = [nn.Linear if isinstance(layer, nn.Linear) else type(layer) for layer in q_net]
        assert kinds == [nn.Linear, nn.LayerNorm, nn.ReLU, nn.Linear, nn.LayerNorm, nn.ReLU, nn.Linear]
    model.learn(24)


def test_critic_layer_norm_survives_save_and_load(tmp_path):
    model = tiny_model(policy_kwargs={**TINY_POLICY, "critic_layer_norm": True})
    model.save(tmp_path / "model.zip")
    loaded = SACAE.load(tmp_path / "model.zip", device=TEST_DEVICE)
    assert any(isinstance(layer, nn.LayerNorm) for layer in loaded.critic.q_networks[0])


def test_no_layer_norm_by_default():
    model = tiny_model()
    assert not any(isinstance(layer, nn.LayerNorm) for q_net in model.critic.q_networks for layer in q_net)


def test_replay_ratio_sets_gradient_steps_per_collected_transition():
    assert tiny_model(replay_ratio=4).gradient_steps == 4
    env = make_vec_env(TinyPixelEnv, n_envs=2)
    assert tiny_model(env, replay_ratio=2, train_freq=3).gradient_steps == 12
    assert tiny_model(env, replay_ratio=0.5).gradient_steps == 1


def test_replay_ratio_trains_that_many_updates():
    model = tiny_model(replay_ratio=3, learning_starts=10)
    model.learn(20)
    assert model._n_updates == 3 * (20 - 10)


def test_replay_ratio_that_is_not_a_whole_number_of_steps_is_refused():
    with pytest.raises(ValueError, match="train_freq"):
        tiny_model(replay_ratio=0.5)


def test_replay_ratio_needs_train_freq_in_steps():
    with pytest.raises(ValueError, match=r"train_freq=\(N, 'step'\)"):
        tiny_model(replay_ratio=1, train_freq=(1, "episode"))


def test_replay_ratio_models_take_a_new_env():
    model = tiny_model(replay_ratio=2, train_freq=(3, "step"))
    model.set_env(TinyPixelEnv())  # SB3 keeps train_freq as a TrainFreq once the model is built
    assert model.gradient_steps == 6


def test_a_loaded_replay_ratio_model_follows_the_envs_it_is_loaded_with(tmp_path):
    tiny_model(replay_ratio=1).save(tmp_path / "model.zip")
    loaded = SACAE.load(tmp_path / "model.zip", env=make_vec_env(TinyPixelEnv, n_envs=2), device=TEST_DEVICE)
    assert loaded.n_envs == 2 and loaded.gradient_steps == 2
    assert SACAE.load(tmp_path / "model.zip", device=TEST_DEVICE).gradient_steps == 1
