"""Any image size from the minimum up, square or not, channel-first or -last, any channel count."""

import pytest
import torch as th

from sb3_sacae.torch_layers import min_image_side
from tests.conftest import TinyPixelEnv, tiny_model


@pytest.mark.parametrize(
    "shape, channel_last",
    [
        ((9, 64, 64), False),
        ((9, 84, 84), False),
        ((3, 96, 96), False),
        ((9, 100, 100), False),
        ((3, 128, 128), False),
        ((6, 64, 96), False),
        ((84, 84, 9), True),
        ((1, 65, 65), False),
        ((12, 33, 47), False),
    ],
)
def test_trains_and_reconstructs_the_input_shape(shape, channel_last):
    model = tiny_model(TinyPixelEnv(shape, channel_last=channel_last), learning_starts=4, batch_size=4, buffer_size=20)
    model.learn(8)
    policy_shape = model.policy.observation_space.shape
    assert policy_shape[0] == (shape[-1] if channel_last else shape[0])
    with th.no_grad():
        latent = model.critic.features_extractor(th.zeros(2, *policy_shape, device=model.device))
        assert model.policy.decoder(latent).shape == (2, *policy_shape)


def test_minimum_size_works_and_one_less_is_refused():
    side = min_image_side(4)
    tiny_model(TinyPixelEnv((3, side, side)))
    with pytest.raises(ValueError, match=f"at least {side}x{side}"):
        tiny_model(TinyPixelEnv((3, side - 1, side + 10)))


def test_encoder_output_shape_comes_from_a_dummy_forward_pass():
    model = tiny_model(TinyPixelEnv((9, 84, 84)), policy_kwargs=dict(features_dim=8, n_filters=32, net_arch=[16, 16]))
    # 84 -> 41 (stride 2) -> 39 -> 37 -> 35, the paper's 35x35x32
    assert model.policy.encoder.output_shape == (32, 35, 35)
