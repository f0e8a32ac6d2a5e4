"""The data one gradient step of :meth:`sb3_sacae.SACAE.train` passes between its stages."""

from dataclasses import dataclass
from typing import Any, NamedTuple

import torch as th


class Batch(NamedTuple):
    """A replay batch, augmented and prepared once for the encoder forwards of one gradient step."""

    observations: th.Tensor | dict[str, th.Tensor]  # raw (shifted) observations: the reconstruction target
    pixels: Any  # the trunk's input from the observations (``trunk.preprocess``)
    next_pixels: Any  # the trunk's input from the next observations
    actions: th.Tensor
    rewards: th.Tensor
    dones: th.Tensor
    discounts: th.Tensor | float
    compute_dtype: th.dtype  # bfloat16 under bf16_autocast: the trunk and decoder answer it


@dataclass
class SharedForward:
    """The shared trunk's features and the critic's latent that the actor and the decoder read."""

    trunk_features: th.Tensor
    latent: th.Tensor
    # reuse_critic_features: the reconstruction gradients, taken before the critic step moved the encoder
    autoencoder_grads: list[tuple[th.Tensor, th.Tensor | None]] | None = None
