"""Paper networks: 4 conv layers of 32 3x3 filters (stride 2 then 1), Linear-LayerNorm-tanh, 1024-wide MLPs,
orthogonal and delta-orthogonal initialisation."""

import torch as th
from torch import nn

from sb3_sacae.torch_layers import weight_init
from tests.conftest import TinyPixelEnv, tiny_model


def _paper_model():
    return tiny_model(TinyPixelEnv((9, 84, 84)), policy_kwargs={}, buffer_size=10)


def test_conv_trunk_layers():
    convs = [m for m in _paper_model().policy.encoder.modules() if isinstance(m, nn.Conv2d)]
    assert [c.stride for c in convs] == [(2, 2), (1, 1), (1, 1), (1, 1)]
    assert all(c.kernel_size == (3, 3) and c.out_channels == 32 and c.padding == (0, 0) for c in convs)
    assert convs[0].in_channels == 9


def test_latent_is_tanh_of_layer_norm():
    model = _paper_model()
    latent = model.critic.features_extractor(th.randint(0, 256, (4, 9, 84, 84), device=model.device).float())
    assert latent.shape == (4, 50) and latent.abs().max() <= 1


def test_mlps_are_two_hidden_layers_of_1024():
    model = _paper_model()
    actor_linears = [m for m in model.actor.latent_pi if isinstance(m, nn.Linear)]
    assert [m.out_features for m in actor_linears] == [1024, 1024]
    assert len(model.critic.q_networks) == 2
    for q_net in model.critic.q_networks:
        assert [m.out_features for m in q_net if isinstance(m, nn.Linear)] == [1024, 1024, 1]


def test_decoder_mirrors_the_trunk():
    model = _paper_model()
    deconvs = [m for m in model.policy.decoder.deconvs if isinstance(m, nn.ConvTranspose2d)]
    assert [d.stride for d in deconvs] == [(1, 1), (1, 1), (1, 1), (2, 2)]
    assert deconvs[-1].out_channels == 9 and deconvs[-1].output_padding == (1, 1)
    assert not isinstance(list(model.policy.decoder.deconvs)[-1], nn.ReLU)  # no output activation


def test_delta_orthogonal_conv_init():
    conv = nn.Conv2d(32, 32, 3)
    weight_init(conv)
    weight = conv.weight.detach()
    off_centre = weight.clone()
    off_centre[:, :, 1, 1] = 0
    assert not off_centre.any() and not conv.bias.any()
    centre = weight[:, :, 1, 1]
    gain = nn.init.calculate_gain("relu")
    th.testing.assert_close(centre @ centre.T, gain**2 * th.eye(32), atol=1e-4, rtol=0)


def test_orthogonal_linear_init():
    linear = nn.Linear(16, 16)
    weight_init(linear)
    th.testing.assert_close(linear.weight @ linear.weight.T, th.eye(16), atol=1e-5, rtol=0)
    assert not linear.bias.any()


def test_built_policy_is_initialised_as_the_paper():
    model = _paper_model()
    for conv in (m for m in model.policy.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))):
        off_centre = conv.weight.detach().clone()
        off_centre[:, :, 1, 1] = 0
        assert not off_centre.any() and not conv.bias.any()
    head = model.critic.features_extractor.head.linear
    th.testing.assert_close(head.weight @ head.weight.T, th.eye(50, device=head.weight.device), atol=1e-4, rtol=0)
    assert not head.bias.any()


def test_latent_is_layer_normalised_before_tanh():
    model = _paper_model()
    head = model.critic.features_extractor.head
    conv = th.randn(4, model.policy.encoder.n_flatten, device=model.device)
    normalised = th.nn.functional.layer_norm(head.linear(conv), (50,))
    th.testing.assert_close(head(conv), th.tanh(normalised * head.layer_norm.weight + head.layer_norm.bias))
