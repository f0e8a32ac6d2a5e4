"""Networks of SAC-AE: the shared trunks (conv, MLP, Dict), the projection heads, the decoders and their initialisation."""

import contextlib
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Protocol, cast

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, create_mlp
from torch import nn
from torch.nn import functional as F

from sb3_sacae.accel.deconv import DeconvLayer
from sb3_sacae.accel.flat_order import FlatOrdered, hwc_order
from sb3_sacae.accel.reconstruction import reconstruction_loss

# The target lived here in earlier versions: its names stay importable from this module
from sb3_sacae.reconstruction import reconstruction_target as reconstruction_target
from sb3_sacae.reconstruction import uniform_bytes as uniform_bytes


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
        layers: list[nn.Module] = [nn.Conv2d(n_channels, n_filters, 3, stride=2), nn.ReLU(inplace=True)]
        for _ in range(n_conv_layers - 1):
            layers += [nn.Conv2d(n_filters, n_filters, 3, stride=1), nn.ReLU(inplace=True)]
        self.convs = nn.Sequential(*layers)
        with th.no_grad():
            self.output_shape: tuple[int, ...] = tuple(self.convs(th.zeros(1, n_channels, height, width)).shape[1:])
        self.n_flatten = int(np.prod(self.output_shape))
        self.memory_format = th.channels_last if channels_last else th.contiguous_format

    def flat_order(self) -> th.Tensor | None:
        """Order of the flat features (see :func:`hwc_order`): (H, W, C) with channels_last, None for (C, H, W)."""
        return hwc_order(self.output_shape) if self.memory_format == th.channels_last else None

    def in_layout(self, observations: th.Tensor) -> th.Tensor:
        """Raw observations in the trunk's memory layout, as they are (no copy when they already are)."""
        return observations.contiguous(memory_format=self.memory_format) if observations.dim() == 4 else observations

    def preprocess(self, observations: th.Tensor, dtype: th.dtype = th.float32) -> th.Tensor:
        """Raw observations -> conv input: one copy into ``dtype`` and the trunk's memory layout, then / 255."""
        if observations.element_size() < th.empty((), dtype=dtype).element_size():
            # Change the layout in the narrow dtype, then widen in a contiguous pass: the layout-changing widening
            # copy is 2x slower than the two together (uint8 -> bfloat16 NHWC, 9 channels)
            observations = self.in_layout(observations)
        # copy=True: the in-place division must never reach the caller's tensor (float images already in layout)
        pixels = observations.to(dtype=dtype, memory_format=self.memory_format, copy=True)
        return pixels.mul_(1.0 / 255.0) if self.normalize_images else pixels

    def features(self, pixels: th.Tensor) -> th.Tensor:
        """
        Flat conv features of preprocessed pixels, in the trunk's :meth:`flat_order`: (H, W, C) with channels_last,
        the order NHWC memory holds them in (no copy), (C, H, W) otherwise. Bfloat16 pixels (``preprocess(obs,
        th.bfloat16)``, what ``bf16_autocast`` asks for) run the convs under bfloat16 autocast and give bfloat16
        features, which the projection head reads as they are; float32 pixels give float32 features.
        """
        bf16 = th.autocast(pixels.device.type, dtype=th.bfloat16) if pixels.dtype == th.bfloat16 else contextlib.nullcontext()
        *layers, last_relu = self.convs
        with bf16:
            hidden = pixels
            for layer in layers:
                hidden = layer(hidden)
            if self.memory_format == th.channels_last:
                return last_relu(hidden).permute(0, 2, 3, 1).flatten(start_dim=1)  # a view of NHWC memory
            return last_relu(hidden.contiguous()).flatten(start_dim=1)

    def conv_features(self, pixels: th.Tensor, dtype: th.dtype | None = th.float32) -> th.Tensor:
        """:meth:`features` cast to ``dtype`` (None keeps the convs' dtype): the name of earlier versions."""
        features = self.features(pixels)
        return features if dtype is None else features.to(dtype)

    def forward(self, observations: th.Tensor) -> th.Tensor:
        return self.features(self.preprocess(observations))


