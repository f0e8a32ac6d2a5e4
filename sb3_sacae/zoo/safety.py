"""Reading zoo log folders (``config.yml``, ``args.yml``, ``env_kwargs.yml``, ``vecnormalize.pkl``) without running code.

rl_zoo3 2.9.2 trusts these files: it reads them with ``yaml.UnsafeLoader`` (``get_saved_hyperparams`` in
``rl_zoo3/utils.py``, ``enjoy.py``, ``record_video.py``, ``push_to_hub.py``), ``eval``-uates a string
``normalize`` entry, imports whatever module an ``env_wrapper`` / ``vec_env_wrapper`` / ``callback`` entry
names and unpickles ``vecnormalize.pkl``. A model downloaded from the Hub is untrusted input, so:

* :func:`sanitize_zoo_files` (used by ``sb3_sacae.zoo.hub.download_to_zoo_folder``) parses each YAML with
  :func:`sb3_sacae.io.safe_load_config`, checks it (:func:`check_config`) and rewrites it as plain
  YAML, which every rl_zoo3 reader accepts;
* :func:`install_safe_readers` (run by the start-up hook and ``register()`` when ``rl_zoo3.utils`` loads) wraps
  three of its functions. ``get_model_path`` notes which algorithm a log folder belongs to; for ``--algo sacae``
  (every algorithm with ``SB3_SACAE_ZOO_ALL_ALGOS=1``) ``get_saved_hyperparams`` then reads ``config.yml`` with the
  safe loader, parses a string ``normalize`` as a literal (``"dict(norm_obs=True)"``) instead of ``eval``-uating
  it and refuses class paths outside the allow-list (:func:`check_class_paths`), and ``create_test_env`` checks
  its wrappers again and refuses ``vecnormalize.pkl`` (:func:`check_vecnormalize`). Other algorithms get
  rl_zoo3's functions unchanged;
* ``get_trained_models`` (``rl_zoo3.benchmark``) reads the ``args.yml`` of the algorithms in scope safely first;
* :func:`load_args` replaces the ``yaml.load(f, Loader=yaml.UnsafeLoader)`` of the zoo scripts (source patch),
  with the same scope.

Opt-ins, for files you trust: ``SB3_SACAE_TRUST_ZOO_CONFIG=1`` restores rl_zoo3's own YAML reading (configs
holding Python objects, e.g. ``activation_fn: !!python/name:torch.nn.ReLU``, and any class path);
``SB3_SACAE_ZOO_CLASSES=mypkg.wrappers.MyWrapper,otherpkg.`` adds classes (or module prefixes ending in ``.``) to
the allow-list; ``SB3_SACAE_TRUST_VECNORMALIZE=1`` lets ``--algo sacae`` load ``vecnormalize.pkl``;
``trust_remote_code=True`` / ``--trust-remote-code`` lets ``download_to_zoo_folder`` keep any wrapper or callback.
"""

from __future__ import annotations

import ast
import functools
import glob
import inspect
import os
import re
import sys
import threading
import warnings
from collections.abc import Callable
from typing import IO, Any

import numpy as np

from sb3_sacae.io import UnsafeFileError, safe_load_config
from sb3_sacae.zoo import _hook

TRUST_CONFIG_ENV_VAR = "SB3_SACAE_TRUST_ZOO_CONFIG"
TRUST_VECNORMALIZE_ENV_VAR = "SB3_SACAE_TRUST_VECNORMALIZE"
ALLOWED_CLASSES_ENV_VAR = "SB3_SACAE_ZOO_CLASSES"

#: Config keys whose values name classes that rl_zoo3 imports and instantiates
CLASS_KEYS = ("env_wrapper", "vec_env_wrapper", "callback")
#: Config keys that name a class when their value is a dotted path (``policy: CnnPolicy`` is a name, not a path)
DOTTED_CLASS_KEYS = ("policy", "replay_buffer_class")
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

    sb3_sacae_one_line = True  # the zoo scripts print it as one line, not a traceback


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


def allowed_class(name: str) -> bool:
    """Whether a config may name ``name``: :data:`SAFE_CLASS_PREFIXES` plus ``SB3_SACAE_ZOO_CLASSES`` entries."""
    extra = [entry.strip() for entry in os.environ.get(ALLOWED_CLASSES_ENV_VAR, "").split(",") if entry.strip()]
    return name.startswith(SAFE_CLASS_PREFIXES) or any(
        name == entry or (entry.endswith(".") and name.startswith(entry)) for entry in extra
    )


