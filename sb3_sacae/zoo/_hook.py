"""Start-up hook that makes ``python -m rl_zoo3.<script> --algo sacae`` work (docs/guide/zoo.md).

rl_zoo3 reads no entry points and imports ``--gym-packages`` only after parsing ``--algo``, so SACAE has to be
in ``rl_zoo3.utils.ALGOS`` before any zoo script parses its arguments. ``sb3_sacae_zoo.pth`` (and, for
Python >= 3.15, ``sb3_sacae_zoo.start``, PEP 829) call :func:`install` at interpreter start-up. It puts one
finder at the front of ``sys.meta_path`` that only reacts to a handful of module names:

* when ``rl_zoo3.utils``, ``rl_zoo3.hyperparams_opt`` or ``rl_zoo3.exp_manager`` finish loading, it calls
  ``sb3_sacae.zoo._on_zoo_module_loaded`` (registers SACAE, its Optuna sampler and its hyperparameter file);
* when ``huggingface_sb3.push_to_hub`` finishes loading, it restores the ``generate_metadata`` name that
  rl_zoo3 2.9.2 imports (renamed ``_generate_metadata`` in huggingface_sb3 3.x);
* when ``rl_zoo3.enjoy`` / ``record_video`` / ``push_to_hub`` / ``load_from_hub`` are compiled (imported, or
  run with ``python -m``), it applies the one-line source fixes of :data:`SOURCE_PATCHES`. Those spots are
  function locals or ``__main__`` code, which no runtime patch can reach; everything else is patched as functions
  (``sb3_sacae/zoo/safety.py``, ``sb3_sacae/zoo/__init__.py``).

The effects apply to ``--algo sacae`` only (:func:`in_scope`); ``SB3_SACAE_ZOO_ALL_ALGOS=1`` extends the safe
reading of log folders to every algorithm. Fail closed: when a security patch (:data:`SOURCE_PATCHES` entries
marked ``security``, or a function patch) cannot apply to the installed rl_zoo3, it is recorded in
:data:`UNPATCHED` and :func:`check_patched` refuses ``--algo sacae`` with one line naming the supported rl_zoo3
versions; ``SB3_SACAE_ALLOW_UNPATCHED_ZOO=1`` runs anyway, at the user's risk.

This file imports nothing outside the standard library, and nothing heavy runs until rl_zoo3 itself is
imported. A failure that is not a security patch is turned into one warning: the hook never breaks rl_zoo3 or
any other import. Set ``SB3_SACAE_NO_ZOO_HOOK=1`` to disable it.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import sys
import threading
import warnings
from types import ModuleType
from typing import Any, NamedTuple

DISABLE_ENV_VAR = "SB3_SACAE_NO_ZOO_HOOK"
ALL_ALGOS_ENV_VAR = "SB3_SACAE_ZOO_ALL_ALGOS"  # safe log-folder reading for every algorithm, not only sacae
ALLOW_UNPATCHED_ENV_VAR = "SB3_SACAE_ALLOW_UNPATCHED_ZOO"  # run --algo sacae although a security patch failed
ALGO_NAME = "sacae"
#: The rl_zoo3 versions the patches are written for and tested with (``setup.py`` requires the same range)
SUPPORTED_ZOO_VERSIONS = ">=2.9.2,<2.10"
#: Zoo scripts that read a log folder or a model: their command line decides whether the safety gate applies
SCRIPT_MODULES = ("rl_zoo3.train", "rl_zoo3.enjoy", "rl_zoo3.record_video", "rl_zoo3.push_to_hub")

# Modules after whose loading sb3_sacae.zoo registers its part (see sb3_sacae/zoo/__init__.py)
REGISTER_AFTER = ("rl_zoo3.utils", "rl_zoo3.hyperparams_opt", "rl_zoo3.exp_manager")

_OFF_POLICY_LIST = 'off_policy_algos = ["qrdqn", "dqn", "ddpg", "sac", "her", "td3", "tqc"]'
_OFF_POLICY_FIX = 'off_policy_algos = ["qrdqn", "dqn", "ddpg", "sac", "her", "td3", "tqc", "sacae"]'


class Patch(NamedTuple):
    """One source fix: exact old text, new text, what stays unfixed without it, whether safety depends on it."""

    old: str
    new: str
    why: str
    security: bool = False


# module -> [Patch]. A patch whose old text is absent (upstream changed or fixed the line) is skipped: with one
# warning naming what stays unfixed, or, for a security patch, recorded in UNPATCHED (fail closed, see
# check_patched). tests/zoo/test_zoo_hook.py checks that every patch still applies to the installed rl_zoo3.
# Replacements keep line numbers, so tracebacks still point at the right line.
_UNSAFE_ARGS = "            loaded_args = yaml.load(f, Loader=yaml.UnsafeLoader)\n"
_SAFE_ARGS = '            loaded_args = __import__("sb3_sacae.zoo.safety", fromlist=["load_args"]).load_args(f)\n'
# Upstream: rl_zoo3 2.9.2 reads args.yml with yaml.UnsafeLoader inside the script, so a downloaded log folder runs
# code; the loader is a function local, which only a source fix reaches (load_args keeps upstream's reading for
# algorithms out of scope)
_SAFE_ARGS_PATCH = Patch(_UNSAFE_ARGS, _SAFE_ARGS, "args.yml is read with yaml.UnsafeLoader (runs code)", security=True)


_EXCEPT_NOT_FOUND = (
    "from requests.exceptions import HTTPError; "
    "from sb3_sacae.zoo._hook import EntryNotFoundError as _SB3SacaeEntryNotFoundError\n"
)

SOURCE_PATCHES: dict[str, list[Patch]] = {
    # enjoy / record_video / push_to_hub pass buffer_size=1 only to a hard-coded list of off-policy algorithms:
    # anything else re-allocates the full replay buffer just to watch the agent.
    # Upstream: https://github.com/DLR-RM/rl-baselines3-zoo/blob/v2.9.2/rl_zoo3/enjoy.py (off_policy_algos)
    "rl_zoo3.enjoy": [Patch(_OFF_POLICY_LIST, _OFF_POLICY_FIX, "no full replay buffer when watching SACAE"), _SAFE_ARGS_PATCH],
    "rl_zoo3.record_video": [
        Patch(_OFF_POLICY_LIST, _OFF_POLICY_FIX, "no full replay buffer when recording SACAE"),
        _SAFE_ARGS_PATCH,
    ],
    "rl_zoo3.push_to_hub": [
        Patch(_OFF_POLICY_LIST, _OFF_POLICY_FIX, "no full replay buffer when pushing SACAE"),
        _SAFE_ARGS_PATCH,
    ],
    # huggingface_sb3 downloads through huggingface_hub, whose missing-file error is EntryNotFoundError, not
    # requests' HTTPError: every repo without vec_normalize.pkl (all SACAE repos) crashed the download.
    # Upstream: https://github.com/DLR-RM/rl-baselines3-zoo/blob/v2.9.2/rl_zoo3/load_from_hub.py (except HTTPError)
    "rl_zoo3.load_from_hub": [
        Patch(
            "from requests.exceptions import HTTPError\n",
            _EXCEPT_NOT_FOUND,
            "import the error huggingface_hub raises for a missing file",
        ),
        Patch(
            "    except HTTPError:\n",
            '    except (HTTPError, _SB3SacaeEntryNotFoundError if algo == "sacae" else HTTPError):\n',
            "a repo without vec_normalize.pkl is normal (sacae; other algorithms keep rl_zoo3's behaviour)",
        ),
    ],
}

_warned_missing: set[tuple[str, str]] = set()


def __getattr__(name: str) -> Any:
    """``EntryNotFoundError`` of the installed huggingface_hub (``huggingface_hub.utils`` in every version)."""
    if name == "EntryNotFoundError":
        try:
            from huggingface_hub.utils import EntryNotFoundError
        except ImportError:
            try:
                from huggingface_hub.errors import EntryNotFoundError  # type: ignore[no-redef]  # the same class under its newer huggingface_hub module
            except ImportError:  # no huggingface_hub error type to catch: catch nothing extra
                return type("EntryNotFoundError", (Exception,), {})
        return EntryNotFoundError
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _flag(env_var: str) -> bool:
    return os.environ.get(env_var, "").strip().lower() not in ("", "0", "false", "no")


def is_disabled() -> bool:
    return _flag(DISABLE_ENV_VAR)


def in_scope(algo: str | None) -> bool:
    """Whether the hook's safety changes apply to ``algo``: sacae, or every algorithm with ``SB3_SACAE_ZOO_ALL_ALGOS=1``."""
    return algo == ALGO_NAME or _flag(ALL_ALGOS_ENV_VAR)