class ProjectionHead(FlatOrdered):
    """
    Linear -> LayerNorm -> tanh: turns conv features into the SAC-AE latent.

    :param n_input: number of trunk features
    :param features_dim: size of the latent
    :param flat_order: the trunk's feature order (``trunk.flat_order()``); the Linear's weight columns follow it, and
        state dicts hold them in (C, H, W) order (:class:`FlatOrdered`)
    """

    def __init__(self, n_input: int, features_dim: int, flat_order: th.Tensor | None = None):
        super().__init__()
        self.linear = nn.Linear(n_input, features_dim)
        self.layer_norm = nn.LayerNorm(features_dim)
        self._set_flat_order(flat_order)

    def flat_ordered(self) -> list[tuple[str, int]]:
        return [("linear.weight", 1)]

    def forward(self, features: th.Tensor) -> th.Tensor:
        """
        The float32 latent. Bfloat16 trunk features (a conv trunk under ``bf16_autocast``) run the Linear, the largest
        matmul of the update, in bfloat16 as well: only its weight, bias and output are rounded; LayerNorm and tanh
        always run in float32. Float32 features leave any autocast of the caller in charge.
        """
        bf16 = (
            th.autocast(features.device.type, dtype=th.bfloat16) if features.dtype == th.bfloat16 else contextlib.nullcontext()
        )
        with bf16:
            projected = self.linear(features)
        return th.tanh(self.layer_norm(projected.float()))


def scaled_states(observations: th.Tensor, scale: float) -> th.Tensor:
    """Observations as an MLP trunk reads them (and its decoder reconstructs them): flat float32, times ``scale``."""
    states = observations.float().flatten(start_dim=1)
    return states * scale if scale != 1.0 else states


class MlpTrunk(nn.Module):
    """
    The MLP layers of a state encoder (``MlpPolicy``, and the vector keys of ``MultiInputPolicy``): the state
    counterpart of :class:`ConvTrunk`, with the same interface (``in_layout``, ``preprocess``, ``features``,
    ``n_flatten``).

    :param n_input: size of the flattened state vector
    :param net_arch: hidden layers, each Linear -> ReLU; ``[]`` passes the state through unchanged
    :param scale: factor applied to the raw observations (1 / 255 for uint8 images read as vectors, as SB3 divides
        them when ``normalize_images`` is on; 1 for states)
    """

    def __init__(self, n_input: int, net_arch: list[int], scale: float = 1.0):
        super().__init__()
        self.mlp = nn.Sequential(*create_mlp(n_input, -1, list(net_arch), nn.ReLU))
        self.n_flatten = int(net_arch[-1]) if net_arch else int(n_input)
        self.scale = float(scale)

    def preprocess(self, observations: th.Tensor, dtype: th.dtype = th.float32) -> th.Tensor:
        """
        Raw state vectors -> flat float32, times :attr:`scale` (``dtype`` is for pixels: states stay float32 under
        ``bf16_autocast``).
        """
        return scaled_states(observations, self.scale)

    def flat_order(self) -> None:
        """The features' order: the MLP's own, nothing to rearrange (see :meth:`ConvTrunk.flat_order`)."""
        return None

    def in_layout(self, observations: th.Tensor) -> th.Tensor:
        """State vectors have no memory layout to choose: returned as they are."""
        return observations

    def features(self, states: th.Tensor) -> th.Tensor:
        """Flat float32 features of preprocessed states (never autocast: ``bf16_autocast`` is for the convs)."""
        with th.autocast(device_type=states.device.type, enabled=False):
            return self.mlp(states)

    # The name of earlier versions (an MLP trunk has no convolutions)
    conv_features = features

    def forward(self, observations: th.Tensor) -> th.Tensor:
        return self.features(self.preprocess(observations))