_DOWNLOAD_HINT = "If you trust this model, pass trust_remote_code=True (CLI: --trust-remote-code)"
_LOG_FOLDER_HINT = (
    f"To allow this class set {ALLOWED_CLASSES_ENV_VAR}=<module.Class> (comma-separated; a prefix ending in '.' "
    f"allows a module), or set {TRUST_CONFIG_ENV_VAR}=1 if you trust the whole log folder"
)


def check_class_paths(config: dict[str, Any], where: str, trust_remote_code: bool = False, hint: str = _DOWNLOAD_HINT) -> None:
    """Refuse every class path of ``config`` that rl_zoo3 would import and that the allow-list does not name.

    Class objects (from a caller's code, never from a safely read file) pass.
    """
    for key in (*CLASS_KEYS, *DOTTED_CLASS_KEYS):
        value = config.get(key)
        if value is None or (key in DOTTED_CLASS_KEYS and not (isinstance(value, str) and "." in value)):
            continue
        for name in _class_names(value):
            if isinstance(name, type) and key in CLASS_KEYS:
                continue
            if not isinstance(name, str) or not _CLASS_PATH.match(name):
                raise UntrustedZooFileError(f"`{key}: {name!r}` in {where} is not a class path (module.Class)")
            if not trust_remote_code and not allowed_class(name):
                raise UntrustedZooFileError(
                    f"Refusing `{key}: {name}` in {where}: rl_zoo3 imports and runs it, and it is not one of the known "
                    f"wrappers/callbacks ({', '.join(prefix + '*' for prefix in SAFE_CLASS_PREFIXES)}). {hint}"
                )


def check_config(
    config: Any, where: str = "config.yml", trust_remote_code: bool = False, hint: str = _DOWNLOAD_HINT
) -> dict[str, Any]:
    """Checked plain copy of a saved zoo config: ``normalize`` as bool/dict, class paths allow-listed."""
    if config is None:
        return {}
    if not isinstance(config, dict):
        raise UntrustedZooFileError(f"{where} must hold a mapping, not {type(config).__name__}")
    checked = {str(key): value for key, value in config.items()}
    if "normalize" in checked:
        checked["normalize"] = parse_normalize(checked["normalize"], where)
    check_class_paths(checked, where, trust_remote_code, hint)
    return checked


# A string "<text>:<more>": gymnasium.make imports the module <text> for an id "module:Name-v0" (importlib accepts
# names that are no identifiers, such as "logs.sacae.Env-v5_1.evil"), and an env factory may pass a keyword on to it
_MODULE_PREFIX = re.compile(r"^[^:]+:")
_ENV_KWARGS_HINT = (
    f"If you trust this log folder, set {TRUST_CONFIG_ENV_VAR}=1 (a Hub download: trust_remote_code=True, CLI "
    "--trust-remote-code); otherwise remove the entry"
)


