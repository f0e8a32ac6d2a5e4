"""Can the Hugging Face Hub be used right now? One line that says what to do when it cannot.

A push evaluates the agent and records a video before it uploads, which takes minutes; a download lays files out
before ``enjoy`` runs. When the token is missing or the Hub cannot be reached, the user should learn it at once,
in one line, not from a 50-100-line traceback at the end. :func:`check_push` and :func:`check_download` are run
first by ``python -m sb3_sacae.zoo push_to_hub`` / ``load_from_hub`` and, for ``--algo sacae``, by rl_zoo3's own
``push_to_hub`` / ``load_from_hub`` scripts (:func:`check_zoo_script`); :func:`explain` turns a network or
authentication error raised later (an upload refused, a connection lost) into the same kind of line.
``--no-upload`` staging never touches the network and is never checked.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

STAGE_ONLY = "or stage it without the network: --no-upload --local-dir DIR"
LOGIN = "log in with `hf auth login` or set HF_TOKEN"
# class names (in any HTTP client: httpx, requests, urllib3) of errors meaning "no connection to the server"
_NETWORK_ERRORS = frozenset(
    {"ConnectError", "ConnectTimeout", "ConnectionError", "NetworkError", "ProxyError", "ReadTimeout", "SSLError"}
    | {"TimeoutException", "Timeout", "TimeoutError", "TransportError", "NameResolutionError", "gaierror"}
)


class HubUnavailableError(RuntimeError):
    """The Hub cannot be used for this push or download now; the message says what to do instead."""


def endpoint() -> str:
    from huggingface_hub import constants

    return str(constants.ENDPOINT)


def is_offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def _names(error: BaseException) -> set[str]:
    """Class names of the error and of its causes (HTTP clients wrap socket errors several levels deep)."""
    names: set[str] = set()
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        names.update(cls.__name__ for cls in type(current).__mro__)
        current = current.__cause__ or current.__context__
    return names


def _status(error: BaseException) -> int | None:
    response = getattr(error, "response", None)
    status = getattr(response, "status_code", None)
    return status if isinstance(status, int) else None


def _reason(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0][:160]}" if text else type(error).__name__


def explain(error: BaseException, repo_id: str = "", push: bool = True) -> str | None:
    """One line saying what to do about a Hub error; None when the error is not about the Hub or the network."""
    names = _names(error)
    what = repo_id or "the model"
    then = f", {STAGE_ONLY}" if push else ""
    if push and "OfflineModeIsEnabled" in names:
        return f"Hugging Face Hub offline mode is on (HF_HUB_OFFLINE=1): unset it to push {what}{then}"
    if not push and ("OfflineModeIsEnabled" in names or ("LocalEntryNotFoundError" in names and is_offline())):
        return f"{what} is not in the local Hub cache and offline mode is on (HF_HUB_OFFLINE=1): unset it to download"
    if "LocalTokenNotFoundError" in names:
        return f"No Hugging Face token: {LOGIN} (a token with write access){then}"
    if "RepositoryNotFoundError" in names or "GatedRepoError" in names:
        return f"No model repository {what} on {endpoint()} that this token can read: check the name, or {LOGIN}"
    if "RevisionNotFoundError" in names:
        return f"{what} has no such revision on {endpoint()}: check --revision"
    status = _status(error)
    if status == 404 and not push:
        return f"No model repository {what} on {endpoint()} that this token can read: check the name, or {LOGIN}"
    if status == 401:
        return f"The Hub rejected the Hugging Face token (401 Unauthorized): {LOGIN} again{then}"
    if status == 403:
        return f"The Hugging Face token may not write to {what} (403 Forbidden): use a token with write access{then}"
    if status is not None and status >= 500:
        return f"{endpoint()} answered {status} (a problem on the Hub's side): try again later{then}"
    if names & _NETWORK_ERRORS:
        hint = f"{STAGE_ONLY}" if push else "or set HF_HUB_OFFLINE=1 to use the local Hub cache"
        return f"Cannot reach {endpoint()} ({_reason(error)}): check the network or the proxy (HTTPS_PROXY), {hint}"
    return None


def check_push(repo_id: str, token: str | None = None) -> str:
    """Check, in about a second, that ``repo_id`` can be pushed: not offline, a token, the Hub reachable, token valid.

    :return: the user name the token belongs to
    :raises HubUnavailableError: with one line saying what to do instead
    """
    from huggingface_hub import HfApi, get_token

    if is_offline():
        raise HubUnavailableError(
            f"Hugging Face Hub offline mode is on (HF_HUB_OFFLINE=1): unset it to push {repo_id}, {STAGE_ONLY}"
        )
    token = token or get_token()
    if not token:
        raise HubUnavailableError(
            f"No Hugging Face token to push {repo_id}: {LOGIN} (a token with write access), {STAGE_ONLY}"
        )
    try:
        info = HfApi(token=token).whoami()
    except Exception as error:
        line = explain(error, repo_id, push=True)
        if line is None:
            raise
        raise HubUnavailableError(line) from error
    role = (((info.get("auth") or {}).get("accessToken") or {}).get("role") or "") if isinstance(info, dict) else ""
    if role == "read":
        raise HubUnavailableError(
            f"The Hugging Face token is read-only: {LOGIN} with a write token to push {repo_id}, {STAGE_ONLY}"
        )
    return str(info.get("name", "")) if isinstance(info, dict) else ""


def check_download(repo_id: str, revision: str | None = None, token: str | None = None) -> None:
    """Check that ``repo_id`` exists and the Hub answers (offline mode and local folders: nothing to check).

    :raises HubUnavailableError: with one line saying what to do instead
    """
    if Path(repo_id).is_dir() or is_offline():
        return  # a local folder, or the local Hub cache (a miss there is explained when it happens)
    from huggingface_hub import HfApi

    try:
        HfApi(token=token).model_info(repo_id, revision=revision, timeout=20)
    except Exception as error:
        line = explain(error, repo_id, push=False)
        if line is None:
            raise
        raise HubUnavailableError(line) from error


@contextlib.contextmanager
def one_line_errors(repo_id: str, push: bool) -> Iterator[None]:
    """Turn Hub and network errors raised inside into ``SystemExit`` with one line (the command-line behaviour)."""
    try:
        yield
    except HubUnavailableError as error:
        raise SystemExit(f"sb3-sacae: {error}") from None
    except Exception as error:
        line = explain(error, repo_id, push=push)
        if line is None:
            raise
        raise SystemExit(f"sb3-sacae: {line}") from None


# ---------------------------------------------------------------------------------------------------- rl_zoo3's scripts
ZOO_SCRIPTS = {"push_to_hub": True, "load_from_hub": False}  # rl_zoo3 script -> is it a push


def zoo_repo_id(argv: Sequence[str]) -> tuple[str, str] | None:
    """``(algo, repo id)`` from rl_zoo3's push/load arguments (``--env``, ``-orga``, ``-name``, ``--algo``)."""
    import argparse

    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--algo")
    parser.add_argument("--env")
    parser.add_argument("-orga", "--organization", default="sb3")
    parser.add_argument("-name", "--repo-name")
    parser.add_argument("-h", "--help", action="store_true")
    args, _ = parser.parse_known_args(list(argv))
    if args.help or not args.algo or not args.env:
        return None
    return args.algo, f"{args.organization}/{args.repo_name or f'{args.algo}-{args.env}'}"


