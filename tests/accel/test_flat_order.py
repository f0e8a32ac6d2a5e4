"""Channels-last trunks keep the projection head's columns and the decoder Linear's rows in (H, W, C) order, while
state dicts (modules and optimizers) hold the (C, H, W) order: same checkpoints and values as channels_last=False."""

import copy
import io

import pytest
import torch as th

from sb3_sacae import SACAE
from sb3_sacae.accel.flat_order import FlatOrdered, hwc_order
from sb3_sacae.torch_layers import ConvTrunk, PixelDecoder, ProjectionHead
from tests.algorithm.test_multi_input_policy import tiny_multi_model
from tests.conftest import TINY_POLICY, tiny_model


def _pair(**kwargs) -> tuple[SACAE, SACAE]:
    """The same tiny model (same seed) with channels-last trunks and with NCHW trunks."""
    policy = {**TINY_POLICY, **kwargs.pop("policy_kwargs", {})}
    return (
        tiny_model(policy_kwargs={**policy, "channels_last": True}, **kwargs),
        tiny_model(policy_kwargs={**policy, "channels_last": False}, **kwargs),
    )


def test_hwc_order_is_the_flattening_of_channels_last_memory():
    feature_map = th.randn(2, 3, 4, 5)
    nhwc_flat = feature_map.contiguous(memory_format=th.channels_last).permute(0, 2, 3, 1).flatten(1)
    assert th.equal(nhwc_flat, feature_map.flatten(1)[:, hwc_order((3, 4, 5))])


def test_only_channels_last_models_keep_a_flat_order():
    hwc, chw = _pair()
    ordered = [m for m in hwc.policy.modules() if isinstance(m, FlatOrdered)]
    assert {type(m) for m in ordered} == {ProjectionHead, PixelDecoder}
    assert all(m.flat_order is not None for m in ordered)
    assert all(m.flat_order is None for m in chw.policy.modules() if isinstance(m, FlatOrdered))
    assert "flat_order" not in "".join(hwc.policy.state_dict())  # not a persistent buffer


def test_state_dicts_are_the_same_whatever_the_layout():
    hwc, chw = _pair()
    hwc_state, chw_state = hwc.policy.state_dict(), chw.policy.state_dict()
    assert hwc_state.keys() == chw_state.keys()
    for key in hwc_state:
        assert th.equal(hwc_state[key], chw_state[key]), key
    # ... while the live parameters differ by the column permutation
    head = hwc.critic.features_extractor.head
    order = hwc.policy.encoder.flat_order()
    assert th.equal(head.linear.weight, chw.critic.features_extractor.head.linear.weight[:, order])


def test_the_layouts_compute_the_same_values_and_gradients():
    hwc, chw = _pair()
    chw.learn(32)  # fills the buffer; a few updates move the weights away from their initial values
    hwc.set_parameters(chw.get_parameters())
    obs = chw.replay_buffer.sample(8).observations
    with th.no_grad():
        th.testing.assert_close(hwc.actor(obs, deterministic=True), chw.actor(obs, deterministic=True), atol=1e-5, rtol=1e-4)
        latent = hwc.critic.features_extractor(obs)
        th.testing.assert_close(latent, chw.critic.features_extractor(obs), atol=1e-5, rtol=1e-4)
        th.testing.assert_close(hwc.policy.decoder(latent), chw.policy.decoder(latent), atol=1e-5, rtol=1e-4)
    # gradients (compared in (C, H, W) order; Adam would amplify float rounding of near-zero ones into lr-sized steps)
    for model in (hwc, chw):
        model.policy.zero_grad()
        model.policy.decoder(model.critic.features_extractor(obs)).square().mean().backward()
    back = th.argsort(hwc.policy.encoder.flat_order())
    head_hwc, head_chw = hwc.critic.features_extractor.head.linear, chw.critic.features_extractor.head.linear
    pairs = [
        (head_hwc.weight.grad[:, back], head_chw.weight.grad),
        (hwc.policy.decoder.linear.weight.grad[back], chw.policy.decoder.linear.weight.grad),
        (hwc.policy.encoder.convs[0].weight.grad, chw.policy.encoder.convs[0].weight.grad),
    ]
    for ours, reference in pairs:
        th.testing.assert_close(ours, reference, atol=1e-6, rtol=1e-4)