def _strings(value: Any) -> Any:
    """Every string in ``value``: itself, the keys and items of mappings, the items of lists and tuples."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(key)
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


def check_env_kwargs(
    value: Any, where: str, env_id: str | None = None, trust_remote_code: bool = False, hint: str = _ENV_KWARGS_HINT
) -> dict[str, Any] | None:
    """Checked copy of an ``env_kwargs`` mapping read from a file, which rl_zoo3 passes to the env's factory.

    Refused: a key that is not a keyword name (or is a ``__dunder__``), any string of the form ``module:Name``
    anywhere in it (``gymnasium.make`` imports ``module`` for such an id), and, for the ids sb3-sacae registers, the
    keywords that name the task (:data:`sb3_sacae.envs.TASK_KWARGS`, fixed by each id). ``trust_remote_code`` keeps
    the ``module:Name`` strings.
    """
    checked = check_mapping(value, where)
    if checked is None:
        return None
    for key in checked:
        if not key.isidentifier() or (key.startswith("__") and key.endswith("__")):
            raise UntrustedZooFileError(f"Refusing `{key!r}` in {where}: env kwargs are keyword names. {hint}")
    if not trust_remote_code:
        for text in _strings(checked):
            if _MODULE_PREFIX.match(text):
                raise UntrustedZooFileError(
                    f"Refusing {text!r} in {where}: a 'module:Name' id makes gymnasium import that module (code from "
                    f"wherever the module is found, the log folder included). {hint}"
                )
    if env_id is not None:
        from sb3_sacae.envs import PIXEL_ENVS, TASK_KWARGS

        fixed = sorted(set(checked) & set(TASK_KWARGS)) if env_id in PIXEL_ENVS else []
        if fixed:
            raise UntrustedZooFileError(
                f"Refusing `{fixed[0]}` in {where}: {env_id} fixes its task, so no env_kwargs entry may name another "
                "one. Remove the entry (to run another task, use that task's own id)"
            )
    return checked


def check_mapping(value: Any, where: str) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise UntrustedZooFileError(f"{where} must hold a mapping, not {type(value).__name__}")
    return {str(key): item for key, item in value.items()}


def sanitize_zoo_files(
    source: str | os.PathLike, target: str | os.PathLike, trust_remote_code: bool = False, env_id: str | None = None
) -> list[str]:
    """Read ``config.yml`` / ``args.yml`` / ``env_kwargs.yml`` of ``source`` safely, check, write plain YAML to ``target``.

    Everything is checked before anything is written (``env_kwargs`` with :func:`check_env_kwargs` for ``env_id``,
    else the ``env`` that ``args.yml`` names). Returns the names written.
    """
    import yaml

    contents: dict[str, Any] = {}
    env = env_id
    for name in ("args.yml", "config.yml", "env_kwargs.yml"):  # args.yml first: it names the env
        path = os.path.join(source, name)
        if not os.path.isfile(path):
            continue
        data = safe_load_config(path)  # refuses Python tags (UnsafeFileError)
        if name == "config.yml":
            data = check_config(data, name, trust_remote_code)
            if "env_kwargs" in data:
                data["env_kwargs"] = check_env_kwargs(data["env_kwargs"], f"{name}: env_kwargs", env, trust_remote_code) or {}
        elif name == "args.yml":
            data = check_mapping(data, name) or {}
            env = env_id or (data.get("env") if isinstance(data.get("env"), str) else None)
            data["env_kwargs"] = check_env_kwargs(data.get("env_kwargs"), f"{name}: env_kwargs", env, trust_remote_code)
            if isinstance(data.get("hyperparams"), dict):
                data["hyperparams"] = check_config(data["hyperparams"], f"{name}: hyperparams", trust_remote_code)
                if "env_kwargs" in data["hyperparams"]:
                    data["hyperparams"]["env_kwargs"] = check_env_kwargs(
                        data["hyperparams"]["env_kwargs"], f"{name}: hyperparams: env_kwargs", env, trust_remote_code
                    )
        else:
            data = check_env_kwargs(data, name, env, trust_remote_code) or {}
        contents[name] = data
    for name, data in contents.items():
        with open(os.path.join(target, name), "w", encoding="utf-8") as file:
            yaml.safe_dump(plain_yaml(data), file, sort_keys=True)
    return list(contents)


# Which algorithm each log folder belongs to, noted by get_model_path (the zoo scripts call it first), and the last
# one noted (for a test env built without a stats folder)
_log_folders: dict[str, str] = {}
_last_algo: list[str] = []
_log_folders_lock = threading.Lock()


def _key(path: str | os.PathLike) -> str:
    return os.path.normcase(os.path.abspath(os.fspath(path)))


def remember_log_folder(log_path: str | os.PathLike, algo: str) -> None:
    with _log_folders_lock:
        _log_folders[_key(log_path)] = algo
        _last_algo[:] = [algo]


def algo_of(path: str | os.PathLike | None) -> str | None:
    """The algorithm of the log folder holding ``path`` (a stats folder or a file in it), else None.

    Noted by the wrapped ``get_model_path``; otherwise read from the zoo layout ``<folder>/<algo>/<env>_<id>/<env>``.
    No path: the algorithm of the last log folder noted in this process.
    """
    if path is None:
        with _log_folders_lock:
            return _last_algo[0] if _last_algo else None
    key = _key(path)
    with _log_folders_lock:
        for _ in range(3):
            if key in _log_folders:
                return _log_folders[key]
            key = os.path.dirname(key)
    parts = _key(path).split(os.sep)
    return _hook.ALGO_NAME if _hook.ALGO_NAME in parts[-4:-1] else None


def _in_scope(path: str | os.PathLike | None) -> bool:
    return _hook.in_scope(algo_of(path))


def load_args(file: IO[str]) -> Any:
    """Drop-in for ``yaml.load(f, Loader=yaml.UnsafeLoader)`` on an ``args.yml`` (source patch of the zoo scripts).

    rl_zoo3's own reading for algorithms out of scope (:func:`sb3_sacae.zoo._hook.in_scope`) or a trusted config.
    """
    path = getattr(file, "name", None)
    if _trusted(TRUST_CONFIG_ENV_VAR) or not isinstance(path, str) or not _in_scope(path):
        import yaml

        return yaml.load(file, Loader=yaml.UnsafeLoader)
    _hook.check_patched(algo_of(path))
    args = _safe_load(path)
    if isinstance(args, dict):
        env_id = args.get("env") if isinstance(args.get("env"), str) else None
        args["env_kwargs"] = check_env_kwargs(args.get("env_kwargs"), f"{path}: env_kwargs", env_id)
        if isinstance(args.get("hyperparams"), dict):
            check_class_paths(args["hyperparams"], f"{path}: hyperparams", hint=_LOG_FOLDER_HINT)
            if "env_kwargs" in args["hyperparams"]:
                check_env_kwargs(args["hyperparams"]["env_kwargs"], f"{path}: hyperparams: env_kwargs", env_id)
    return args


def _safe_load(path: str) -> Any:
    try:
        return safe_load_config(path)
    except UnsafeFileError as error:
        raise UntrustedZooFileError(
            f"{error}. rl_zoo3 would build these Python objects (running code); set {TRUST_CONFIG_ENV_VAR}=1 only if "
            f"you trust {path}"
        ) from error


def make_safe_get_saved_hyperparams(original: Callable[..., Any]) -> Callable[..., Any]:
    """rl_zoo3's ``get_saved_hyperparams``, safe for the algorithms in scope (``original`` for the others)."""

    @functools.wraps(original)
    def get_saved_hyperparams(
        stats_path: str, norm_reward: bool = False, test_mode: bool = False
    ) -> tuple[dict[str, Any], str | None]:
        if _trusted(TRUST_CONFIG_ENV_VAR) or not _in_scope(stats_path):
            return original(stats_path, norm_reward=norm_reward, test_mode=test_mode)
        _hook.check_patched(algo_of(stats_path))
        hyperparams: dict[str, Any] = {}
        if not os.path.isdir(stats_path):
            return hyperparams, None
        config_file = os.path.join(stats_path, "config.yml")
        if os.path.isfile(config_file):
            hyperparams = dict(_safe_load(config_file) or {})
            raw = hyperparams.get("normalize", False)
            hyperparams["normalize"] = parse_normalize(raw, config_file)
            check_class_paths(hyperparams, config_file, hint=_LOG_FOLDER_HINT)
            if "env_kwargs" in hyperparams:  # enjoy passes them to the env
                env_id = os.path.basename(os.path.normpath(stats_path))  # the zoo layout <log>/<algo>/<env>_<id>/<env>
                hyperparams["env_kwargs"] = check_env_kwargs(hyperparams["env_kwargs"], f"{config_file}: env_kwargs", env_id)
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

    get_saved_hyperparams._sb3_sacae_safe = True  # type: ignore[attr-defined]  # a marker attribute on a function object, which function stubs do not declare
    return get_saved_hyperparams


