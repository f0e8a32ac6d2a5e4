"""Reading zoo log folders (``config.yml``, ``args.yml``, ``env_kwargs.yml``, ``vecnormalize.pkl``) without running code.

rl_zoo3 2.9.2 trusts these files: it reads them with ``yaml.UnsafeLoader`` (``get_saved_hyperparams`` in
``rl_zoo3/utils.py``, ``enjoy.py``, ``record_video.py``, ``push_to_hub.py``), ``eval``-uates a string
``normalize`` entry, imports whatever module an ``env_wrapper`` / ``vec_env_wrapper`` / ``callback`` entry
names and unpickles ``vecnormalize.pkl``. A model downloaded from the Hub is untrusted input, so:

* :func:`sanitize_zoo_files` (used by ``sb3_sacae.zoo.hub.download_to_zoo_folder``) parses each YAML with
  :func:`sb3_sacae.serialization.safe_load_config`, checks it (:func:`check_config`) and rewrites it as plain
  YAML, which every rl_zoo3 reader accepts;
* :func:`get_saved_hyperparams` replaces rl_zoo3's (the start-up hook and ``register()`` install it): safe
  loader, a string ``normalize`` is parsed as a literal (``"dict(norm_obs=True)"``), never ``eval``-uated;
* :func:`load_args` replaces the ``yaml.load(f, Loader=yaml.UnsafeLoader)`` of the zoo scripts (source patch);
* :func:`check_vecnormalize` refuses ``vecnormalize.pkl`` (a plain pickle) for ``--algo sacae``.

Opt-ins, for files you trust: ``SB3_SACAE_TRUST_ZOO_CONFIG=1`` restores rl_zoo3's own YAML reading (configs
holding Python objects, e.g. ``activation_fn: !!python/name:torch.nn.ReLU``); ``SB3_SACAE_TRUST_VECNORMALIZE=1``
lets ``--algo sacae`` load ``vecnormalize.pkl``; ``trust_remote_code=True`` / ``--trust-remote-code`` lets
``download_to_zoo_folder`` keep wrappers and callbacks outside :data:`SAFE_CLASS_PREFIXES`.
"""

from __future__ import annotations

import ast
import os
import re
from collections.abc import Callable
from typing import IO, Any

import numpy as np

from sb3_sacae.io import UnsafeFileError, safe_load_config

TRUST_CONFIG_ENV_VAR = "SB3_SACAE_TRUST_ZOO_CONFIG"
TRUST_VECNORMALIZE_ENV_VAR = "SB3_SACAE_TRUST_VECNORMALIZE"

#: Config keys whose values name classes that rl_zoo3 imports and instantiates
CLASS_KEYS = ("env_wrapper", "vec_env_wrapper", "callback")
#: Modules whose classes a downloaded config may name as wrapper or callback
SAFE_CLASS_PREFIXES = (
    "gymnasium.wrappers.",
    "stable_baselines3.common.atari_wrappers.",
    "stable_baselines3.common.monitor.",
    "stable_baselines3.common.vec_env.",
    "stable_baselines3.common.callbacks.",
    "sb3_contrib.common.wrappers.",
    "rl_zoo3.wrappers.",
    "rl_zoo3.callbacks.",
    "sb3_sacae.envs.",
    "sb3_sacae.callbacks.",
)
_CLASS_PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*\.[A-Z][A-Za-z0-9_]*$")


class UntrustedZooFileError(UnsafeFileError):
    """A zoo log file asks for something that would run code; nothing of it was run."""


def _trusted(env_var: str) -> bool:
    return os.environ.get(env_var, "").strip().lower() in ("1", "true", "yes")


