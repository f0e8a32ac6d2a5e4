"""Networks of SAC-AE: the shared trunks (conv, MLP, Dict), the projection heads, the decoders and their initialisation."""

import contextlib

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, create_mlp
from torch import nn
from torch.nn import functional as F

from sb3_sacae.accel.deconv import DeconvLayer


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


def hwc_order(shape: tuple[int, ...]) -> th.Tensor:
    """
    Positions, in the (C, H, W) flattening of a ``shape`` = (C, H, W) feature map, of the features in (H, W, C)
    order: ``hwc = chw[:, hwc_order(shape)]``, the flattening NHWC (channels-last) memory gives without a copy.
    """
    channels, height, width = shape
    return th.arange(channels * height * width).view(channels, height, width).permute(1, 2, 0).flatten()


class FlatOrdered(nn.Module):
    """
    Base of the modules that keep a dimension of some parameters in the order their trunk flattens its features
    (``flat_order``: positions in (C, H, W) order, None when that order is (C, H, W) itself): the projection head
    reads channels-last conv features as they lie in memory, and the decoder's Linear writes a channels-last map,
    both without a layout copy of the activations. State dicts (the module's, and through
    :class:`OptimizerStateOrder` the optimizers') always hold the (C, H, W) order, so checkpoints do not depend on
    ``channels_last`` and match the modules of earlier versions; only the live parameters, and the optimizer
    moments of them, are in the trunk's order.
    """

    def _set_flat_order(self, flat_order: th.Tensor | None) -> None:
        self.register_buffer("flat_order", flat_order, persistent=False)
        self._register_state_dict_hook(_state_dict_in_chw_order)

    def flat_ordered(self) -> list[tuple[str, int]]:
        """(parameter name, dimension in the trunk's flat order) of each such parameter."""
        raise NotImplementedError

    def ordered_parameters(self) -> list[tuple[nn.Parameter, int, th.Tensor]]:
        """(parameter, dimension, order) of each parameter kept in the trunk's order; empty in (C, H, W) order."""
        order = self.flat_order
        if order is None:
            return []
        return [(self.get_parameter(name), dim, order) for name, dim in self.flat_ordered()]

    def to_flat_order_(self) -> None:
        """Rearrange parameters written in (C, H, W) order (by an initialiser, say) into the trunk's order, in place."""
        with th.no_grad():
            for parameter, dim, order in self.ordered_parameters():
                parameter.copy_(to_flat_order(parameter, dim, order))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # type: ignore[no-untyped-def, override]
        # (C, H, W) order in the file -> the trunk's order, before the child modules read their entries
        for name, dim in self.flat_ordered() if self.flat_order is not None else []:
            value = state_dict.get(prefix + name)
            if isinstance(value, th.Tensor) and value.shape == self.get_parameter(name).shape:
                state_dict[prefix + name] = to_flat_order(value, dim, self.flat_order)  # type: ignore[arg-type]
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


def _state_dict_in_chw_order(module: FlatOrdered, state_dict: dict, prefix: str, local_metadata: dict) -> None:
    """State-dict hook of :class:`FlatOrdered`: write the ordered parameters back in (C, H, W) order."""
    for name, dim in module.flat_ordered() if module.flat_order is not None else []:
        if prefix + name in state_dict:
            state_dict[prefix + name] = to_chw_order(state_dict[prefix + name], dim, module.flat_order)  # type: ignore[arg-type]


def to_flat_order(value: th.Tensor, dim: int, order: th.Tensor) -> th.Tensor:
    """A tensor with ``dim`` in (C, H, W) order, in the trunk's flat ``order`` (a new tensor)."""
    return value.detach().index_select(dim, order.to(value.device))


def to_chw_order(value: th.Tensor, dim: int, order: th.Tensor) -> th.Tensor:
    """A tensor with ``dim`` in the trunk's flat ``order``, back in (C, H, W) order (a new tensor)."""
    return value.detach().index_select(dim, th.argsort(order).to(value.device))