def running_zoo_script(argv0: str) -> str | None:
    """``push_to_hub`` / ``load_from_hub`` when ``argv0`` names rl_zoo3's script (its path, or its module), else None."""
    if argv0.startswith("rl_zoo3.") and argv0[len("rl_zoo3.") :] in ZOO_SCRIPTS:
        return argv0[len("rl_zoo3.") :]
    path = Path(argv0)
    if path.parent.name == "rl_zoo3" and path.suffix == ".py" and path.stem in ZOO_SCRIPTS:
        return path.stem
    return None


def check_zoo_script(argv: Sequence[str] | None = None, algo: str = "sacae") -> None:
    """Preflight of rl_zoo3's ``push_to_hub`` / ``load_from_hub`` for ``--algo sacae`` (other algorithms: nothing).

    Called when ``rl_zoo3.utils`` finishes loading, that is before the script parses its arguments, loads the model
    or evaluates it. Exits with one line when the Hub cannot be used, and makes a Hub error raised later print one
    line instead of a traceback.
    """
    argv = list(_command_line() if argv is None else argv)
    script = running_zoo_script(argv[0]) if argv else None
    parsed = zoo_repo_id(argv[1:]) if script else None
    if script is None or parsed is None or parsed[0] != algo:
        return
    push = ZOO_SCRIPTS[script]
    repo_id = parsed[1]
    try:
        if push:
            check_push(repo_id)
        else:
            check_download(repo_id)
    except HubUnavailableError as error:
        raise SystemExit(f"sb3-sacae: {error}") from None
    sys.excepthook = _one_line_excepthook(repo_id, push, sys.excepthook)


def _command_line() -> list[str]:
    """The script (module name for ``python -m``) and its arguments.

    ``python -m rl_zoo3.push_to_hub`` imports the package ``rl_zoo3`` (hence ``rl_zoo3.utils``) before runpy sets
    ``sys.argv[0]``: the interpreter's own command line (``sys.orig_argv``) names the module then.
    """
    original = list(getattr(sys, "orig_argv", []))
    if "-m" in original[1:]:
        index = original.index("-m", 1)
        return original[index + 1 :]
    return list(sys.argv)


def _one_line_excepthook(repo_id: str, push: bool, previous: Any) -> Any:
    def excepthook(kind: type[BaseException], error: BaseException, traceback: TracebackType | None) -> None:
        line = explain(error, repo_id, push=push) if isinstance(error, Exception) else None
        if line is None or os.environ.get("SB3_SACAE_HUB_TRACEBACK"):
            previous(kind, error, traceback)
            return
        print(f"sb3-sacae: {line} (SB3_SACAE_HUB_TRACEBACK=1 shows the traceback)", file=sys.stderr)

    return excepthook