#: What could not be made safe in this process, one "module: what stays unfixed" each (see check_patched)
UNPATCHED: list[str] = []


def record_unpatched(module: str, why: str) -> None:
    entry = f"{module}: {why}"
    if entry not in UNPATCHED:
        UNPATCHED.append(entry)


class ZooNotPatchedError(RuntimeError):
    """A security patch does not apply to the installed rl_zoo3: the script refuses the algorithm."""

    sb3_sacae_one_line = True  # the zoo scripts print it as one line (see install_cli_errors)


def _zoo_version() -> str:
    version = getattr(sys.modules.get("rl_zoo3"), "__version__", None)
    if version is None:
        try:
            from importlib.metadata import version as distribution_version

            version = distribution_version("rl_zoo3")
        except Exception:
            version = "unknown"
    return str(version)


_warned_unpatched: set[str] = set()


def check_patched(algo: str | None) -> None:
    """Refuse ``algo`` (when in scope) if a security patch did not apply in this process: fail closed."""
    if not UNPATCHED or not in_scope(algo):
        return
    what = "; ".join(UNPATCHED)
    if _flag(ALLOW_UNPATCHED_ENV_VAR):
        if what not in _warned_unpatched:
            _warned_unpatched.add(what)
            warnings.warn(
                f"sb3-sacae runs --algo {algo} with rl_zoo3 {_zoo_version()} unpatched ({ALLOW_UNPATCHED_ENV_VAR}=1): "
                f"{what}; a log folder can run code",
                RuntimeWarning,
                stacklevel=2,
            )
        return
    raise ZooNotPatchedError(
        f"sb3-sacae refuses --algo {algo}: its safety patches do not apply to rl_zoo3 {_zoo_version()} ({what}). "
        f'Install a supported rl_zoo3 (pip install "rl_zoo3{SUPPORTED_ZOO_VERSIONS}"), or set '
        f"{ALLOW_UNPATCHED_ENV_VAR}=1 to run it unpatched at your own risk (a log folder can then run code)"
    )