def make_get_model_path(original: Callable[..., Any]) -> Callable[..., Any]:
    """rl_zoo3's ``get_model_path``, noting the algorithm of the log folder it returns (and refusing it if unpatched)."""

    @functools.wraps(original)
    def get_model_path(exp_id: int, folder: str, algo: str, *args: Any, **kwargs: Any) -> tuple[str, str, str]:
        _hook.check_patched(algo)
        name_prefix, model_path, log_path = original(exp_id, folder, algo, *args, **kwargs)
        remember_log_folder(log_path, algo)
        return name_prefix, model_path, log_path

    get_model_path._sb3_sacae_safe = True  # type: ignore[attr-defined]  # a marker attribute on a function object, which function stubs do not declare
    return get_model_path


def make_safe_create_test_env(original: Callable[..., Any]) -> Callable[..., Any]:
    """rl_zoo3's ``create_test_env``; for algorithms in scope, class paths and ``vecnormalize.pkl`` checked first."""
    signature = inspect.signature(original)

    @functools.wraps(original)
    def create_test_env(*args: Any, **kwargs: Any) -> Any:
        bound = signature.bind(*args, **kwargs)
        stats_path = bound.arguments.get("stats_path")
        hyperparams = bound.arguments.get("hyperparams") or {}
        if not _trusted(TRUST_CONFIG_ENV_VAR) and _in_scope(stats_path):
            _hook.check_patched(algo_of(stats_path))
            check_class_paths(hyperparams, f"the hyperparameters of {stats_path}", hint=_LOG_FOLDER_HINT)
        if stats_path is not None and _in_scope(stats_path):
            check_vecnormalize(algo_of(stats_path), stats_path, hyperparams)
        return original(*args, **kwargs)

    create_test_env._sb3_sacae_safe = True  # type: ignore[attr-defined]  # a marker attribute on a function object, which function stubs do not declare
    return create_test_env


