"""Start-up shim run by ``sb3_sacae_zoo.pth`` / ``sb3_sacae_zoo.start``: install sb3-sacae's rl_zoo3 hook.

It loads ``sb3_sacae/zoo/_hook.py`` by file location, so interpreter start-up never imports ``sb3_sacae``
(which imports torch); the hook itself waits until rl_zoo3 is imported. Standard library only, never raises.
Set ``SB3_SACAE_NO_ZOO_HOOK=1`` to disable. See sb3_sacae/zoo/_hook.py for what the hook does.
"""


def install() -> None:
    try:
        import os

        if os.environ.get("SB3_SACAE_NO_ZOO_HOOK", "").strip().lower() not in ("", "0", "false", "no"):
            return
        import importlib.machinery
        import importlib.util
        import sys

        name = "sb3_sacae.zoo._hook"
        hook = sys.modules.get(name)
        if hook is None:
            spec = importlib.machinery.PathFinder.find_spec("sb3_sacae")
            locations = list(spec.submodule_search_locations or []) if spec is not None else []
            paths = [os.path.join(location, "zoo", "_hook.py") for location in locations]
            paths = [path for path in paths if os.path.isfile(path)]
            if not paths:
                return
            hook_spec = importlib.util.spec_from_file_location(name, paths[0])
            if hook_spec is None or hook_spec.loader is None:
                return
            hook = importlib.util.module_from_spec(hook_spec)
            hook_spec.loader.exec_module(hook)
            sys.modules[name] = hook
        hook.install()
    except Exception as error:  # a start-up file must never stop Python from starting
        import warnings

        warnings.warn(f"sb3-sacae's rl_zoo3 start-up hook failed: {error!r}", RuntimeWarning, stacklevel=2)