def parse_normalize(value: Any, where: str = "config.yml") -> bool | dict[str, Any]:
    """``normalize`` as a bool or a dict of VecNormalize kwargs; a string is parsed as a literal, never run.

    Accepts ``"{'norm_obs': True}"`` and ``"dict(norm_obs=True, norm_reward=False)"`` (what rl_zoo3's own
    hyperparameter files write), with literal values only.
    """
    if isinstance(value, bool) or value is None:
        return bool(value)
    if isinstance(value, dict):
        return {str(key): item for key, item in value.items()}
    if isinstance(value, str):
        try:
            node = ast.parse(value.strip(), mode="eval").body
            if isinstance(node, ast.Dict):
                parsed = ast.literal_eval(node)
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "dict"
                and not node.args
                and all(keyword.arg is not None for keyword in node.keywords)
            ):
                parsed = {keyword.arg: ast.literal_eval(keyword.value) for keyword in node.keywords}
            else:
                raise ValueError("not a dict literal")
        except (SyntaxError, ValueError, TypeError) as error:
            raise UntrustedZooFileError(
                f"Refusing `normalize: {value!r}` in {where}: rl_zoo3 would eval() it; only true/false, a mapping or "
                f"a literal dict(...) string is accepted ({error})"
            ) from error
        if isinstance(parsed, dict):
            return {str(key): item for key, item in parsed.items()}
    raise UntrustedZooFileError(f"`normalize` in {where} must be true/false or a mapping, not {type(value).__name__}")


def _class_names(value: Any) -> list[Any]:
    entries = value if isinstance(value, list) else [value]
    names = []
    for entry in entries:
        if isinstance(entry, dict):
            if len(entry) != 1:
                raise UntrustedZooFileError(f"A wrapper/callback entry must have one key (the class path), not {entry!r}")
            entry = next(iter(entry))
        names.append(entry)
    return names


def check_config(config: Any, where: str = "config.yml", trust_remote_code: bool = False) -> dict[str, Any]:
    """Checked plain copy of a saved zoo config: ``normalize`` as bool/dict, wrappers and callbacks allow-listed."""
    if config is None:
        return {}
    if not isinstance(config, dict):
        raise UntrustedZooFileError(f"{where} must hold a mapping, not {type(config).__name__}")
    checked = {str(key): value for key, value in config.items()}
    if "normalize" in checked:
        checked["normalize"] = parse_normalize(checked["normalize"], where)
    for key in CLASS_KEYS:
        if checked.get(key) is None:
            continue
        for name in _class_names(checked[key]):
            if not isinstance(name, str) or not _CLASS_PATH.match(name):
                raise UntrustedZooFileError(f"`{key}: {name!r}` in {where} is not a class path (module.Class)")
            if not trust_remote_code and not name.startswith(SAFE_CLASS_PREFIXES):
                raise UntrustedZooFileError(
                    f"Refusing `{key}: {name}` in {where}: rl_zoo3 imports and runs it, and it is not one of the known "
                    f"wrappers/callbacks ({', '.join(prefix + '*' for prefix in SAFE_CLASS_PREFIXES)}). If you trust "
                    f"this model, pass trust_remote_code=True (CLI: --trust-remote-code)"
                )
    return checked


def check_mapping(value: Any, where: str) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise UntrustedZooFileError(f"{where} must hold a mapping, not {type(value).__name__}")
    return {str(key): item for key, item in value.items()}


def sanitize_zoo_files(source: str | os.PathLike, target: str | os.PathLike, trust_remote_code: bool = False) -> list[str]:
    """Read ``config.yml`` / ``args.yml`` / ``env_kwargs.yml`` of ``source`` safely, check, write plain YAML to ``target``.

    Everything is checked before anything is written. Returns the names written.
    """
    import yaml

    contents: dict[str, Any] = {}
    for name in ("config.yml", "args.yml", "env_kwargs.yml"):
        path = os.path.join(source, name)
        if not os.path.isfile(path):
            continue
        data = safe_load_config(path)  # refuses Python tags (UnsafeFileError)
        if name == "config.yml":
            data = check_config(data, name, trust_remote_code)
            if "env_kwargs" in data:
                data["env_kwargs"] = check_mapping(data["env_kwargs"], f"{name}: env_kwargs") or {}
        elif name == "args.yml":
            data = check_mapping(data, name) or {}
            data["env_kwargs"] = check_mapping(data.get("env_kwargs"), f"{name}: env_kwargs")
            if isinstance(data.get("hyperparams"), dict):
                data["hyperparams"] = check_config(data["hyperparams"], f"{name}: hyperparams", trust_remote_code)
        else:
            data = check_mapping(data, name) or {}
        contents[name] = data
    for name, data in contents.items():
        with open(os.path.join(target, name), "w", encoding="utf-8") as file:
            yaml.safe_dump(plain_yaml(data), file, sort_keys=True)
    return list(contents)