def argv_algo(argv: list[str]) -> str | None:
    """The value of ``--algo`` on a zoo command line (argparse's ``--algo=x`` and abbreviations too), else None."""
    algo = None
    for index, token in enumerate(argv):
        name, equals, value = token.partition("=")
        if len(name) >= 3 and "--algo".startswith(name):
            algo = value if equals else (argv[index + 1] if index + 1 < len(argv) else None)
    return algo


def _one_line_excepthook(previous: Any) -> Any:
    def excepthook(kind: type[BaseException], error: BaseException, traceback: Any) -> None:
        if getattr(error, "sb3_sacae_one_line", False):
            print(f"{kind.__name__}: {error}", file=sys.stderr)
        else:
            previous(kind, error, traceback)

    excepthook._sb3_sacae = True  # type: ignore[attr-defined]  # a marker attribute on a function object, which function stubs do not declare
    return excepthook


def install_cli_errors() -> None:
    """A zoo script run with an algorithm in scope prints sb3-sacae's refusals as one line, not a traceback."""
    if not getattr(sys.excepthook, "_sb3_sacae", False):
        sys.excepthook = _one_line_excepthook(sys.excepthook)


def script_started(fullname: str) -> None:
    """A zoo script is being loaded: refuse now, before it reads anything, if its command line is in scope."""
    if fullname not in SCRIPT_MODULES:
        return
    algo = argv_algo(sys.argv[1:])
    if algo is not None and in_scope(algo):
        install_cli_errors()
        check_patched(algo)


def patch_source(fullname: str, source: str) -> str:
    """Apply the :data:`SOURCE_PATCHES` of ``fullname`` to its source text."""
    for old, new, why, security in SOURCE_PATCHES.get(fullname, ()):
        if new in source:
            continue
        if old in source:
            source = source.replace(old, new, 1)
        elif security:  # fail closed: check_patched refuses the algorithms in scope
            record_unpatched(fullname, why)
        elif (fullname, old) not in _warned_missing:
            _warned_missing.add((fullname, old))
            warnings.warn(
                f"sb3-sacae could not patch {fullname} (this rl_zoo3 version has different source): not fixed: {why}",
                RuntimeWarning,
                stacklevel=2,
            )
    return source


def _warn(what: str, error: BaseException) -> None:
    warnings.warn(
        f"sb3-sacae could not {what} ({type(error).__name__}: {error}); rl_zoo3 keeps working without SACAE. "
        f"Run `python -m sb3_sacae.zoo ...` to see the full error, or set {DISABLE_ENV_VAR}=1 to silence this.",
        RuntimeWarning,
        stacklevel=2,
    )


def _generate_metadata_compat(private: Any) -> Any:
    """rl_zoo3 2.9.2 calls ``generate_metadata(...)`` and expects the dict that huggingface_sb3 2.x returned."""

    def generate_metadata(model_name: str, env_id: str, mean_reward: float, std_reward: float) -> dict[str, Any]:
        metadata = private(model_name, env_id, mean_reward, std_reward)
        metadata = metadata.to_dict() if hasattr(metadata, "to_dict") else dict(metadata)
        if model_name == "SACAE":
            metadata["tags"] = [*metadata.get("tags", []), "sb3-sacae", "sac-ae"]
        return metadata

    return generate_metadata


