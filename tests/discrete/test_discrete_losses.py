"""Discrete SAC (Christodoulou 2019, arXiv:1910.07207): soft value, actor loss, entropy and alpha loss are exact
expectations over actions, and the SAC-AE gradient routing holds for the categorical actor and per-action critic."""

import numpy as np
import pytest
import torch as th
from gymnasium import spaces

from sb3_sacae import SACAE
from sb3_sacae.discrete import CategoricalActor, DiscreteCritic, discrete_target_entropy, soft_state_value
from tests.algorithm.test_gradient_routing import actor_backward
from tests.conftest import TinyPixelEnv, tiny_model

MOVES = np.array([[0.0, 0.0], [0.5, 0.0], [0.0, 0.5]])


class DiscreteTinyPixelEnv(TinyPixelEnv):
    """TinyPixelEnv with three actions: stay, move down, move right."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.action_space = spaces.Discrete(len(MOVES))

    def step(self, action):
        return super().step(MOVES[int(action)])


def discrete_model(**kwargs) -> SACAE:
    model = tiny_model(DiscreteTinyPixelEnv(), **kwargs)
    model.learn(32)
    return model


def _softmax_by_hand(logits: np.ndarray) -> np.ndarray:
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


def _by_hand(model: SACAE, batch) -> dict[str, float]:
    """Every quantity of one discrete SAC update, with explicit sums over actions in float64 numpy."""
    alpha = float(th.exp(model.log_ent_coef.detach()))
    with th.no_grad():
        actor = model.actor
        probs = _softmax_by_hand(
            actor.action_logits(actor.latent_pi(actor.features_extractor(batch.observations))).double().cpu().numpy()
        )
        next_probs = _softmax_by_hand(
            actor.action_logits(actor.latent_pi(actor.features_extractor(batch.next_observations))).double().cpu().numpy()
        )
        q_online = [q.double().cpu().numpy() for q in model.critic(batch.observations)]
        q_target = [q.double().cpu().numpy() for q in model.critic_target(batch.next_observations)]
    rewards, dones = batch.rewards.double().cpu().numpy()[:, 0], batch.dones.double().cpu().numpy()[:, 0]
    actions = batch.actions.cpu().numpy()[:, 0].astype(int)
    n_batch, n_actions = probs.shape
    target_v, actor_terms, entropies, critic_loss = [], [], [], 0.0
    for b in range(n_batch):
        target_v.append(
            sum(
                next_probs[b, a] * (min(q[b, a] for q in q_target) - alpha * np.log(next_probs[b, a]))
                for a in range(n_actions)
            )
        )
        actor_terms.append(
            sum(probs[b, a] * (alpha * np.log(probs[b, a]) - min(q[b, a] for q in q_online)) for a in range(n_actions))
        )
        entropies.append(-sum(probs[b, a] * np.log(probs[b, a]) for a in range(n_actions)))
    targets = rewards + (1 - dones) * model.gamma * np.array(target_v)
    critic_loss = sum(np.mean((q[np.arange(n_batch), actions] - targets) ** 2) for q in q_online)
    entropy = float(np.mean(entropies))
    return {
        "target_v": np.array(target_v),
        "critic_loss": float(critic_loss),
        "actor_loss": float(np.mean(actor_terms)),
        "entropy": entropy,
        "ent_coef_loss": alpha * (entropy - model.target_entropy),
    }


@pytest.fixture
def frozen():
    """A discrete model whose actor and critic cannot move (lr 0), with one fixed replay batch."""
    model = discrete_model(learning_rate=0.0, actor_update_interval=1)
    batch = model.replay_buffer.sample(8)
    model.replay_buffer.sample = lambda *args, **kwargs: batch  # type: ignore[method-assign]
    return model, batch


def test_discrete_model_has_a_categorical_actor_and_a_per_action_critic(frozen):
    model, _ = frozen
    assert isinstance(model.actor, CategoricalActor) and isinstance(model.critic, DiscreteCritic)
    assert isinstance(model.critic_target, DiscreteCritic) and model.critic_target is not model.critic
    assert [q_net[-1].out_features for q_net in model.critic.q_networks] == [3, 3]
    assert model.actor.action_logits.out_features == 3


def test_auto_target_entropy_is_098_log_n_actions():
    assert tiny_model(DiscreteTinyPixelEnv()).target_entropy == pytest.approx(0.98 * np.log(3))
    assert tiny_model(DiscreteTinyPixelEnv(), target_entropy="auto_0.5").target_entropy == pytest.approx(0.5 * np.log(3))
    assert tiny_model(DiscreteTinyPixelEnv(), target_entropy=0.3).target_entropy == 0.3
    assert discrete_target_entropy(18, "auto") == pytest.approx(0.98 * np.log(18))


@pytest.mark.parametrize("target_entropy", ["auto_0", "auto_1.5", "auto_x", "maximum"])
def test_bad_target_entropy_fractions_are_refused(target_entropy):
    with pytest.raises(ValueError, match=r"auto_<fraction>|could not convert"):
        tiny_model(DiscreteTinyPixelEnv(), target_entropy=target_entropy)


def test_fraction_target_entropy_is_refused_for_box_actions():
    with pytest.raises(ValueError, match="'auto_<fraction>' is for Discrete actions"):
        tiny_model(target_entropy="auto_0.5")


def test_soft_target_value_is_the_exact_expectation_over_actions(frozen):
    model, batch = frozen
    expected = _by_hand(model, batch)
    with th.no_grad():
        encoder, target_encoder = model.policy.encoder, model.critic_target.features_extractor
        next_features = model.actor.features_extractor(batch.next_observations)
        next_log_probs = model.actor.log_probs_from_features(next_features)
        value = soft_state_value(
            next_log_probs,
            model.critic_target.q_values_from_features(target_encoder(batch.next_observations)),
            th.exp(model.log_ent_coef),
        )
    assert encoder is model.critic.features_extractor.trunk
    np.testing.assert_allclose(value.cpu().numpy()[:, 0], expected["target_v"], rtol=1e-5, atol=1e-6)


def test_train_losses_equal_the_hand_computed_expectations(frozen):
    """critic loss (sum over twin heads), actor loss, entropy and alpha loss logged by train() on one fixed batch."""
    model, batch = frozen
    expected = _by_hand(model, batch)
    model.train(gradient_steps=1, batch_size=8)
    logged = model.logger.name_to_value
    for key in ("critic_loss", "actor_loss", "entropy", "ent_coef_loss"):
        assert logged[f"train/{key}"] == pytest.approx(expected[key], rel=1e-5, abs=1e-6), key


def test_alpha_loss_pushes_alpha_down_when_entropy_exceeds_the_target():
    model = discrete_model(target_entropy=0.01, actor_update_interval=1)  # near-uniform policy: H ~ log 3 > 0.01
    before = model.log_ent_coef.item()
    model.train(gradient_steps=3, batch_size=8)
    assert model.log_ent_coef.item() < before


def test_actor_loss_does_not_reach_shared_convs():
    model = discrete_model()
    actor_backward(model, model.replay_buffer.sample(8).observations)
    assert all(p.grad is None for p in model.critic.features_extractor.parameters())
    assert all(p.grad is None or not p.grad.any() for p in model.policy.encoder.parameters())
    assert all(p.grad is not None and p.grad.any() for p in model.actor.features_extractor.head.parameters())
    assert all(p.grad is not None for p in model.actor.action_logits.parameters())
    assert all(p.grad is None and p.requires_grad for p in model._q_params)  # frozen for the actor's backward only


def test_critic_and_reconstruction_losses_reach_shared_convs():
    model = discrete_model()
    batch = model.replay_buffer.sample(8)
    model.policy.zero_grad(set_to_none=True)
    q1, q2 = model.critic(batch.observations)
    (q1.pow(2).mean() + q2.pow(2).mean()).backward()
    assert any(p.grad is not None and p.grad.any() for p in model.policy.encoder.parameters())
    assert all(p.grad is None for p in model.actor.parameters() if all(p is not q for q in model.policy.encoder.parameters()))

    model.policy.zero_grad(set_to_none=True)
    model.policy.decoder(model.critic.features_extractor(batch.observations)).pow(2).mean().backward()
    assert any(p.grad is not None and p.grad.any() for p in model.policy.encoder.parameters())


def test_actor_and_critic_optimizers_hold_the_same_parameters_as_in_the_continuous_case():
    model = tiny_model(DiscreteTinyPixelEnv())
    shared = {id(p) for p in model.policy.encoder.parameters()}
    actor_held = {id(p) for group in model.actor.optimizer.param_groups for p in group["params"]}
    encoder_held = {id(p) for group in model.encoder_optimizer.param_groups for p in group["params"]}
    assert not shared & actor_held
    assert {id(p) for p in model.actor.parameters()} - shared == actor_held
    assert shared <= encoder_held and {id(p) for p in model.critic.features_extractor.head.parameters()} <= encoder_held
    assert model.actor.features_extractor.trunk is model.critic.features_extractor.trunk is model.policy.encoder


def test_target_encoder_and_q_heads_follow_with_their_own_tau():
    model = tiny_model(DiscreteTinyPixelEnv(), tau=0.01, encoder_tau=0.05, target_update_interval=1)
    model.learn(24)
    online_q, target_q = model.critic.q_networks[0][0].weight, model.critic_target.q_networks[0][0].weight
    online_conv = model.policy.encoder.convs[0].weight
    target_conv = model.critic_target.features_extractor.trunk.convs[0].weight
    q_before, conv_before = target_q.detach().clone(), target_conv.detach().clone()
    for name in ("critic", "actor", "ent_coef", "encoder", "decoder"):
        optimizer = {
            "critic": model.critic.optimizer,
            "actor": model.actor.optimizer,
            "ent_coef": model.ent_coef_optimizer,
            "encoder": model.encoder_optimizer,
            "decoder": model.decoder_optimizer,
        }[name]
        optimizer.step = lambda *args, **kwargs: None  # type: ignore[method-assign]
    model.train(gradient_steps=1, batch_size=8)
    th.testing.assert_close(target_q, 0.99 * q_before + 0.01 * online_q.detach())
    th.testing.assert_close(target_conv, 0.95 * conv_before + 0.05 * online_conv.detach())


def test_bf16_autocast_keeps_the_categorical_and_q_math_in_float32():
    model = discrete_model(bf16_autocast=True)
    batch = model.replay_buffer.sample(8)
    shared = model._critic_forward(model.policy.trunk.preprocess(batch.observations, th.bfloat16))
    loss, expected_log_prob = model._actor_loss(shared, th.tensor(0.1))
    assert shared.trunk_features.dtype == th.bfloat16  # read by the bfloat16 projection Linear
    assert shared.latent.dtype == loss.dtype == expected_log_prob.dtype == th.float32
    model.train(gradient_steps=2, batch_size=8)
    assert np.isfinite(model.logger.name_to_value["train/critic_loss"])