class MultiTrunk(nn.Module):
    """
    Trunk of ``MultiInputPolicy`` for Dict observations: one :class:`ConvTrunk` per encoded image key and one
    :class:`MlpTrunk` over the concatenation of the encoded vector keys (in ``vector_keys`` order); the features
    are concatenated (image keys first) before the projection head.

    :param observation_space: the Dict observation space (image keys channel-first)
    :param image_keys: keys read by conv trunks
    :param vector_keys: keys read by the MLP trunk
    :param n_filters: filters per conv layer
    :param n_conv_layers: conv layers per image trunk
    :param normalize_images: divide the images by 255
    :param channels_last: NHWC memory layout for the convs
    :param mlp_net_arch: hidden layers of the MLP trunk
    """

    def __init__(
        self,
        observation_space: spaces.Dict,
        image_keys: list[str],
        vector_keys: list[str],
        n_filters: int,
        n_conv_layers: int,
        normalize_images: bool,
        channels_last: bool,
        mlp_net_arch: list[int],
    ):
        super().__init__()
        self.image_keys, self.vector_keys = list(image_keys), list(vector_keys)
        self.image_trunks = nn.ModuleDict(
            {
                key: ConvTrunk(
                    cast(spaces.Box, observation_space[key]), n_filters, n_conv_layers, normalize_images, channels_last
                )
                for key in self.image_keys
            }
        )
        n_vector = sum(int(np.prod(observation_space[key].shape or ())) for key in self.vector_keys)
        self.vector_trunk = MlpTrunk(n_vector, mlp_net_arch) if self.vector_keys else None
        conv_sizes = [trunk.n_flatten for trunk in self._conv_trunks().values()]
        self.n_flatten = sum(conv_sizes) + (self.vector_trunk.n_flatten if self.vector_trunk is not None else 0)

    def preprocess(
        self, observations: dict[str, th.Tensor], dtype: th.dtype = th.float32
    ) -> tuple[dict[str, th.Tensor], th.Tensor | None]:
        """Raw Dict observations -> (prepared images by key, the concatenated float32 vector keys or None)."""
        images = {key: trunk.preprocess(observations[key], dtype) for key, trunk in self._conv_trunks().items()}
        if self.vector_trunk is None:
            return images, None
        vectors = th.cat([observations[key].float().flatten(start_dim=1) for key in self.vector_keys], dim=1)
        return images, vectors

    def _conv_trunks(self) -> dict[str, ConvTrunk]:
        """The conv trunk of each image key (``image_trunks``, typed)."""
        return {key: cast(ConvTrunk, trunk) for key, trunk in self.image_trunks.items()}

    def flat_order(self) -> th.Tensor | None:
        """Order of the flat features: each image trunk's (see :meth:`ConvTrunk.flat_order`), then the vectors'."""
        trunks = list(self._conv_trunks().values())
        trunk_orders = [trunk.flat_order() for trunk in trunks]
        if all(order is None for order in trunk_orders):
            return None
        orders, offset = [], 0
        for trunk, order in zip(trunks, trunk_orders, strict=True):
            orders.append(offset + (th.arange(trunk.n_flatten) if order is None else order))
            offset += trunk.n_flatten
        return th.cat([*orders, th.arange(offset, self.n_flatten)])

    def in_layout(self, observations: dict[str, th.Tensor]) -> dict[str, th.Tensor]:
        """Raw Dict observations with each image key in its trunk's memory layout (see :meth:`ConvTrunk.in_layout`)."""
        trunks = self._conv_trunks()
        return {key: trunks[key].in_layout(value) if key in trunks else value for key, value in observations.items()}

    def features(self, prepared: tuple[dict[str, th.Tensor], th.Tensor | None]) -> th.Tensor:
        """Flat float32 features: each image key's conv features (in float32), then the vector trunk's, concatenated."""
        images, vectors = prepared
        features = [trunk.features(images[key]).float() for key, trunk in self._conv_trunks().items()]
        if self.vector_trunk is not None and vectors is not None:
            features.append(self.vector_trunk.features(vectors))
        return th.cat(features, dim=1)

    # The name of earlier versions
    conv_features = features

    def forward(self, observations: dict[str, th.Tensor]) -> th.Tensor:
        return self.features(self.preprocess(observations))