def _after_load(fullname: str, module: ModuleType) -> None:
    if fullname == "huggingface_sb3.push_to_hub":
        # Upstream: rl_zoo3 2.9.2 push_to_hub.py imports `generate_metadata`, renamed in huggingface_sb3 3.x
        if not hasattr(module, "generate_metadata") and hasattr(module, "_generate_metadata"):
            module.generate_metadata = _generate_metadata_compat(module._generate_metadata)  # type: ignore[attr-defined]  # huggingface_sb3 3.x renamed the function; rl_zoo3 imports the old name
        return
    if fullname in REGISTER_AFTER:
        try:
            from sb3_sacae.zoo import _on_zoo_module_loaded

            _on_zoo_module_loaded(fullname, module)
        except Exception as error:  # never break rl_zoo3 because of SACAE
            _warn(f"register SACAE with {fullname}", error)


class _PatchingLoader(importlib.abc.Loader):
    """Wraps the real loader: patched source for :data:`SOURCE_PATCHES`, then :func:`_after_load`."""

    def __init__(self, loader: Any, fullname: str) -> None:
        self._loader = loader
        self._fullname = fullname

    def __getattr__(self, name: str) -> Any:  # get_source, get_filename, get_resource_reader, ...
        return getattr(self._loader, name)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)

    def get_code(self, fullname: str) -> Any:
        # runpy (`python -m rl_zoo3.enjoy`) calls get_code() directly
        code = self._patched_code(fullname)
        script_started(fullname)
        return code if code is not None else self._loader.get_code(fullname)

    def _patched_code(self, fullname: str) -> Any:
        if fullname not in SOURCE_PATCHES:
            return None
        try:
            source = self._loader.get_source(fullname)
            patched = patch_source(fullname, source)
            if patched == source:
                return None
            # compiled here and never written to __pycache__: the cached bytecode stays upstream's
            return compile(patched, self._loader.get_filename(fullname), "exec", dont_inherit=True)
        except Exception as error:
            if any(patch.security for patch in SOURCE_PATCHES[fullname]):
                record_unpatched(fullname, f"{type(error).__name__}: {error}")
            _warn(f"patch {fullname}", error)
            return None

    def exec_module(self, module: ModuleType) -> None:
        code = self._patched_code(self._fullname)
        script_started(self._fullname)
        if code is None:
            self._loader.exec_module(module)
        else:
            module.__dict__["_sb3_sacae_patched"] = True
            exec(code, module.__dict__)
        _after_load(self._fullname, module)


class ZooFinder(importlib.abc.MetaPathFinder):
    """Meta-path finder that only wraps the loaders of the few modules named above."""

    WATCHED = frozenset((*REGISTER_AFTER, *SOURCE_PATCHES, *SCRIPT_MODULES, "huggingface_sb3.push_to_hub"))

    def __init__(self) -> None:
        self._busy = threading.local()

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if fullname not in self.WATCHED or getattr(self._busy, "active", False):
            return None
        self._busy.active = True
        try:
            spec = None
            for finder in sys.meta_path:
                if finder is self or not hasattr(finder, "find_spec"):
                    continue
                spec = finder.find_spec(fullname, path, target)
                if spec is not None:
                    break
        except Exception:
            return None
        finally:
            self._busy.active = False
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return None
        spec.loader = _PatchingLoader(spec.loader, fullname)
        return spec


def install() -> bool:
    """Install the finder once; return whether it is installed. Safe to call at start-up and many times."""
    try:
        if is_disabled():
            return False
        if any(type(finder) is ZooFinder for finder in sys.meta_path):
            return True
        # a ZooFinder of another copy of this file (an installed sb3-sacae whose start-up shim ran, and a source
        # tree imported later): this copy's patches win
        sys.meta_path[:] = [
            finder for finder in sys.meta_path if not (type(finder).__name__ == "ZooFinder" and hasattr(finder, "WATCHED"))
        ]
        already = [name for name in (*REGISTER_AFTER, "huggingface_sb3.push_to_hub") if name in sys.modules]
        for name, patches in SOURCE_PATCHES.items():
            # imported before the hook (an explicit register() late in a program): its source fixes are missing
            module = sys.modules.get(name)
            if module is not None and not getattr(module, "_sb3_sacae_patched", False):
                for patch in patches:
                    if patch.security:
                        record_unpatched(name, f"imported before sb3-sacae's hook: {patch.why}")
        sys.meta_path.insert(0, ZooFinder())
        # Installed after rl_zoo3 was imported (explicit call): catch up on what already loaded
        for name in already:
            _after_load(name, sys.modules[name])
        return True
    except Exception as error:
        _warn("install its rl_zoo3 start-up hook", error)
        return False