def make_safe_get_trained_models(original: Callable[..., Any]) -> Callable[..., Any]:
    """rl_zoo3's ``get_trained_models`` (``rl_zoo3.benchmark``), which reads every ``args.yml`` with
    ``yaml.UnsafeLoader``: those of the algorithms in scope are first read safely, so a hostile one is refused."""

    @functools.wraps(original)
    def get_trained_models(log_folder: str) -> dict[str, tuple[str, str]]:
        if not _trusted(TRUST_CONFIG_ENV_VAR) and os.path.isdir(log_folder):
            for algo in sorted(os.listdir(log_folder)):
                if _hook.in_scope(algo):
                    _hook.check_patched(algo)
                    for path in sorted(glob.glob(os.path.join(log_folder, algo, "*", "*", "args.yml"))):
                        _safe_load(path)
        return original(log_folder)

    get_trained_models._sb3_sacae_safe = True  # type: ignore[attr-defined]  # a marker attribute on a function object, which function stubs do not declare
    return get_trained_models


#: rl_zoo3.utils function -> (wrapper factory, parameters the wrapper relies on, whether safety depends on it)
_UTILS_PATCHES: dict[str, tuple[Callable[..., Any], tuple[str, ...], bool]] = {
    "get_model_path": (make_get_model_path, ("exp_id", "folder", "algo"), True),
    "get_saved_hyperparams": (make_safe_get_saved_hyperparams, ("stats_path", "norm_reward", "test_mode"), True),
    "create_test_env": (make_safe_create_test_env, ("stats_path", "hyperparams"), True),
    "get_trained_models": (make_safe_get_trained_models, ("log_folder",), False),
}
_RE_EXPORTERS = ("rl_zoo3", "rl_zoo3.exp_manager", "rl_zoo3.enjoy", "rl_zoo3.record_video", "rl_zoo3.push_to_hub")


def install_safe_readers(utils: Any) -> None:
    """Wrap the log-folder readers of ``rl_zoo3.utils`` (and their re-exports); record what cannot be wrapped."""
    for name, (factory, parameters, security) in _UTILS_PATCHES.items():
        current = getattr(utils, name, None)
        if getattr(current, "_sb3_sacae_safe", False):
            continue
        try:
            found = tuple(inspect.signature(current).parameters) if callable(current) else ()
        except (TypeError, ValueError):
            found = ()
        if not set(parameters) <= set(found):  # rl_zoo3 changed this function: fail closed if safety depends on it
            if security:
                _hook.record_unpatched(f"{utils.__name__}.{name}", f"expected parameters {', '.join(parameters)}")
            continue
        safe = factory(current)
        setattr(utils, name, safe)
        for module_name in _RE_EXPORTERS:
            module = sys.modules.get(module_name)
            if module is not None and getattr(module, name, None) is current:
                setattr(module, name, safe)


def check_vecnormalize(algo: str | None, stats_path: str | None, hyperparams: dict[str, Any]) -> None:
    """Refuse to unpickle ``vecnormalize.pkl`` for the algorithms in scope unless ``SB3_SACAE_TRUST_VECNORMALIZE=1``."""
    if not _hook.in_scope(algo) or not stats_path or not hyperparams.get("normalize"):
        return
    check_vecnormalize_file(os.path.join(stats_path, "vecnormalize.pkl"))


def check_vecnormalize_file(path: str) -> None:
    """Refuse ``path`` if it exists, unless ``SB3_SACAE_TRUST_VECNORMALIZE=1``."""
    if os.path.exists(path) and not _trusted(TRUST_VECNORMALIZE_ENV_VAR):
        raise UntrustedZooFileError(
            f"Refusing to load {path}: VecNormalize.load unpickles it, which runs any code stored in it. Set "
            f"{TRUST_VECNORMALIZE_ENV_VAR}=1 only if you trust this file (e.g. you trained the model yourself)."
        )


def ignore_stale_vecnormalize(path: str) -> None:
    warnings.warn(
        f"Ignoring {path}: rl_zoo3 would unpickle it although this run does not normalize (sb3-sacae never loads it "
        "then; configure `normalize` to use saved statistics)",
        UserWarning,
        stacklevel=2,
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
