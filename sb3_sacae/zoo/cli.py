"""What ``--algo sacae`` adds to rl_zoo3's command lines, installed as rl_zoo3's modules finish loading.

* ``rl_zoo3.utils``: for rl_zoo3's ``push_to_hub`` / ``load_from_hub`` scripts, the one-line Hub preflight
  (:mod:`sb3_sacae.zoo.hub_check`); ``--hyperparams policy:MlpPolicy`` accepted without extra quoting
  (:class:`StoreDict`);
* ``rl_zoo3.exp_manager``: the search space, the early stop and the schema creation of :mod:`sb3_sacae.zoo.search`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Any

ALGO = "sacae"


def after_zoo_module(name: str, module: ModuleType) -> None:
    """Called by :func:`sb3_sacae.zoo._on_zoo_module_loaded` after its own registration."""
    if name == "rl_zoo3.utils":
        from sb3_sacae.zoo.hub_check import check_zoo_script

        check_zoo_script()
        zoo_store_dict = vars(module)["StoreDict"]
        if not getattr(zoo_store_dict, "_sb3_sacae", False):
            vars(module)["StoreDict"] = type("StoreDict", (StoreDict, zoo_store_dict), {"_sb3_sacae": True})
    elif name == "rl_zoo3.exp_manager":
        from sb3_sacae.zoo.search import patch_experiment_manager

        patch_experiment_manager(module)


def algo_on_command_line(argv: Sequence[str] | None = None) -> str | None:
    """The value of ``--algo`` on this script's command line (None when there is none)."""
    argv = list(sys.argv if argv is None else argv)
    for index, argument in enumerate(argv):
        if argument == "--algo" and index + 1 < len(argv):
            return argv[index + 1]
        if argument.startswith("--algo="):
            return argument.split("=", 1)[1]
    return None


class StoreDict(argparse.Action):
    """rl_zoo3's ``key:value`` parser (each value is a Python expression), where for ``--algo sacae`` a bare name
    that is no Python value is read as a string: ``--hyperparams policy:MlpPolicy`` instead of
    ``policy:"'MlpPolicy'"``. Other algorithms keep rl_zoo3's parser (``NameError``)."""

    def __call__(
        self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any, option: Any = None
    ) -> None:
        if algo_on_command_line() != ALGO:
            super().__call__(parser, namespace, values, option)  # type: ignore[misc]  # rl_zoo3's StoreDict
            return
        parsed: dict[str, Any] = {}
        for argument in values:
            key, _, value = argument.partition(":")
            parsed[key] = _value(value)
        setattr(namespace, self.dest, parsed)


def _value(text: str) -> Any:
    """``eval`` as rl_zoo3 does (command lines are the user's own input), a bare unknown name as a string."""
    try:
        return eval(text)  # rl_zoo3's own semantics for its --hyperparams / --env-kwargs values
    except NameError:
        if text.strip().isidentifier():
            return text.strip()
        raise