class OptimizerStateOrder:
    """
    Optimizer state-dict hooks (``register_state_dict_post_hook`` / ``register_load_state_dict_pre_hook``) that
    keep the saved per-parameter state (Adam's moments) of :class:`FlatOrdered` parameters in (C, H, W) order, like
    the parameters themselves in the module state dicts.

    :param network: the module holding the optimizer's parameters
    """

    def __init__(self, network: nn.Module):
        self.network = network

    def register(self, optimizer: th.optim.Optimizer) -> th.optim.Optimizer:
        optimizer.register_state_dict_post_hook(self.saved)
        optimizer.register_load_state_dict_pre_hook(self.loaded)
        return optimizer

    def _orders(self, optimizer: th.optim.Optimizer) -> dict[int, tuple[th.Size, int, th.Tensor]]:
        """Index in the optimizer's state dict -> (shape, dimension, order) of its parameters kept in a trunk's order."""
        ordered = {
            id(parameter): (parameter.shape, dim, order)
            for module in self.network.modules()
            if isinstance(module, FlatOrdered)
            for parameter, dim, order in module.ordered_parameters()
        }
        parameters = [parameter for group in optimizer.param_groups for parameter in group["params"]]
        return {index: ordered[id(parameter)] for index, parameter in enumerate(parameters) if id(parameter) in ordered}

    def _rearranged(self, optimizer: th.optim.Optimizer, state_dict: dict, to_chw: bool) -> dict:
        """A shallow copy of ``state_dict`` with new state tensors: never the live ones, nor the caller's."""
        state = dict(state_dict["state"])
        for index, (shape, dim, order) in self._orders(optimizer).items():
            if index not in state:
                continue
            state[index] = {
                key: (
                    (to_chw_order if to_chw else to_flat_order)(value, dim, order)
                    if isinstance(value, th.Tensor) and value.shape == shape
                    else value
                )
                for key, value in state[index].items()
            }
        return {**state_dict, "state": state}

    def saved(self, optimizer: th.optim.Optimizer, state_dict: dict) -> dict:
        return self._rearranged(optimizer, state_dict, to_chw=True)

    def loaded(self, optimizer: th.optim.Optimizer, state_dict: dict) -> dict:
        return self._rearranged(optimizer, state_dict, to_chw=False)


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


