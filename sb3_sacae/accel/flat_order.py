"""
Channels-last convolutions without layout copies: parameters kept in the order a channels-last trunk flattens its
features.

It buys the conv trunk and the decoder running in NHWC memory layout (``policy_kwargs=dict(channels_last=True)``,
the default), where oneDNN's convolutions are faster on CPU, without a copy of the activations between the convs and
the Linear layers: the projection head reads the NHWC conv features as they lie in memory, and the decoder's Linear
writes an NHWC map. :class:`FlatOrdered` keeps the affected dimension of those Linear layers in that (H, W, C) order;
state dicts (the modules', and through :class:`OptimizerStateOrder` the optimizers') always hold the (C, H, W) order,
so files do not depend on the layout. With ``channels_last=False`` (or ``fast_kernels=False``) nothing is permuted.
"""

from typing import cast

import torch as th
from torch import nn


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

    flat_order: th.Tensor | None

    def _set_flat_order(self, flat_order: th.Tensor | None) -> None:
        self.register_buffer("flat_order", flat_order, persistent=False)
        self.register_state_dict_post_hook(_state_dict_in_chw_order)

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

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # (C, H, W) order in the file -> the trunk's order, before the child modules read their entries
        for name, dim in self.flat_ordered() if self.flat_order is not None else []:
            value = state_dict.get(prefix + name)
            if isinstance(value, th.Tensor) and value.shape == self.get_parameter(name).shape:
                state_dict[prefix + name] = to_flat_order(value, dim, self.flat_order)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


def _state_dict_in_chw_order(module: FlatOrdered, state_dict: dict, prefix: str, local_metadata: dict) -> None:
    """State-dict hook of :class:`FlatOrdered`: write the ordered parameters back in (C, H, W) order."""
    for name, dim in module.flat_ordered() if module.flat_order is not None else []:
        if prefix + name in state_dict:
            state_dict[prefix + name] = to_chw_order(state_dict[prefix + name], dim, cast(th.Tensor, module.flat_order))


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
        optimizer.register_load_state_dict_post_hook(match_parameter_layouts)
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


def match_parameter_layouts(optimizer: th.optim.Optimizer) -> None:
    """
    Optimizer load hook: per-parameter state tensors (Adam's moments) take the memory layout of their parameter.

    Loaded moments keep the layout they were saved in; a file saved by a channels-last model and loaded into an NCHW
    one (or the reverse) would otherwise pair parameters and moments of different strides, which fused and foreach
    optimizer kernels read element by element in memory order.
    """
    for parameter, state in optimizer.state.items():
        for key, value in state.items():
            if isinstance(value, th.Tensor) and value.shape == parameter.shape and value.stride() != parameter.stride():
                state[key] = th.empty_like(parameter, dtype=value.dtype).copy_(value)