class Trunk(Protocol):
    """
    What the algorithm asks a trunk (:class:`ConvTrunk`, :class:`MlpTrunk`, :class:`MultiTrunk`): raw observations in
    its memory layout, prepared once per batch in a compute dtype, and flat features of what it prepared.
    """

    n_flatten: int

    def in_layout(self, observations: Any) -> Any: ...

    def preprocess(self, observations: Any, dtype: th.dtype = th.float32) -> Any: ...

    def features(self, prepared: Any) -> th.Tensor: ...

    def flat_order(self) -> th.Tensor | None: ...

    def parameters(self, recurse: bool = True) -> Iterator[nn.Parameter]: ...

    def __call__(self, observations: Any) -> th.Tensor: ...


class Encoder(BaseFeaturesExtractor):
    """
    A projection head on top of a trunk (conv, MLP or Dict) that may be shared with another encoder.

    :param observation_space: the observation space the trunk reads
    :param trunk: the trunk (the same object for the actor and the critic)
    :param features_dim: size of the latent (paper: 50)
    :param detach_trunk: stop gradients at the trunk features (the actor's encoder)
    """

    def __init__(self, observation_space: spaces.Space, trunk: Trunk, features_dim: int = 50, detach_trunk: bool = False):
        super().__init__(observation_space, features_dim)
        self.trunk = trunk
        self.head = ProjectionHead(trunk.n_flatten, features_dim, trunk.flat_order())
        self.detach_trunk = detach_trunk

    def latent(self, trunk_features: th.Tensor) -> th.Tensor:
        """
        The latent from the trunk's features (``trunk.features``, computed once per batch and read by several
        encoders of the same trunk).
        """
        if self.detach_trunk:
            # SAC-AE: the actor must not move the shared convs; only critic and decoder train them
            trunk_features = trunk_features.detach()
        return self.head(trunk_features)

    def forward(self, observations: th.Tensor | dict[str, th.Tensor]) -> th.Tensor:
        return self.latent(self.trunk(observations))


class Decoder(nn.Module):
    """
    Base of the decoders: each reconstructs what its encoder read from the latent, and owns its reconstruction loss
    (the target and how it is compared), so the algorithm asks every decoder the same question.
    """

    def reconstruct(self, latent: th.Tensor, compute_dtype: th.dtype = th.float32) -> Any:
        """The reconstruction; ``compute_dtype`` is the dtype the encoder's pixels were prepared in (``bf16_autocast``)."""
        return self(latent)

    def loss(self, reconstruction: Any, observations: Any) -> th.Tensor:
        """The reconstruction loss of ``reconstruction`` against the raw observations (what the replay buffer holds)."""
        raise NotImplementedError

    def reconstruction_loss(
        self, latent: th.Tensor, observations: th.Tensor | dict[str, th.Tensor], compute_dtype: th.dtype = th.float32
    ) -> th.Tensor:
        """The reconstruction loss of the observations from their latent."""
        return self.loss(self.reconstruct(latent, compute_dtype), observations)


