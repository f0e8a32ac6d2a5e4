"""The conv trunk is one module shared by actor and critic; the target critic owns an independent copy."""

import torch as th

from sb3_sacae import SACAE


def test_conv_trunk_is_one_object(model):
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
    loaded = SACAE.load(tmp_path / "model.zip", device="cpu")
    assert loaded.actor.features_extractor.trunk is loaded.policy.encoder
    assert loaded.critic.features_extractor.trunk is loaded.policy.encoder
