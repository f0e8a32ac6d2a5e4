"""Other code timed beside this checkout's SACAE by ``benchmarks/throughput.py``, in the same process.

- :class:`OtherCheckout`: the ``sb3_sacae`` package of another source tree (``--baseline-code``), for showing that a
  change to the code costs no speed.
- :class:`OfficialAgent`: the official SAC-AE implementation (``--reference-code``, a clone of
  https://github.com/denisyarats/pytorch_sac_ae), the yardstick users compare against. Nothing of it is copied here:
  its modules are imported from the clone the user gives.
"""

from __future__ import annotations

import contextlib
import importlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gymnasium
import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm


def check_checkout(root: Path) -> None:
    if not (root / "sb3_sacae" / "__init__.py").is_file():
        raise ValueError(
            f"{root} holds no sb3_sacae package: give the root of a checkout, for example one made with "
            "`git worktree add /tmp/before <commit>`"
        )


def check_official(root: Path) -> None:
    if not (root / "sac_ae.py").is_file():
        raise ValueError(
            f"{root} holds no sac_ae.py: give the root of a clone of the official code "
            "(git clone https://github.com/denisyarats/pytorch_sac_ae)"
        )


class OtherCheckout:
    """The ``sb3_sacae`` package of another source tree, imported into this process beside the current one.

    Both copies are named ``sb3_sacae``, so each one's modules sit in ``sys.modules`` only while its code runs
    (``with checkout.active():``): imports made inside its functions then find its own modules, never the other's.
    """

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        check_checkout(root)
        current = _take_package_modules()
        sys.path.insert(0, str(self.root))
        try:
            package = importlib.import_module("sb3_sacae")
            self.SACAE = package.SACAE
            self.version = getattr(package, "__version__", "?")
        finally:
            sys.path.remove(str(self.root))
            self.modules = _take_package_modules()
            sys.modules.update(current)
        self.commit = git_commit(self.root)

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        current = _take_package_modules()
        sys.modules.update(self.modules)
        try:
            yield
        finally:
            self.modules = _take_package_modules()  # keeps what its code imported meanwhile
            sys.modules.update(current)


def _take_package_modules() -> dict[str, Any]:
    """Remove and return every ``sb3_sacae`` module in ``sys.modules``."""
    names = [name for name in sys.modules if name == "sb3_sacae" or name.startswith("sb3_sacae.")]
    return {name: sys.modules.pop(name) for name in names}


def git_commit(root: Path) -> str:
    """The commit checked out at ``root`` (with ``+`` when it has uncommitted changes), or "" outside git."""
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, check=True)
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True
        )
    except (OSError, subprocess.CalledProcessError):
        return ""
    return head.stdout.strip() + ("+" if dirty.stdout.strip() else "")


class InCheckout:
    """A model of another checkout whose ``train()`` runs with that checkout's modules active."""

    def __init__(self, model: OffPolicyAlgorithm, checkout: OtherCheckout) -> None:
        self.model, self.checkout = model, checkout

    def train(self, gradient_steps: int, batch_size: int) -> None:
        with self.checkout.active():
            self.model.train(gradient_steps=gradient_steps, batch_size=batch_size)


# The official code's modules, imported by these names from the clone's root
OFFICIAL_MODULES = ("sac_ae", "utils", "encoder", "decoder")


class OfficialAgent:
    """The official ``SacAeAgent`` and its replay buffer, behind the few attributes ``throughput.py`` uses.

    Built with the official ``train.py``'s defaults (the paper's settings) and the given network sizes. Its
    ``replay_buffer.add`` takes SB3's argument order, so the same transitions fill both models, and ``train(n)`` runs
    ``n`` official ``update()`` calls (sampling included, as SB3's ``train()`` samples too), numbering the steps
    as the official training loop does: the actor and the targets are updated every second step.
    """

    def __init__(
        self,
        root: Path,
        obs_shape: tuple[int, ...],
        action_dim: int,
        *,
        batch_size: int,
        capacity: int,
        hidden_dim: int,
        feature_dim: int,
        n_filters: int,
        n_conv_layers: int,
        device: th.device,
    ) -> None:
        self.root = root.resolve()
        sac_ae, utils = import_official(self.root)
        if obs_shape[1:] != (84, 84):
            raise SystemExit(f"the official encoder's output sizes are tabulated for 84x84 images only, not {obs_shape}")
        self.agent = sac_ae.SacAeAgent(
            obs_shape,
            (action_dim,),
            device,
            hidden_dim=hidden_dim,
            init_temperature=0.1,
            alpha_lr=1e-4,
            alpha_beta=0.5,
            critic_tau=0.01,
            encoder_tau=0.05,
            encoder_feature_dim=feature_dim,
            decoder_latent_lambda=1e-6,
            decoder_weight_lambda=1e-7,
            num_layers=n_conv_layers,
            num_filters=n_filters,
        )
        self.observation_space = spaces.Box(0, 255, obs_shape, np.uint8)
        self.action_space = spaces.Box(-1.0, 1.0, (action_dim,), np.float32)
        self.replay_buffer = _SB3Order(utils.ReplayBuffer(obs_shape, (action_dim,), capacity, batch_size, device))
        self.step = 0
        self.commit = git_commit(self.root)

    def train(self, gradient_steps: int, batch_size: int) -> None:
        for _ in range(gradient_steps):
            self.step += 1
            self.agent.update(self.replay_buffer.buffer, _SilentLog(), self.step)


class _SB3Order:
    """The official replay buffer, filled through SB3's ``add(obs, next_obs, action, reward, done, infos)``."""

    def __init__(self, buffer: Any) -> None:
        self.buffer = buffer

    def add(self, obs, next_obs, action, reward, done, infos) -> None:
        self.buffer.add(obs[0], action[0], reward[0], next_obs[0], bool(done[0]))


class _SilentLog:
    """Takes the official update's logging calls and drops them."""

    def log(self, *args: Any, **kwargs: Any) -> None:
        pass

    log_histogram = log_param = log


def import_official(root: Path) -> tuple[Any, Any]:
    """The official ``sac_ae`` and ``utils`` modules of the clone at ``root``, without keeping their generic names
    (``utils``, ``encoder``, ...) in ``sys.modules``. Its ``utils`` imports the old ``gym`` for a wrapper the update
    never uses; where ``gym`` is not installed, Gymnasium stands in for it during the import."""
    check_official(root)
    saved = {name: sys.modules.pop(name) for name in (*OFFICIAL_MODULES, "gym") if name in sys.modules}
    try:
        importlib.import_module("gym")
    except ImportError:
        sys.modules["gym"] = gymnasium
    sys.path.insert(0, str(root))
    try:
        sac_ae = importlib.import_module("sac_ae")
        return sac_ae, sys.modules["utils"]
    finally:
        sys.path.remove(str(root))
        for name in (*OFFICIAL_MODULES, "gym"):
            sys.modules.pop(name, None)
        sys.modules.update(saved)
