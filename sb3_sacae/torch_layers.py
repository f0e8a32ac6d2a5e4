"""Networks of SAC-AE: the shared conv trunk, the projection heads, the decoder and their initialisation."""

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn


def weight_init(module: nn.Module) -> None:
    """
    SAC-AE initialisation: orthogonal Linear (bias 0), delta-orthogonal conv and transposed conv
    (zero weight except an orthogonal centre tap scaled by the ReLU gain; Xiao et al. 2018, arXiv:1806.05393).
    """
    if isinstance(module, nn.Linear):
        nn.init.orthogonal_(module.weight.data)
        if module.bias is not None:
            module.bias.data.fill_(0.0)
    elif isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        module.weight.data.fill_(0.0)
        if module.bias is not None:
            module.bias.data.fill_(0.0)
        mid_h, mid_w = module.weight.size(2) // 2, module.weight.size(3) // 2
        nn.init.orthogonal_(module.weight.data[:, :, mid_h, mid_w], nn.init.calculate_gain("relu"))


def conv_output_side(side: int, n_conv_layers: int) -> int:
    """Spatial size after the trunk: one 3x3 stride-2 conv, then 3x3 stride-1 convs, no padding."""
    side = (side - 3) // 2 + 1
    return side - 2 * (n_conv_layers - 1)


def min_image_side(n_conv_layers: int) -> int:
    """Smallest image side the trunk accepts (its last conv must still see a 1x1 output)."""
    side = 3
    while conv_output_side(side, n_conv_layers) < 1:
        side += 1
    return side


class ConvTrunk(nn.Module):
    """
    The conv layers of the SAC-AE encoder: shared (one object) by the actor and the critic.

    :param observation_space: channel-first image space (C, H, W)
    :param n_filters: filters per conv layer (paper: 32)
    :param n_conv_layers: number of conv layers (paper: 4)
    :param normalize_images: divide the input by 255 (uint8 pixels)
    :param channels_last: run the convs in NHWC memory layout (faster with oneDNN on some CPUs)
    """

    def __init__(
        self,
        observation_space: spaces.Box,
        n_filters: int = 32,
        n_conv_layers: int = 4,
        normalize_images: bool = True,
        channels_last: bool = False,
    ):
        super().__init__()
        n_channels, height, width = observation_space.shape
        for name, value in (("n_filters", n_filters), ("n_conv_layers", n_conv_layers)):
            if int(value) < 1:
                raise ValueError(f"{name} must be >= 1, got {value} (paper: n_filters=32, n_conv_layers=4)")
        min_side = min_image_side(n_conv_layers)
        if min(height, width) < min_side:
            raise ValueError(
                f"SACAE's {n_conv_layers}-layer encoder needs image observations of at least {min_side}x{min_side} pixels, "
                f"got {height}x{width}: resize with gymnasium.wrappers.ResizeObservation or use fewer n_conv_layers"
            )
        self.normalize_images = normalize_images
        layers: list[nn.Module] = [nn.Conv2d(n_channels, n_filters, 3, stride=2), nn.ReLU()]
        for _ in range(n_conv_layers - 1):
            layers += [nn.Conv2d(n_filters, n_filters, 3, stride=1), nn.ReLU()]
        self.convs = nn.Sequential(*layers)
        with th.no_grad():
            self.output_shape: tuple[int, ...] = tuple(self.convs(th.zeros(1, n_channels, height, width)).shape[1:])
        self.n_flatten = int(np.prod(self.output_shape))
        self.memory_format = th.channels_last if channels_last else th.contiguous_format

    def preprocess(self, observations: th.Tensor, dtype: th.dtype = th.float32) -> th.Tensor:
        """Raw observations -> conv input: one copy into ``dtype`` and the trunk's memory layout, then / 255."""
        # copy=True: the in-place division must never reach the caller's tensor (float images already in layout)
        pixels = observations.to(dtype=dtype, memory_format=self.memory_format, copy=True)
        return pixels.mul_(1.0 / 255.0) if self.normalize_images else pixels

    def conv_features(self, pixels: th.Tensor) -> th.Tensor:
        """Flat float32 conv features of preprocessed pixels, in (C, H, W) order whatever the memory layout."""
        return self.convs(pixels).contiguous().flatten(start_dim=1).float()

    def forward(self, observations: th.Tensor) -> th.Tensor:
        return self.conv_features(self.preprocess(observations))


class ProjectionHead(nn.Module):
    """Linear -> LayerNorm -> tanh: turns conv features into the SAC-AE latent."""

    def __init__(self, n_input: int, features_dim: int):
        super().__init__()
        self.linear = nn.Linear(n_input, features_dim)
        self.layer_norm = nn.LayerNorm(features_dim)

    def forward(self, conv_features: th.Tensor) -> th.Tensor:
        return th.tanh(self.layer_norm(self.linear(conv_features)))


