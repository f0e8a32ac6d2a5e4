"""Target Q-heads follow with tau, the target encoder with the larger encoder_tau, every target_update_interval steps."""

import torch as th

from tests.conftest import tiny_model


def _split(critic):
    heads = [p for n, p in critic.named_parameters() if not n.startswith("features_extractor.")]
    encoder = list(critic.features_extractor.parameters())
    return heads, encoder


def _clone(params):
    return [p.detach().clone() for p in params]


def test_target_encoder_moves_with_encoder_tau_and_q_heads_with_tau():
    # Autoencoder off: the online critic's final parameters are the ones the Polyak update used
    model = tiny_model(decoder_update_interval=0, target_update_interval=1, tau=0.01, encoder_tau=0.05)
    model.learn(20)
    old_heads, old_encoder = (_clone(ps) for ps in _split(model.critic_target))
    model.train(gradient_steps=1, batch_size=8)
    new_heads, new_encoder = _split(model.critic_target)
    online_heads, online_encoder = _split(model.critic)
    for old, new, online in zip(old_heads, new_heads, online_heads, strict=True):
        th.testing.assert_close(new, 0.99 * old + 0.01 * online)
    for old, new, online in zip(old_encoder, new_encoder, online_encoder, strict=True):
        th.testing.assert_close(new, 0.95 * old + 0.05 * online)


def test_targets_move_only_every_target_update_interval():
    model = tiny_model(target_update_interval=2)
    model.learn(20)
    moved = []
    for _ in range(4):
        before = _clone(model.critic_target.parameters())
        model.train(gradient_steps=1, batch_size=8)
        moved.append(any(not th.equal(a, b) for a, b in zip(before, model.critic_target.parameters(), strict=True)))
    step = model._n_updates - 4
    assert moved == [(step + i) % 2 == 0 for i in range(4)]