def test_checkpoints_move_between_layouts_with_their_optimizer_moments():
    hwc, chw = _pair()
    chw.learn(48)
    hwc.set_parameters(chw.get_parameters())  # modules and optimizers, written in (C, H, W) order
    for name in ("critic.optimizer", "encoder_optimizer", "decoder_optimizer", "actor.optimizer"):
        saved_hwc = hwc.get_parameters()[name]["state"]
        saved_chw = chw.get_parameters()[name]["state"]
        for index, state in saved_chw.items():
            for key, value in state.items():
                assert th.equal(saved_hwc[index][key], value), (name, index, key)
    # the live moments of the projection weight follow its (H, W, C) columns
    weight = hwc.critic.features_extractor.head.linear.weight
    order = hwc.policy.encoder.flat_order()
    chw_weight = chw.critic.features_extractor.head.linear.weight
    th.testing.assert_close(weight, chw_weight[:, order], atol=0, rtol=0)
    live = hwc.critic.optimizer.state[weight]["exp_avg"]
    assert th.equal(live, chw.critic.optimizer.state[chw_weight]["exp_avg"][:, order])
    # and both continue identically
    obs = chw.replay_buffer.sample(8).observations
    with th.no_grad():
        th.testing.assert_close(hwc.critic.features_extractor(obs), chw.critic.features_extractor(obs), atol=1e-5, rtol=1e-4)


def test_saving_never_touches_the_live_parameters_or_moments():
    model = tiny_model()
    model.learn(40)
    weight = model.critic.features_extractor.head.linear.weight
    before, moment = weight.detach().clone(), model.critic.optimizer.state[weight]["exp_avg"].clone()
    buffer = io.BytesIO()
    model.save(buffer)
    assert th.equal(weight, before) and th.equal(model.critic.optimizer.state[weight]["exp_avg"], moment)
    buffer.seek(0)
    loaded = SACAE.load(buffer, device=model.device)
    loaded_weight = loaded.critic.features_extractor.head.linear.weight
    assert th.equal(loaded_weight, before)
    assert th.equal(loaded.critic.optimizer.state[loaded_weight]["exp_avg"], moment)


def test_dict_observations_order_each_image_key_and_keep_the_vectors():
    hwc = tiny_multi_model(policy_kwargs=dict(channels_last=True, decoder_keys=["pixels"]))
    chw = tiny_multi_model(policy_kwargs=dict(channels_last=False, decoder_keys=["pixels"]))
    trunk = hwc.policy.encoder
    order = trunk.flat_order()
    image = trunk.image_trunks["pixels"]
    assert isinstance(image, ConvTrunk) and order is not None and len(order) == trunk.n_flatten
    assert th.equal(order[image.n_flatten :], th.arange(image.n_flatten, trunk.n_flatten))  # vectors stay
    for key, value in hwc.policy.state_dict().items():
        assert th.equal(value, chw.policy.state_dict()[key]), key
    chw.learn(40)
    hwc.set_parameters(chw.get_parameters())
    obs = chw.replay_buffer.sample(4).observations
    with th.no_grad():
        th.testing.assert_close(hwc.critic.features_extractor(obs), chw.critic.features_extractor(obs), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("channels_last", [True, False])
def test_a_plain_chw_state_dict_loads_into_either_layout(channels_last):
    """A head written by hand (or by another tool) in the usual (C, H, W) flattening reads conv features correctly."""
    model = tiny_model(policy_kwargs={**TINY_POLICY, "channels_last": channels_last})
    encoder = model.critic.features_extractor
    chw_linear = th.nn.Linear(encoder.trunk.n_flatten, encoder.head.linear.out_features, device=model.device)
    state = encoder.head.state_dict()
    state.update({"linear.weight": chw_linear.weight.detach(), "linear.bias": chw_linear.bias.detach()})
    encoder.head.load_state_dict(state)
    obs = th.randint(0, 256, (2, *model.observation_space.shape), dtype=th.uint8, device=model.device)
    with th.no_grad():
        pixels = encoder.trunk.preprocess(obs)
        *layers, last_relu = encoder.trunk.convs
        hidden = pixels
        for layer in layers:
            hidden = layer(hidden)
        chw_features = last_relu(hidden).contiguous().flatten(1)  # the (C, H, W) flattening
        expected = th.tanh(encoder.head.layer_norm(chw_linear(chw_features)))
        th.testing.assert_close(encoder(obs), expected, atol=1e-5, rtol=1e-4)


def test_loaded_moments_take_the_layout_of_their_parameters():
    # moments saved by a channels-last model and loaded into an NCHW one (and back): fused Adam reads both in memory
    # order, so they must share their parameter's strides
    hwc, chw = _pair()
    hwc.learn(48)
    chw.set_parameters(copy.deepcopy(hwc.get_parameters()))
    hwc.set_parameters(copy.deepcopy(chw.get_parameters()))
    for model in (hwc, chw):
        for optimizer in (model.critic.optimizer, model.actor.optimizer, model.encoder_optimizer, model.decoder_optimizer):
            for parameter, state in optimizer.state.items():
                assert state["exp_avg"].stride() == state["exp_avg_sq"].stride() == parameter.stride()
