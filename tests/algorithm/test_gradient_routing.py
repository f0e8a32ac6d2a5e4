"""Who trains what (the design page): one trunk tied between actor and critic, which the actor never moves; critic and
decoder do. The target critic owns an independent copy."""

import torch as th

from sb3_sacae import SACAE
from tests.conftest import TEST_DEVICE


def _params(module: th.nn.Module) -> list[th.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def _changed(before: list[th.Tensor], module: th.nn.Module) -> bool:
    return any(not th.equal(a, b) for a, b in zip(before, module.parameters(), strict=True))


def _only_step(model: SACAE, keep: str) -> None:
    """Turn every optimizer's step into a no-op except the one named ``keep``."""
    optimizers = {
        "critic": model.critic.optimizer,
        "actor": model.actor.optimizer,
        "encoder": model.encoder_optimizer,
        "decoder": model.decoder_optimizer,
        "ent_coef": model.ent_coef_optimizer,
    }
    for name, optimizer in optimizers.items():
        if name != keep:
            optimizer.step = lambda *args, **kwargs: None  # type: ignore[method-assign]


def actor_backward(model: SACAE, observations) -> None:
    """Clear every gradient, then backpropagate the actor loss of ``observations``."""
    model.policy.zero_grad(set_to_none=True)
    shared = model._critic_forward(model.policy.trunk.preprocess(observations))
    actor_loss, _ = model._actor_loss(shared, th.tensor(0.1))
    actor_loss.backward()


def test_actor_loss_does_not_reach_shared_convs(model, batch):
    actor_backward(model, batch.observations)
    assert all(p.grad is None for p in model.critic.features_extractor.parameters())
    assert all(p.grad is None or not p.grad.any() for p in model.policy.encoder.parameters())
    assert all(p.grad is not None and p.grad.any() for p in model.actor.features_extractor.head.parameters())


def test_actor_step_in_train_moves_actor_head_but_not_convs(model):
    _only_step(model, "actor")
    convs, head = _params(model.policy.encoder), _params(model.actor.features_extractor.head)
    model.train(gradient_steps=2, batch_size=8)
    assert not _changed(convs, model.policy.encoder)
    assert _changed(head, model.actor.features_extractor.head)


def test_actor_optimizer_does_not_hold_shared_convs(model):
    shared = {id(p) for p in model.policy.encoder.parameters()}
    held = {id(p) for group in model.actor.optimizer.param_groups for p in group["params"]}
    assert not shared & held
    assert {id(p) for p in model.actor.features_extractor.head.parameters()} <= held


def test_critic_loss_reaches_shared_convs(model, batch):
    model.policy.zero_grad(set_to_none=True)
    q1, q2 = model.critic(batch.observations, batch.actions)
    (q1.pow(2).mean() + q2.pow(2).mean()).backward()
    assert any(p.grad is not None and p.grad.any() for p in model.policy.encoder.parameters())


def test_critic_step_in_train_moves_convs_and_critic_head(model):
    _only_step(model, "critic")
    convs, head = _params(model.policy.encoder), _params(model.critic.features_extractor.head)
    model.train(gradient_steps=1, batch_size=8)
    assert _changed(convs, model.policy.encoder)
    assert _changed(head, model.critic.features_extractor.head)


def test_reconstruction_step_moves_convs_and_critic_head_not_actor_head(model):
    _only_step(model, "encoder")
    convs = _params(model.policy.encoder)
    critic_head, actor_head = _params(model.critic.features_extractor.head), _params(model.actor.features_extractor.head)
    model.train(gradient_steps=1, batch_size=8)
    assert _changed(convs, model.policy.encoder)
    assert _changed(critic_head, model.critic.features_extractor.head)
    assert not _changed(actor_head, model.actor.features_extractor.head)


def test_decoder_step_moves_only_the_decoder(model):
    _only_step(model, "decoder")
    convs, decoder = _params(model.policy.encoder), _params(model.policy.decoder)
    model.train(gradient_steps=1, batch_size=8)
    assert _changed(decoder, model.policy.decoder)
    assert not _changed(convs, model.policy.encoder)


def test_encoder_optimizer_holds_the_critic_encoder(model):
    held = {id(p) for group in model.encoder_optimizer.param_groups for p in group["params"]}
    assert held == {id(p) for p in model.critic.features_extractor.parameters()}


def test_actor_backward_skips_the_q_heads_weight_gradients_and_leaves_them_trainable(model, batch):
    actor_backward(model, batch.observations)
    assert model._q_params and all(p.grad is None for p in model._q_params)
    assert all(p.requires_grad for p in model._q_params)
    trained = [p for group in model.actor.optimizer.param_groups for p in group["params"]]
    assert all(p.grad is not None for p in trained) and any(p.grad.any() for p in trained)


def test_conv_trunk_is_one_object(model):
    assert model.policy.trunk is model.policy.encoder  # the earlier name stays
    assert model.actor.features_extractor.trunk is model.policy.encoder
    assert model.critic.features_extractor.trunk is model.policy.encoder


def test_actor_and_critic_have_their_own_projection_heads(model):
    actor_head, critic_head = model.actor.features_extractor.head, model.critic.features_extractor.head
    assert actor_head is not critic_head
    assert not {id(p) for p in actor_head.parameters()} & {id(p) for p in critic_head.parameters()}
    layer_types = [th.nn.Linear if isinstance(m, th.nn.Linear) else type(m) for m in actor_head.children()]
    assert layer_types == [th.nn.Linear, th.nn.LayerNorm]


def test_target_critic_owns_an_independent_encoder(model):
    online = {id(p) for p in model.critic.parameters()}
    target = {id(p) for p in model.critic_target.parameters()}
    assert not online & target
    assert model.critic_target.features_extractor.trunk is not model.policy.encoder


def test_tying_survives_save_and_load(model, tmp_path):
    model.save(tmp_path / "model.zip")
    loaded = SACAE.load(tmp_path / "model.zip", device=TEST_DEVICE)
    assert loaded.actor.features_extractor.trunk is loaded.policy.encoder
    assert loaded.critic.features_extractor.trunk is loaded.policy.encoder