class MlpTrunk(nn.Module):
    """
    The MLP layers of a state encoder (``MlpPolicy``, and the vector keys of ``MultiInputPolicy``): the state
    counterpart of :class:`ConvTrunk`, with the same interface (``in_layout``, ``preprocess``, ``features``,
    ``n_flatten``).

    :param n_input: size of the flattened state vector
    :param net_arch: hidden layers, each Linear -> ReLU; ``[]`` passes the state through unchanged
    """

    def __init__(self, n_input: int, net_arch: list[int]):
        super().__init__()
        self.mlp = nn.Sequential(*create_mlp(n_input, -1, list(net_arch), nn.ReLU))
        self.n_flatten = int(net_arch[-1]) if net_arch else int(n_input)

    def preprocess(self, observations: th.Tensor, dtype: th.dtype = th.float32) -> th.Tensor:
        """Raw state vectors -> flat float32 (``dtype`` is for pixels: states stay float32 under ``bf16_autocast``)."""
        return observations.float().flatten(start_dim=1)

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
                key: ConvTrunk(observation_space[key], n_filters, n_conv_layers, normalize_images, channels_last)  # type: ignore[arg-type]
                for key in self.image_keys
            }
        )
        n_vector = sum(int(np.prod(observation_space[key].shape or ())) for key in self.vector_keys)
        self.vector_trunk = MlpTrunk(n_vector, mlp_net_arch) if self.vector_keys else None
        conv_sizes = [int(trunk.n_flatten) for trunk in self.image_trunks.values()]  # type: ignore[arg-type]
        self.n_flatten = sum(conv_sizes) + (self.vector_trunk.n_flatten if self.vector_trunk is not None else 0)

    def preprocess(
        self, observations: dict[str, th.Tensor], dtype: th.dtype = th.float32
    ) -> tuple[dict[str, th.Tensor], th.Tensor | None]:
        """Raw Dict observations -> (prepared images by key, the concatenated float32 vector keys or None)."""
        images = {key: trunk.preprocess(observations[key], dtype) for key, trunk in self.image_trunks.items()}  # type: ignore[operator]
        if self.vector_trunk is None:
            return images, None
        vectors = th.cat([observations[key].float().flatten(start_dim=1) for key in self.vector_keys], dim=1)
        return images, vectors

    def flat_order(self) -> th.Tensor | None:
        """Order of the flat features: each image trunk's (see :meth:`ConvTrunk.flat_order`), then the vectors'."""
        trunk_orders = [trunk.flat_order() for trunk in self.image_trunks.values()]  # type: ignore[operator]
        if all(order is None for order in trunk_orders):
            return None
        orders, offset = [], 0
        for trunk, order in zip(self.image_trunks.values(), trunk_orders, strict=True):
            orders.append(offset + (th.arange(trunk.n_flatten) if order is None else order))  # type: ignore[arg-type]
            offset += int(trunk.n_flatten)  # type: ignore[arg-type]
        return th.cat([*orders, th.arange(offset, self.n_flatten)])

    def in_layout(self, observations: dict[str, th.Tensor]) -> dict[str, th.Tensor]:
        """Raw Dict observations with each image key in its trunk's memory layout (see :meth:`ConvTrunk.in_layout`)."""
        trunks = self.image_trunks
        return {key: trunks[key].in_layout(value) if key in trunks else value for key, value in observations.items()}  # type: ignore[operator]

    def features(self, prepared: tuple[dict[str, th.Tensor], th.Tensor | None]) -> th.Tensor:
        """Flat float32 features: each image key's conv features (in float32), then the vector trunk's, concatenated."""
        images, vectors = prepared
        features = [trunk.features(images[key]).float() for key, trunk in self.image_trunks.items()]  # type: ignore[operator]
        if self.vector_trunk is not None:
            features.append(self.vector_trunk.features(vectors))  # type: ignore[arg-type]
        return th.cat(features, dim=1)

    # The name of earlier versions
    conv_features = features

    def forward(self, observations: dict[str, th.Tensor]) -> th.Tensor:
        return self.features(self.preprocess(observations))


Trunk = ConvTrunk | MlpTrunk | MultiTrunk


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

    def reconstruct(self, latent: th.Tensor, compute_dtype: th.dtype = th.float32) -> th.Tensor | dict[str, th.Tensor]:
        """The reconstruction; ``compute_dtype`` is the dtype the encoder's pixels were prepared in (``bf16_autocast``)."""
        return self(latent)

    def loss(
        self, reconstruction: th.Tensor | dict[str, th.Tensor], observations: th.Tensor | dict[str, th.Tensor]
    ) -> th.Tensor:
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
    ):
        super().__init__()
        self.pixel_range = pixel_range
        self.conv_shape = trunk.output_shape
        self.linear = nn.Linear(features_dim, trunk.n_flatten)
        self._set_flat_order(trunk.flat_order())
        n_conv_layers = sum(isinstance(layer, nn.Conv2d) for layer in trunk.convs)
        layers: list[nn.Module] = []
        for _ in range(n_conv_layers - 1):
            layers += [DeconvLayer(n_filters, n_filters, 3, stride=1), nn.ReLU(inplace=True)]
        # (side - 1) * 2 + 3 is what a stride-2 transposed conv gives; pad the rest back to the input size
        before_last_side = [side + 2 * (n_conv_layers - 1) for side in self.conv_shape[1:]]
        output_padding = tuple(
            target - ((side - 1) * 2 + 3) for target, side in zip(image_shape, before_last_side, strict=True)
        )
        layers.append(DeconvLayer(n_filters, n_channels, 3, stride=2, output_padding=output_padding))
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

    def loss(self, reconstruction: th.Tensor, observations: th.Tensor) -> th.Tensor:  # type: ignore[override]
        """MSE against the 5-bit dequantised frames (paper section 6): :func:`reconstruction_loss`."""
        if self.pixel_range is not None:
            # Pre-normalised images: rescale from the observation space's bounds
            low, high = self.pixel_range
            observations = (observations.float() - low) * (255.0 / (high - low))
        return reconstruction_loss(reconstruction, observations)


