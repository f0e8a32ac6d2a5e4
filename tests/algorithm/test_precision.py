"""bf16_autocast runs the pixel encoder and decoder in bfloat16; channels_last and fused Adam change no math."""

import io

import numpy as np
import torch as th

from sb3_sacae import SACAE
from tests.conftest import TEST_DEVICE, TINY_POLICY, TinyPixelEnv, tiny_model


def test_bf16_keeps_policy_and_q_values_in_float32(model, batch):
    pixels = model.policy.trunk.preprocess(batch.observations, th.bfloat16)
    shared = model._critic_forward(pixels)
    loss, log_prob = model._actor_loss(shared, th.tensor(0.1))
    latent = shared.latent
    q_values = model.critic.q_at_actions(latent, batch.actions)
    # the conv features stay bfloat16 for the bfloat16 projection Linear; the latent on is float32
    assert shared.trunk_features.dtype == th.bfloat16
    assert latent.dtype == loss.dtype == log_prob.dtype == q_values.dtype == th.float32


def test_bf16_training_stays_close_to_float32():
    losses = {}
    for bf16 in (False, True):
        model = tiny_model(bf16_autocast=bf16)
        model.learn(40)
        losses[bf16] = model.logger.name_to_value["train/critic_loss"]
        assert all(th.isfinite(p).all() for p in model.policy.parameters())
    assert np.isclose(losses[True], losses[False], rtol=0.2)


def _one_step(policy_kwargs: dict) -> dict:
    model = tiny_model(policy_kwargs={**TINY_POLICY, **policy_kwargs})
    model.learn(20)
    return model.policy.state_dict()


def test_channels_last_is_the_same_math():
    a, b = _one_step({"channels_last": True}), _one_step({"channels_last": False})
    for key in a:
        th.testing.assert_close(a[key].contiguous(), b[key].contiguous(), rtol=1e-4, atol=1e-5, msg=key)


def test_fused_adam_is_the_same_update():
    a, b = _one_step({}), _one_step({"optimizer_kwargs": {"foreach": False}})
    for key in a:
        th.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-5, msg=key)


def test_fused_adam_is_the_default():
    model = tiny_model()
    assert model.actor.optimizer.defaults["fused"] and model.decoder_optimizer.defaults["fused"]


def test_speed_options_survive_save_and_load():
    model = tiny_model(bf16_autocast=True, random_shift=2, policy_kwargs={**TINY_POLICY, "channels_last": False})
    saved = io.BytesIO()
    model.save(saved)
    loaded = SACAE.load(io.BytesIO(saved.getvalue()), env=TinyPixelEnv(), device=TEST_DEVICE)
    assert loaded.bf16_autocast and loaded.random_shift == 2 and not loaded.policy.channels_last


def test_float32_heads_leave_the_callers_autocast_alone(model, batch):
    head = model.critic.features_extractor.head
    seen = []
    handle = head.linear.register_forward_hook(lambda module, args, out: seen.append(out.dtype))
    conv = model.policy.encoder(batch.observations)
    with th.autocast("cpu", dtype=th.bfloat16):
        latent = head(conv)
    handle.remove()
    assert seen == [th.bfloat16] and latent.dtype == th.float32