def load_args(file: IO[str]) -> Any:
    """Drop-in for ``yaml.load(f, Loader=yaml.UnsafeLoader)`` on an ``args.yml`` (source patch of the zoo scripts)."""
    if _trusted(TRUST_CONFIG_ENV_VAR):
        import yaml

        return yaml.load(file, Loader=yaml.UnsafeLoader)
    return _safe_load(file.name)


def _safe_load(path: str) -> Any:
    try:
        return safe_load_config(path)
    except UnsafeFileError as error:
        raise UntrustedZooFileError(
            f"{error}. rl_zoo3 would build these Python objects (running code); set {TRUST_CONFIG_ENV_VAR}=1 only if "
            f"you trust {path}"
        ) from error


def make_safe_get_saved_hyperparams(original: Callable[..., Any]) -> Callable[..., Any]:
    """rl_zoo3's ``get_saved_hyperparams`` with the safe loader and without ``eval`` (``original`` when trusted)."""

    def get_saved_hyperparams(
        stats_path: str, norm_reward: bool = False, test_mode: bool = False
    ) -> tuple[dict[str, Any], str | None]:
        if _trusted(TRUST_CONFIG_ENV_VAR):
            return original(stats_path, norm_reward=norm_reward, test_mode=test_mode)
        hyperparams: dict[str, Any] = {}
        if not os.path.isdir(stats_path):
            return hyperparams, None
        config_file = os.path.join(stats_path, "config.yml")
        if os.path.isfile(config_file):
            hyperparams = dict(_safe_load(config_file) or {})
            raw = hyperparams.get("normalize", False)
            hyperparams["normalize"] = parse_normalize(raw, config_file)
        else:
            raw = hyperparams["normalize"] = os.path.isfile(os.path.join(stats_path, "obs_rms.pkl"))
        normalize = hyperparams["normalize"]
        if normalize:
            if isinstance(normalize, dict):
                normalize_kwargs = dict(normalize)
                if test_mode and isinstance(raw, str):  # as upstream: only a string entry takes --norm-reward
                    normalize_kwargs["norm_reward"] = norm_reward
            else:
                normalize_kwargs = {"norm_obs": normalize, "norm_reward": norm_reward}
            hyperparams["normalize_kwargs"] = normalize_kwargs
        return hyperparams, stats_path

    get_saved_hyperparams.__doc__ = original.__doc__
    get_saved_hyperparams.__wrapped__ = original  # type: ignore[attr-defined]
    get_saved_hyperparams._sb3_sacae_safe = True  # type: ignore[attr-defined]
    return get_saved_hyperparams


def install_safe_readers(utils: Any) -> None:
    """Replace ``get_saved_hyperparams`` in ``rl_zoo3.utils`` (and the ``rl_zoo3`` package, if it re-exported it)."""
    import sys

    current = utils.get_saved_hyperparams
    if getattr(current, "_sb3_sacae_safe", False):
        safe = current
    else:
        safe = make_safe_get_saved_hyperparams(current)
        utils.get_saved_hyperparams = safe
    for name in ("rl_zoo3", "rl_zoo3.exp_manager", "rl_zoo3.enjoy", "rl_zoo3.record_video", "rl_zoo3.push_to_hub"):
        module = sys.modules.get(name)
        if module is not None and getattr(module, "get_saved_hyperparams", safe) is safe.__wrapped__:
            vars(module)["get_saved_hyperparams"] = safe


def check_vecnormalize(algo: str, stats_path: str | None, hyperparams: dict[str, Any]) -> None:
    """Refuse to unpickle ``vecnormalize.pkl`` for ``--algo sacae`` unless ``SB3_SACAE_TRUST_VECNORMALIZE=1``."""
    if algo != "sacae" or not stats_path or not hyperparams.get("normalize") or _trusted(TRUST_VECNORMALIZE_ENV_VAR):
        return
    path = os.path.join(stats_path, "vecnormalize.pkl")
    if os.path.exists(path):
        raise UntrustedZooFileError(
            f"Refusing to load {path}: VecNormalize.load unpickles it, which runs any code stored in it. Set "
            f"{TRUST_VECNORMALIZE_ENV_VAR}=1 only if you trust this file (e.g. you trained the model yourself)."
        )


def plain_yaml(value: Any) -> Any:
    """YAML-safe copy: dicts (OrderedDict too), lists, tuples as lists, scalars; anything else as its repr."""
    if isinstance(value, dict):
        return {str(key): plain_yaml(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain_yaml(item) for item in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, np.generic):
        return value.item()
    return repr(value)
