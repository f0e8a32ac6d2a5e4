"""One train() step equals the reference code's update (sac_ae.py: critic, actor+alpha, targets, autoencoder)."""

import io

import numpy as np
import torch as th
import torch.nn.functional as F
from stable_baselines3.common.utils import polyak_update

from sb3_sacae import SACAE
from sb3_sacae.reconstruction import reconstruction_target
from tests.conftest import TEST_DEVICE, TinyPixelEnv, tiny_model


def sample_with_target(model: SACAE):
    """A batch of 8, the temperature and the soft Bellman target, as the reference code computes them."""
    data = model.replay_buffer.sample(8)
    model.policy.set_training_mode(True)
    alpha = model.log_ent_coef.detach().exp()
    with th.no_grad():
        next_actions, next_log_prob = model.actor.action_log_prob(data.next_observations)
        target_v = th.cat(model.critic_target(data.next_observations, next_actions), 1).min(1, keepdim=True).values
        target_q = data.rewards + (1 - data.dones) * model.gamma * (target_v - alpha * next_log_prob.reshape(-1, 1))
    return data, alpha, target_q


def update_targets(model: SACAE) -> None:
    """Polyak updates of the target Q-heads (tau) and of the target encoder (encoder_tau)."""
    q_heads = [p for n, p in model.critic.named_parameters() if not n.startswith("features_extractor.")]
    q_targets = [p for n, p in model.critic_target.named_parameters() if not n.startswith("features_extractor.")]
    polyak_update(q_heads, q_targets, model.tau)
    polyak_update(
        model.critic.features_extractor.parameters(), model.critic_target.features_extractor.parameters(), model.encoder_tau
    )


def _reference_update(model: SACAE) -> None:
    """The reference code's update written out plainly, through the SB3 modules' ordinary forward passes."""
    data, alpha, target_q = sample_with_target(model)
    obs = data.observations
    q1, q2 = model.critic(obs, data.actions)
    critic_loss = F.mse_loss(q1, target_q) + F.mse_loss(q2, target_q)
    model.critic.optimizer.zero_grad()
    critic_loss.backward()
    model.critic.optimizer.step()
    reference_after_critic(model, obs, alpha)


def reference_after_critic(model: SACAE, obs: th.Tensor, alpha: th.Tensor) -> None:
    """The reference update after the critic's step: actor and alpha, targets, autoencoder, all on ``obs``."""
    # actor: the critic's convs detached, its head evaluated but not stepped
    actions, log_prob = model.actor.action_log_prob(obs)
    log_prob = log_prob.reshape(-1, 1)
    conv = model.policy.encoder(obs).detach()
    latent = model.critic.features_extractor.head(conv)
    q_pi = th.cat([q(th.cat([latent, actions], 1)) for q in model.critic.q_networks], 1).min(1, keepdim=True).values
    actor_loss = (alpha * log_prob - q_pi).mean()
    model.actor.optimizer.zero_grad()
    actor_loss.backward()
    model.actor.optimizer.step()
    model.ent_coef_optimizer.zero_grad()
    (model.log_ent_coef.exp() * (-log_prob - model.target_entropy).detach()).mean().backward()
    model.ent_coef_optimizer.step()
    update_targets(model)
    latent = model.critic.features_extractor(obs)
    loss = F.mse_loss(model.policy.decoder(latent), reconstruction_target(obs))
    loss = loss + model.decoder_latent_lambda * (0.5 * latent.pow(2).sum(1)).mean()
    model.encoder_optimizer.zero_grad()
    model.decoder_optimizer.zero_grad()
    loss.backward()
    model.encoder_optimizer.step()
    model.decoder_optimizer.step()


def copies(n_updates: int, **kwargs):
    """Identical models (trained briefly, saved, loaded) sharing a replay buffer, at gradient step ``n_updates``."""
    trained = tiny_model(**kwargs)
    trained.learn(40)
    saved = io.BytesIO()
    trained.save(saved)

    def copy(**changes) -> SACAE:
        model = SACAE.load(io.BytesIO(saved.getvalue()), env=TinyPixelEnv(), device=TEST_DEVICE, **changes)
        model.replay_buffer = trained.replay_buffer
        model.set_logger(trained.logger)
        model._n_updates = n_updates
        return model

    return copy


def assert_same_parameters(a: SACAE, b: SACAE) -> None:
    """Policy parameters equal to 1e-6 and the entropy coefficient to 1e-7."""
    for (name, x), y in zip(a.policy.state_dict().items(), b.policy.state_dict().values(), strict=True):
        th.testing.assert_close(x, y, rtol=0, atol=1e-6, msg=name)
    th.testing.assert_close(a.log_ent_coef, b.log_ent_coef, rtol=0, atol=1e-7)


def same_seed_step(model: SACAE, update=None) -> None:
    """One gradient step (``train`` or ``update``) from the same numpy and torch seeds."""
    np.random.seed(5)
    th.manual_seed(5)
    model.train(1, 8) if update is None else update(model)


def test_train_step_equals_the_reference_update():
    copy = copies(10)  # a step where the actor, the targets and the decoder all update
    ours, reference = copy(), copy()
    same_seed_step(ours)
    same_seed_step(reference, _reference_update)
    assert_same_parameters(ours, reference)