class MlpDecoder(Decoder):
    """
    Deterministic MLP decoder: latent -> state vector (flat), mirroring :class:`MlpTrunk`; no output activation.

    :param features_dim: size of the latent
    :param n_output: size of the reconstructed (flattened) state
    :param net_arch: hidden layers of the trunk it mirrors (used in reverse order)
    """

    def __init__(self, features_dim: int, n_output: int, net_arch: list[int]):
        super().__init__()
        self.mlp = nn.Sequential(*create_mlp(features_dim, n_output, list(reversed(net_arch)), nn.ReLU))

    def forward(self, latent: th.Tensor) -> th.Tensor:
        with th.autocast(device_type=latent.device.type, enabled=False):
            return self.mlp(latent.float())

    def loss(self, reconstruction: th.Tensor, observations: th.Tensor) -> th.Tensor:  # type: ignore[override]
        """MSE against the state itself (no quantisation), in float32."""
        return F.mse_loss(reconstruction.float(), observations.float().flatten(start_dim=1))


class MultiDecoder(Decoder):
    """
    Decoder of ``MultiInputPolicy``: one decoder per decoded key (:class:`PixelDecoder` for image keys,
    :class:`MlpDecoder` for vector keys), all reading the same latent.

    :param decoders: decoder of each decoded key
    """

    def __init__(self, decoders: dict[str, nn.Module]):
        super().__init__()
        self.decoders = nn.ModuleDict(decoders)

    def forward(self, latent: th.Tensor) -> dict[str, th.Tensor]:
        return {key: decoder(latent) for key, decoder in self.decoders.items()}

    def reconstruct(self, latent: th.Tensor, compute_dtype: th.dtype = th.float32) -> dict[str, th.Tensor]:
        return {key: decoder.reconstruct(latent, compute_dtype) for key, decoder in self.decoders.items()}  # type: ignore[operator]

    def loss(self, reconstruction: dict[str, th.Tensor], observations: dict[str, th.Tensor]) -> th.Tensor:  # type: ignore[override]
        """The sum of each decoded key's loss (the 5-bit target for image keys, the values for vector keys)."""
        losses = [decoder.loss(reconstruction[key], observations[key]) for key, decoder in self.decoders.items()]  # type: ignore[operator]
        return th.stack(losses).sum()


def reconstruction_target(
    observations: th.Tensor, bits: int = 5, memory_format: th.memory_format = th.contiguous_format
) -> th.Tensor:
    """
    The decoder's target: pixels reduced to ``bits`` bits, dequantised with uniform noise of one bin
    and shifted to [-0.5, 0.5) (Glow, arXiv:1807.03039; SAC-AE section 6).

    The noise has 8 bits of resolution per pixel, ``(u + 0.5) / 256`` of a bin for a uniform byte ``u``: one 64-bit
    draw of torch's generator covers 8 pixels, 6x cheaper than ``torch.rand`` (a float per pixel), which was
    a tenth of an 84x84 update on CPU. Mean and variance match the continuous uniform noise to 1 part in 65,536; the
    target lies on a grid of ``2^-(bits + 8)`` and is exact in float32, strictly inside (-0.5, 0.5).

    :param observations: raw pixels in [0, 255], batch first
    :param bits: bits kept per pixel (paper: 5)
    :param memory_format: layout of the returned tensor (match the reconstruction's to keep the loss copy-free)
    """
    _check_bits(bits)
    # the noise is drawn in (N, C, H, W) order whatever the layout, so both layouts train identically
    noise = uniform_bytes(observations.shape, observations.device)
    target = th.empty_like(noise, dtype=th.float32, memory_format=memory_format)
    return _fill_target(target, observations, noise, bits)


def _check_bits(bits: int) -> None:
    if not 1 <= bits <= 8:
        raise ValueError(f"bits must be in [1, 8], got {bits} (paper: 5)")


