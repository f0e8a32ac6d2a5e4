"""SB3's pickle-based ``load()`` entry points that the package's classes inherit: refused (the networks' unless the file
is trusted, the algorithm's building blocks always), because SB3's loaders unpickle the whole file."""

from typing import Any

import torch as th
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm


class RefusePickledLoad:
    """
    Mixin for every SB3 network class of the package (policies, actors, critics).

    SB3's ``BaseModel.load`` reads a network file with ``torch.load(weights_only=False)``, which runs any code the file
    carries. Whole models load safely through :meth:`sb3_sacae.SACAE.load`; this network-level entry point is refused
    unless the caller vouches for the file with ``trust_remote_code=True``.
    """

    @classmethod
    def load(cls, path: str, device: th.device | str = "auto", trust_remote_code: bool = False) -> Any:
        """
        Refuse SB3's pickle-based network loader unless the file is trusted.

        :param path: a file written by the network's ``save()``
        :param device: device to load the network on
        :param trust_remote_code: load with SB3's (unsafe) loader, for files you trust
        """
        if not trust_remote_code:
            raise ValueError(
                f"{cls.__name__}.load() would unpickle {path!r}, which can run arbitrary code: save and load whole "
                "models with SACAE.save()/SACAE.load() (safe by default), or pass trust_remote_code=True for a file "
                "you trust"
            )
        return super().load(path, device=device)  # type: ignore[misc]  # a mixin's super(): mypy cannot see the SB3 policy class it precedes


class AlgorithmPart(OffPolicyAlgorithm):
    """
    Base of the mixins :class:`sb3_sacae.SACAE` is assembled from (``CollectionMixin``, ``AllowDiscreteActions``).

    Their inherited loader is SB3's ``BaseAlgorithm.load``, which unpickles the file: it is refused on each part
    itself. In ``SACAE`` the safe loader comes first in the method resolution order and reaches SB3's through this one.
    """

    @classmethod
    def load(cls, path: Any, *args: Any, **kwargs: Any) -> Any:
        if cls is AlgorithmPart or AlgorithmPart in cls.__bases__:
            raise ValueError(
                f"{cls.__name__}.load() would unpickle {path!r} with SB3's loader, which can run arbitrary code: load "
                "models with SACAE.load() (safe by default)"
            )
        return super().load(path, *args, **kwargs)
