"""reuse_critic_features: the actor and the reconstruction loss read the critic's encoder forward (one forward less)."""

import io

import numpy as np
import pytest
import torch as th
import torch.nn.functional as F

from sb3_sacae import SACAE
from sb3_sacae.reconstruction import reconstruction_target
from tests.algorithm.test_multi_input_policy import TINY_MULTI, TinyDictEnv
from tests.algorithm.test_reference_update import (
    assert_same_parameters,
    copies,
    same_seed_step,
    sample_with_target,
    update_targets,
)
from tests.conftest import TEST_DEVICE, TINY, TinyPixelEnv, tiny_model
from tests.discrete.test_discrete_losses import DiscreteTinyPixelEnv


def _reused_update(model: SACAE) -> None:
    """The update with ``reuse_critic_features``, written out plainly through the SB3 modules' forward passes."""
    data, alpha, target_q = sample_with_target(model)
    obs = data.observations
    # one encoder forward, before any step: the critic loss and the reconstruction loss both read it
    conv = model.policy.encoder(obs)
    latent = model.critic.features_extractor.head(conv)
    q1, q2 = (q(th.cat([latent, data.actions], 1)) for q in model.critic.q_networks)
    reconstruction_loss = F.mse_loss(model.policy.decoder(latent), reconstruction_target(obs))
    reconstruction_loss = reconstruction_loss + model.decoder_latent_lambda * (0.5 * latent.pow(2).sum(1)).mean()
    autoencoder_params = [*model.critic.features_extractor.parameters(), *model.policy.decoder.parameters()]
    autoencoder_grads = th.autograd.grad(reconstruction_loss, autoencoder_params, retain_graph=True)
    model.critic.optimizer.zero_grad()
    (F.mse_loss(q1, target_q) + F.mse_loss(q2, target_q)).backward()
    model.critic.optimizer.step()
    # the actor reads the same (pre-step) conv features, detached, and the stepped Q-heads
    actions, log_prob = model.actor.action_log_prob_from_features(model.actor.features_extractor.head(conv.detach()))
    log_prob = log_prob.reshape(-1, 1)
    q_pi = th.cat([q(th.cat([latent.detach(), actions], 1)) for q in model.critic.q_networks], 1).min(1, keepdim=True)
    model.actor.optimizer.zero_grad()
    (alpha * log_prob - q_pi.values).mean().backward()
    model.actor.optimizer.step()
    model.ent_coef_optimizer.zero_grad()
    (model.log_ent_coef.exp() * (-log_prob - model.target_entropy).detach()).mean().backward()
    model.ent_coef_optimizer.step()
    update_targets(model)
    model.encoder_optimizer.zero_grad()
    model.decoder_optimizer.zero_grad()
    for parameter, grad in zip(autoencoder_params, autoencoder_grads, strict=True):
        parameter.grad = grad
    model.encoder_optimizer.step()
    model.decoder_optimizer.step()


def test_train_step_equals_the_written_out_reused_update():
    copy = copies(10, reuse_critic_features=True)  # step 10: actor, targets and decoder all update
    ours, reference = copy(), copy()
    assert ours.reuse_critic_features
    same_seed_step(ours)
    same_seed_step(reference, _reused_update)
    assert_same_parameters(ours, reference)


def test_it_is_the_paper_update_when_the_critic_step_moves_nothing():
    # learning_rate 0: the critic step leaves the encoder where it was, so reading the critic's forward is exact.
    # Step 11 updates neither the actor nor the targets; the decoder (interval 1) updates
    copy = copies(11, learning_rate=0.0)
    reused, paper = copy(reuse_critic_features=True), copy()
    encoder_before = [p.detach().clone() for p in paper.encoder_optimizer.param_groups[0]["params"]]
    same_seed_step(reused)
    same_seed_step(paper)
    assert_same_parameters(reused, paper)
    moved = [
        p
        for p, before in zip(paper.encoder_optimizer.param_groups[0]["params"], encoder_before, strict=True)
        if not th.equal(p, before)
    ]
    assert moved  # the reconstruction step did move the encoder


def test_with_a_learning_rate_it_differs_from_the_paper_update_but_stays_close():
    copy = copies(10)
    reused, paper = copy(reuse_critic_features=True), copy()
    same_seed_step(reused)
    same_seed_step(paper)
    differences = [
        (x - y).abs().max().item()
        for x, y in zip(reused.policy.state_dict().values(), paper.policy.state_dict().values(), strict=True)
        if x.is_floating_point()
    ]
    assert max(differences) > 0  # the flag changes the update...
    assert max(differences) < 1e-2  # ...by much less than one Adam step (lr 1e-3 per step)


@pytest.mark.parametrize("bf16", [False, True])
def test_training_runs_in_float32_and_bfloat16(bf16):
    model = tiny_model(reuse_critic_features=True, bf16_autocast=bf16)
    model.learn(40)
    assert model.logger.name_to_value["train/ae_loss"] > 0
    assert all(th.isfinite(p).all() for p in model.policy.parameters())


def test_discrete_and_dict_observations_train_with_it():
    discrete = tiny_model(DiscreteTinyPixelEnv(), reuse_critic_features=True)
    discrete.learn(40)
    multi = SACAE(
        "MultiInputPolicy",
        TinyDictEnv(),
        **{**TINY, "policy_kwargs": TINY_MULTI},
        seed=0,
        device=TEST_DEVICE,
        reuse_critic_features=True
    )
    multi.learn(40)
    for model in (discrete, multi):
        assert np.isfinite(model.logger.name_to_value["train/ae_loss"])


def test_without_a_decoder_the_actor_still_reads_the_critic_forward():
    model = tiny_model(reuse_critic_features=True, decoder_update_interval=0)
    model.learn(40)
    assert model.policy.decoder is None and np.isfinite(model.logger.name_to_value["train/actor_loss"])


def test_the_flag_survives_save_and_load():
    model = tiny_model(reuse_critic_features=True)
    saved = io.BytesIO()
    model.save(saved)
    assert SACAE.load(io.BytesIO(saved.getvalue()), env=TinyPixelEnv(), device=TEST_DEVICE).reuse_critic_features
    assert not tiny_model().reuse_critic_features  # off by default: the paper's order
