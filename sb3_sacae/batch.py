"""The data one gradient step of :meth:`sb3_sacae.SACAE.train` passes between its stages."""

from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar

import torch as th


class Batch(NamedTuple):
    """
    A replay batch, augmented and prepared once for the encoder forwards of one gradient step.

    With DrQ's averaging (``critic_shifts`` M, ``target_shifts`` K) the prepared observations hold M shifted copies
    of the batch, one after the other along the batch dimension, and the next observations K copies; the first copy
    of the observations is the one the actor and the decoder read.
    """

    observations: th.Tensor | dict[str, th.Tensor]  # raw (shifted) observations, first copy: the reconstruction target
    pixels: Any  # the trunk's input from the observations (``trunk.preprocess``), all M copies
    next_pixels: Any  # the trunk's input from the next observations, all K copies
    actions: th.Tensor
    rewards: th.Tensor
    dones: th.Tensor
    discounts: th.Tensor | float
    compute_dtype: th.dtype  # bfloat16 under bf16_autocast: the trunk and decoder answer it

    @property
    def size(self) -> int:
        """Transitions in the batch (one copy)."""
        return len(self.actions)

    @property
    def first_pixels(self) -> Any:
        """The trunk's input from the first copy of the observations: what the actor and the decoder read."""
        return first_rows(self.pixels, self.size)


Rows = TypeVar("Rows", th.Tensor, dict[str, th.Tensor])


def repeat_rows(rows: Rows, copies: int) -> Rows:
    """``copies`` copies of a batch (a tensor, or a Dict of them), one after the other along the batch dimension."""
    if copies == 1:
        return rows
    if isinstance(rows, dict):
        return {key: value.repeat(copies, *[1] * (value.dim() - 1)) for key, value in rows.items()}
    return rows.repeat(copies, *[1] * (rows.dim() - 1))


def first_rows(prepared: Any, rows: int) -> Any:
    """
    The first ``rows`` rows of a prepared batch: a tensor, a Dict of tensors, or a Dict trunk's (images by key,
    vectors or None). Views, no copies: a channels-last batch stays channels-last.
    """
    if isinstance(prepared, th.Tensor):
        return prepared if len(prepared) == rows else prepared[:rows]
    if isinstance(prepared, dict):
        return {key: first_rows(value, rows) for key, value in prepared.items()}
    if isinstance(prepared, tuple):
        return tuple(first_rows(value, rows) for value in prepared)
    return prepared  # None: no vector keys


@dataclass
class SharedForward:
    """The shared trunk's features and the critic's latent that the actor and the decoder read."""

    trunk_features: th.Tensor
    latent: th.Tensor
    # reuse_critic_features: the reconstruction loss and its gradients, taken before the critic step moved the encoder
    autoencoder_grads: tuple[th.Tensor, list[tuple[th.Tensor, th.Tensor | None]]] | None = None
