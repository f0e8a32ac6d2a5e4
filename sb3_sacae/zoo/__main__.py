"""Launcher: ``python -m sb3_sacae.zoo <script> [zoo arguments]``.

Registers SACAE with rl_zoo3 explicitly, then runs the zoo script as ``python -m rl_zoo3.<script>`` would.
Use it where the start-up hook is not installed (``pip install -e .``, ``python -S``, a hook disabled with
``SB3_SACAE_NO_ZOO_HOOK=1``)::

    python -m sb3_sacae.zoo train --algo sacae --env PendulumPixels-v1
    python -m sb3_sacae.zoo enjoy --algo sacae --env PendulumPixels-v1 -f logs/ --no-render
    python -m sb3_sacae.zoo push_to_hub --algo sacae --env PendulumPixels-v1 -f logs/ -orga <user>

``push_to_hub`` and ``load_from_hub`` are sb3-sacae's own (:mod:`sb3_sacae.zoo.hub`, same arguments as the
zoo's, a model card for sb3-sacae, safe loading); ``zoo_push_to_hub`` / ``zoo_load_from_hub`` run rl_zoo3's.
"""

from __future__ import annotations

import importlib
import runpy
import sys

# script -> module run as __main__
SCRIPTS: dict[str, str] = {
    "train": "rl_zoo3.train",
    "enjoy": "rl_zoo3.enjoy",
    "record_video": "rl_zoo3.record_video",
    "record_training": "rl_zoo3.record_training",
    # rl_zoo3.plots imports its scripts itself: call them as rl_zoo3's own CLI does (seaborn needed)
    "plots": "rl_zoo3.plots:plot_train",
    "plot_train": "rl_zoo3.plots:plot_train",
    "plot_from_file": "rl_zoo3.plots:plot_from_file",
    "all_plots": "rl_zoo3.plots:all_plots",
    "push_to_hub": "sb3_sacae.zoo.hub",
    "load_from_hub": "sb3_sacae.zoo.hub",
    "zoo_push_to_hub": "rl_zoo3.push_to_hub",
    "zoo_load_from_hub": "rl_zoo3.load_from_hub",
}


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in SCRIPTS:
        usage = f"usage: python -m sb3_sacae.zoo {{{','.join(SCRIPTS)}}} [arguments of the zoo script]"
        if argv and argv[0] not in ("-h", "--help"):
            sys.exit(f"{usage}\nunknown script {argv[0]!r}")
        print(usage)
        return
    script, rest = argv[0], argv[1:]
    from sb3_sacae.zoo import register

    register()
    module = SCRIPTS[script]
    if module == "sb3_sacae.zoo.hub":
        from sb3_sacae.zoo.hub import main as hub_main

        hub_main([script, *rest])
        return
    if script.startswith("zoo_") and script.endswith("_hub"):  # rl_zoo3's Hub scripts: a one-line preflight
        from sb3_sacae.zoo.hub_check import check_zoo_script

        check_zoo_script([module, *rest])
    sys.argv = [module, *rest]
    if ":" in module:
        module, function = module.split(":")
        getattr(importlib.import_module(module), function)()
        return
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