class PixelEncoder(BaseFeaturesExtractor):
    """
    A projection head on top of a conv trunk that may be shared with another encoder.

    :param observation_space: channel-first image space
    :param trunk: the conv trunk (the same object for the actor and the critic)
    :param features_dim: size of the latent (paper: 50)
    :param detach_trunk: stop gradients at the conv features (the actor's encoder)
    """

    def __init__(self, observation_space: spaces.Box, trunk: ConvTrunk, features_dim: int = 50, detach_trunk: bool = False):
        super().__init__(observation_space, features_dim)
        self.trunk = trunk
        self.head = ProjectionHead(trunk.n_flatten, features_dim)
        self.detach_trunk = detach_trunk

    def forward(self, observations: th.Tensor) -> th.Tensor:
        conv_features = self.trunk(observations)
        if self.detach_trunk:
            # SAC-AE: the actor must not move the shared convs; only critic and decoder train them
            conv_features = conv_features.detach()
        return self.head(conv_features)


class PixelDecoder(nn.Module):
    """
    Deterministic deconvolutional decoder: latent -> image of the trunk's input shape.

    Mirrors the trunk: Linear to the conv output, ReLU, stride-1 transposed convs, and a final stride-2
    transposed conv whose output padding restores the exact input size (computed, never tabulated).

    :param trunk: the conv trunk whose input the decoder reconstructs
    :param n_channels: channels of the reconstructed image
    :param image_shape: (H, W) of the reconstructed image
    :param features_dim: size of the latent
    :param n_filters: filters per transposed conv
    """

    def __init__(self, trunk: ConvTrunk, n_channels: int, image_shape: tuple[int, int], features_dim: int, n_filters: int):
        super().__init__()
        self.conv_shape = trunk.output_shape
        self.memory_format = trunk.memory_format
        self.linear = nn.Linear(features_dim, trunk.n_flatten)
        n_conv_layers = sum(isinstance(layer, nn.Conv2d) for layer in trunk.convs)
        layers: list[nn.Module] = []
        for _ in range(n_conv_layers - 1):
            layers += [nn.ConvTranspose2d(n_filters, n_filters, 3, stride=1), nn.ReLU()]
        # (side - 1) * 2 + 3 is what a stride-2 transposed conv gives; pad the rest back to the input size
        before_last_side = [side + 2 * (n_conv_layers - 1) for side in self.conv_shape[1:]]
        output_padding = tuple(
            target - ((side - 1) * 2 + 3) for target, side in zip(image_shape, before_last_side, strict=True)
        )
        layers.append(nn.ConvTranspose2d(n_filters, n_channels, 3, stride=2, output_padding=output_padding))
        self.deconvs = nn.Sequential(*layers)

    def forward(self, latent: th.Tensor) -> th.Tensor:
        hidden = th.relu(self.linear(latent))
        return self.deconvs(hidden.view(-1, *self.conv_shape).contiguous(memory_format=self.memory_format))


def reconstruction_target(observations: th.Tensor, bits: int = 5) -> th.Tensor:
    """
    The decoder's target: pixels reduced to ``bits`` bits, dequantised with uniform noise of one bin
    and shifted to [-0.5, 0.5) (Glow, arXiv:1807.03039; SAC-AE section 6).

    :param observations: raw pixels in [0, 255]
    """
    bins = 2**bits
    if observations.dtype == th.uint8:
        quantised = observations >> (8 - bits)  # floor(x / 2^(8 - bits)) in one byte per pixel
    else:
        quantised = th.floor(observations.float() / 2 ** (8 - bits))
    noise = th.rand(observations.shape, device=observations.device)
    # float32 rounding can carry the top bin up to exactly 0.5: keep the interval half-open
    return noise.add_(quantised).mul_(1.0 / bins).sub_(0.5).clamp_(max=0.5 - 2**-25)


def random_shift(observations: th.Tensor, pad: int) -> th.Tensor:
    """
    DrQ augmentation (Kostrikov et al. 2020, arXiv:2004.13649): pad each image by ``pad`` pixels, replicating the
    border, and crop it back at a random offset, independently per sample. Works on any dtype (uint8 included):
    the padding is done by clamping indices, so no padded copy is made.

    :param observations: batch of channel-first images (B, C, H, W)
    :param pad: padding in pixels (DrQ: 4)
    """
    batch, _, height, width = observations.shape
    offsets = th.randint(0, 2 * pad + 1, (batch, 2), device=observations.device) - pad
    rows = (th.arange(height, device=observations.device) + offsets[:, :1]).clamp_(0, height - 1)  # (B, H)
    cols = (th.arange(width, device=observations.device) + offsets[:, 1:]).clamp_(0, width - 1)  # (B, W)
    index = th.arange(batch, device=observations.device)[:, None, None]
    # (B, H, W, C) from advanced indexing over (batch, row, col), then back to channel-first
    return observations.permute(0, 2, 3, 1)[index, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)