class PixelDecoder(FlatOrdered, Decoder):
    """
    Deterministic deconvolutional decoder: latent -> image of the trunk's input shape.

    Mirrors the trunk: Linear to the conv output, ReLU, stride-1 transposed convs, and a final stride-2
    transposed conv whose output padding restores the exact input size (computed, never tabulated).

    :param trunk: the conv trunk whose input the decoder reconstructs
    :param n_channels: channels of the reconstructed image
    :param image_shape: (H, W) of the reconstructed image
    :param features_dim: size of the latent
    :param n_filters: filters per transposed conv
    :param pixel_range: (low, high) bounds of pre-normalised images (``normalize_images=False``), rescaled to the
        [0, 255] pixel scale of the 5-bit target; None for images already on that scale (uint8)
    :param fast_kernels: the speed pieces of :mod:`sb3_sacae.accel` (the transposed convs' backward as convolutions,
        the sliced reconstruction loss) where they apply; False: plain ``nn.ConvTranspose2d`` and ``F.mse_loss``

    With a channels-last trunk the Linear's outputs (weight rows and bias) are in (H, W, C) order, so they are the
    first map in NHWC memory without a copy; state dicts hold them in (C, H, W) order (:class:`FlatOrdered`).
    """

    def __init__(
        self,
        trunk: ConvTrunk,
        n_channels: int,
        image_shape: tuple[int, int],
        features_dim: int,
        n_filters: int,
        pixel_range: tuple[float, float] | None = None,
        fast_kernels: bool = True,
    ):
        super().__init__()
        self.pixel_range = pixel_range
        self.fast_kernels = fast_kernels
        deconv = DeconvLayer if fast_kernels else nn.ConvTranspose2d
        self.conv_shape = trunk.output_shape
        self.linear = nn.Linear(features_dim, trunk.n_flatten)
        self._set_flat_order(trunk.flat_order())
        n_conv_layers = sum(isinstance(layer, nn.Conv2d) for layer in trunk.convs)
        layers: list[nn.Module] = []
        for _ in range(n_conv_layers - 1):
            layers += [deconv(n_filters, n_filters, 3, stride=1), nn.ReLU(inplace=True)]
        # (side - 1) * 2 + 3 is what a stride-2 transposed conv gives; pad the rest back to the input size
        before_last_side = [side + 2 * (n_conv_layers - 1) for side in self.conv_shape[1:]]
        pad_h, pad_w = (target - ((side - 1) * 2 + 3) for target, side in zip(image_shape, before_last_side, strict=True))
        output_padding = (pad_h, pad_w)
        layers.append(deconv(n_filters, n_channels, 3, stride=2, output_padding=output_padding))
        self.deconvs = nn.Sequential(*layers)

    def flat_ordered(self) -> list[tuple[str, int]]:
        return [("linear.weight", 0), ("linear.bias", 0)]

    def forward(self, latent: th.Tensor) -> th.Tensor:
        hidden = th.relu_(self.linear(latent))
        if self.flat_order is not None:
            channels, height, width = self.conv_shape
            return self.deconvs(hidden.view(-1, height, width, channels).permute(0, 3, 1, 2))  # NHWC, no copy
        return self.deconvs(hidden.view(-1, *self.conv_shape))  # NCHW trunk: (C, H, W) order is already its layout

    def reconstruct(self, latent: th.Tensor, compute_dtype: th.dtype = th.float32) -> th.Tensor:
        """The image; bfloat16 ``compute_dtype`` runs the Linear and the transposed convs under bfloat16 autocast."""
        bf16 = th.autocast(latent.device.type, dtype=th.bfloat16) if compute_dtype == th.bfloat16 else contextlib.nullcontext()
        with bf16:
            return self(latent)

    def loss(self, reconstruction: th.Tensor, observations: th.Tensor) -> th.Tensor:
        """MSE against the 5-bit dequantised frames (paper section 6), sliced where the accel seam selects it."""
        if self.pixel_range is not None:
            # Pre-normalised images: rescale from the observation space's bounds
            low, high = self.pixel_range
            observations = (observations.float() - low) * (255.0 / (high - low))
        return reconstruction_loss(reconstruction, observations, fast=self.fast_kernels)


