"""
Actor and temperature every actor_update_interval steps; autoencoder every decoder_update_interval steps, and
decoder_update_interval=0 is the paper's SAC:pixel baseline: no decoder, no autoencoder optimizers.
"""

import numpy as np
import torch as th

from sb3_sacae import SACAE
from tests.conftest import TEST_DEVICE, tiny_model


def _moves(model, module, n_steps: int) -> list[bool]:
    moved = []
    for _ in range(n_steps):
        before = [p.detach().clone() for p in module.parameters()]
        model.train(gradient_steps=1, batch_size=8)
        moved.append(any(not th.equal(a, b) for a, b in zip(before, module.parameters(), strict=True)))
    return moved


def test_actor_and_entropy_coefficient_update_every_actor_update_interval():
    model = tiny_model(actor_update_interval=3)
    model.learn(20)
    start = model._n_updates
    actor_moves = _moves(model, model.actor.latent_pi, 6)
    assert actor_moves == [(start + i) % 3 == 0 for i in range(6)]
    log_alpha_before = model.log_ent_coef.detach().clone()
    model._n_updates = 1  # a step where the actor does not update
    model.train(gradient_steps=1, batch_size=8)
    assert th.equal(log_alpha_before, model.log_ent_coef.detach())


def test_decoder_updates_every_decoder_update_interval():
    model = tiny_model(decoder_update_interval=2)
    model.learn(20)
    start = model._n_updates
    assert _moves(model, model.policy.decoder, 4) == [(start + i) % 2 == 0 for i in range(4)]


def test_entropy_coefficient_has_its_own_lr_and_betas():
    model = tiny_model(ent_coef_lr=3e-4, ent_coef_betas=(0.4, 0.9))
    group = model.ent_coef_optimizer.param_groups[0]
    assert group["lr"] == 3e-4 and group["betas"] == (0.4, 0.9)
    model.learn(20)
    assert model.ent_coef_optimizer.param_groups[0]["lr"] == 3e-4  # the actor/critic lr schedule leaves it alone


def test_encoder_and_decoder_have_their_own_learning_rates():
    model = tiny_model(encoder_lr=2e-4, decoder_lr=5e-4, decoder_weight_lambda=1e-5, learning_rate=7e-4)
    assert model.encoder_optimizer.param_groups[0]["lr"] == 2e-4
    decoder_group = model.decoder_optimizer.param_groups[0]
    assert decoder_group["lr"] == 5e-4 and decoder_group["weight_decay"] == 1e-5
    assert model.actor.optimizer.param_groups[0]["lr"] == 7e-4
    assert model.critic.optimizer.param_groups[0]["lr"] == 7e-4


def test_autoencoder_off_builds_no_decoder():
    model = tiny_model(decoder_update_interval=0)
    assert model.policy.decoder is None
    assert model.encoder_optimizer is None and model.decoder_optimizer is None


def test_autoencoder_off_trains_without_reconstruction_loss():
    model = tiny_model(decoder_update_interval=0)
    model.learn(40)
    assert model._n_updates > 0
    assert "train/ae_loss" not in model.logger.name_to_value


def test_autoencoder_off_survives_save_and_load(tmp_path, env):
    model = tiny_model(decoder_update_interval=0)
    model.learn(20)
    model.save(tmp_path / "sac_pixel.zip")
    loaded = SACAE.load(tmp_path / "sac_pixel.zip", env=env, device=TEST_DEVICE)
    assert loaded.policy.decoder is None
    obs, _ = env.reset(seed=1)
    np.testing.assert_array_equal(model.predict(obs, deterministic=True)[0], loaded.predict(obs, deterministic=True)[0])
    loaded.learn(10)