def _fill_target(target: th.Tensor, observations: th.Tensor, noise: th.Tensor, bits: int) -> th.Tensor:
    """Write the dequantised ``bits``-bit target of ``observations`` with noise bytes ``noise`` into float32 ``target``."""
    scale = 2.0 ** -(bits + 8)
    if observations.dtype == th.uint8:
        quantised = observations >> (8 - bits)  # floor(x / 2^(8 - bits)) in one byte per pixel
    else:
        quantised = th.floor(observations.float() / 2 ** (8 - bits)).clamp_(0, 2**bits - 1)  # out-of-range floats
    # code = quantised * 256 + u in [0, 2^(bits + 8)); target = (code + 0.5) * scale - 0.5, every step exact
    return target.copy_(noise).add_(quantised, alpha=256).mul_(scale).sub_(0.5 - 0.5 * scale)


def reconstruction_loss(reconstruction: th.Tensor, observations: th.Tensor, bits: int = 5) -> th.Tensor:
    """
    ``F.mse_loss(reconstruction.float(), reconstruction_target(observations, bits))`` in fewer passes over memory:
    the float32 residual is built a slice of the batch at a time (about 4 MB, so it stays in cache and never
    becomes one 32 MB allocation that the C allocator maps and page-faults afresh on every step), each slice gives
    its share of the loss and writes its share of the gradient straight in the reconstruction's dtype and layout.
    The reconstruction (bfloat16 under autocast) is never copied to float32. Same noise, value and gradient as the
    formula above, to float32 rounding of the sum (tests/algorithm/test_reconstruction_target.py).

    :param reconstruction: decoder output, (N, C, H, W), any float dtype and layout
    :param observations: raw pixels in [0, 255] of the same shape
    """
    return _ReconstructionLoss.apply(reconstruction, observations, bits)


# float32 elements of residual built at once by reconstruction_loss (4 MB)
_RESIDUAL_CHUNK = 2**20


class _ReconstructionLoss(th.autograd.Function):
    @staticmethod
    def forward(ctx, reconstruction, observations, bits):  # type: ignore[no-untyped-def, override]
        _check_bits(bits)
        if reconstruction.dim() == 0 or observations.shape != reconstruction.shape:
            raise ValueError(
                f"reconstruction_loss: reconstruction {tuple(reconstruction.shape)} and observations "
                f"{tuple(observations.shape)} must have the same shape, batch first"
            )
        noise = uniform_bytes(observations.shape, observations.device)  # all at once: one stream however sliced
        grad = th.empty_like(reconstruction)  # same dtype and layout
        n = reconstruction.numel()
        rows = max(1, _RESIDUAL_CHUNK // max(1, n // max(1, len(reconstruction))))
        total = reconstruction.new_zeros((), dtype=th.float32)
        for start in range(0, len(reconstruction), rows):
            part = slice(start, start + rows)
            residual = _fill_target(
                th.empty_like(reconstruction[part], dtype=th.float32), observations[part], noise[part], bits
            )
            residual.sub_(reconstruction[part])
            total += th.linalg.vector_norm(residual).square()
            # d loss / d reconstruction = -2 (target - reconstruction) / n, rounded once into the gradient's dtype
            grad[part].copy_(residual.mul_(-2.0 / n))
        ctx.save_for_backward(grad)
        return total / n

    @staticmethod
    @th.autograd.function.once_differentiable
    def backward(ctx, grad_output):  # type: ignore[no-untyped-def, override]
        (grad,) = ctx.saved_tensors
        if bool(grad_output == 1):
            # The usual case (the loss enters the total as it is): no pass over the batch. Autograd never writes
            # into an incoming gradient, and a leaf's .grad gets a copy while ctx holds this one
            return grad, None, None
        return grad * grad_output.to(grad.dtype), None, None


def uniform_bytes(shape: th.Size | tuple[int, ...], device: th.device | str = "cpu") -> th.Tensor:
    """Independent uniform random bytes (uint8) of ``shape`` from torch's default generator, 8 per 64-bit draw."""
    n = int(np.prod(tuple(shape)))
    words = th.empty((n + 7) // 8, dtype=th.int64, device=device).random_(-(2**63), None)  # the full 64-bit range
    return words.view(th.uint8)[:n].view(shape)


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