class MlpDecoder(Decoder):
    """
    Deterministic MLP decoder: latent -> state vector (flat), mirroring :class:`MlpTrunk`; no output activation.

    :param features_dim: size of the latent
    :param n_output: size of the reconstructed (flattened) state
    :param net_arch: hidden layers of the trunk it mirrors (used in reverse order)
    :param scale: the trunk's :attr:`MlpTrunk.scale`: the decoder reconstructs what the trunk reads
    """

    def __init__(self, features_dim: int, n_output: int, net_arch: list[int], scale: float = 1.0):
        super().__init__()
        self.mlp = nn.Sequential(*create_mlp(features_dim, n_output, list(reversed(net_arch)), nn.ReLU))
        self.scale = float(scale)

    def forward(self, latent: th.Tensor) -> th.Tensor:
        with th.autocast(device_type=latent.device.type, enabled=False):
            return self.mlp(latent.float())

    def loss(self, reconstruction: th.Tensor, observations: th.Tensor) -> th.Tensor:
        """MSE against the state itself as the trunk reads it (times :attr:`scale`; no quantisation), in float32."""
        return F.mse_loss(reconstruction.float(), scaled_states(observations, self.scale))


class MultiDecoder(Decoder):
    """
    Decoder of ``MultiInputPolicy``: one decoder per decoded key (:class:`PixelDecoder` for image keys,
    :class:`MlpDecoder` for vector keys), all reading the same latent.

    :param decoders: decoder of each decoded key
    """

    def __init__(self, decoders: Mapping[str, Decoder]):
        super().__init__()
        self.decoders = nn.ModuleDict(decoders)

    def forward(self, latent: th.Tensor) -> dict[str, th.Tensor]:
        return {key: decoder(latent) for key, decoder in self.decoders.items()}

    def reconstruct(self, latent: th.Tensor, compute_dtype: th.dtype = th.float32) -> dict[str, th.Tensor]:
        return {key: decoder.reconstruct(latent, compute_dtype) for key, decoder in self._decoders().items()}

    def _decoders(self) -> dict[str, Decoder]:
        return {key: cast(Decoder, decoder) for key, decoder in self.decoders.items()}

    def loss(self, reconstruction: dict[str, th.Tensor], observations: dict[str, th.Tensor]) -> th.Tensor:
        """The sum of each decoded key's loss (the 5-bit target for image keys, the values for vector keys)."""
        losses = [decoder.loss(reconstruction[key], observations[key]) for key, decoder in self._decoders().items()]
        return th.stack(losses).sum()


def image_space_keys(observation_space: spaces.Space) -> list[str | None]:
    """The keys of the image (3D Box) spaces of a Dict observation space; ``[None]`` for an image Box, else ``[]``."""
    named: list[tuple[str | None, spaces.Space]] = (
        list(observation_space.spaces.items()) if isinstance(observation_space, spaces.Dict) else [(None, observation_space)]
    )
    return [key for key, space in named if isinstance(space, spaces.Box) and len(space.shape) == 3]


def shift_images(
    observations: th.Tensor | dict[str, th.Tensor], pad: int, observation_space: spaces.Space
) -> th.Tensor | dict[str, th.Tensor]:
    """:func:`random_shift` of the images of a batch: every image key of a Dict, each independently."""
    if isinstance(observations, dict):
        images = image_space_keys(observation_space)
        return {key: random_shift(value, pad) if key in images else value for key, value in observations.items()}
    return random_shift(observations, pad)


@contextlib.contextmanager
def frozen(parameters: Iterable[th.Tensor]) -> Iterator[None]:
    """Parameters that require gradients stop requiring them inside the block (graphs built there skip them)."""
    to_freeze = [parameter for parameter in parameters if parameter.requires_grad]
    for parameter in to_freeze:
        parameter.requires_grad_(False)
    try:
        yield
    finally:
        for parameter in to_freeze:
            parameter.requires_grad_(True)


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
