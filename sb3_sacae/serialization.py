"""
Safe loading and crash-proof saving for an SB3 algorithm: :class:`SafeSerializationMixin`.

SB3 decodes every non-JSON entry of a model zip with cloudpickle, and replay buffers with pickle: loading a file from
a stranger runs whatever code the file names. The mixin reads model files through :mod:`sb3_sacae.io` (allow-listed
unpickling, sizes checked before anything is inflated or allocated, plain entries that would make SB3 import
something refused), keeps replay buffers as numpy arrays plus JSON metadata, and replaces files only once the new
one is complete on disk. The names this module exported before :mod:`sb3_sacae.io` existed are re-exported here.
"""

import contextlib
import io
import os
import pickle
import struct
import threading
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

import torch as th
from stable_baselines3.common.save_util import load_from_zip_file
from stable_baselines3.her.her_replay_buffer import HerReplayBuffer

from sb3_sacae.io.config import safe_load_config
from sb3_sacae.io.errors import CorruptFileError, FileMismatchError, UnsafeFileError
from sb3_sacae.io.files import atomic_write, read_bounded, read_regular_file
from sb3_sacae.io.limits import MAX_MODEL_BYTES
from sb3_sacae.io.model_files import (
    check_model_archive,
    check_network_size,
    check_torch_variables,
    decode_model_data,
    read_torch_variables,
)
from sb3_sacae.io.replay_buffers import looks_like_npz, read_replay_buffer_into, write_replay_buffer
from sb3_sacae.io.unpickle import ALLOWED_GLOBALS, TRUST_HINT, is_allowed_global, restricted_loads

SelfSafe = TypeVar("SelfSafe", bound="SafeSerializationMixin")

# The file being loaded by this thread (for the network-size check in _setup_model) and its torch variables (checked
# in set_parameters, before SB3's load() sets them); source None outside a safe load
_LOADING = threading.local()


def _with_default_suffix(path: str | os.PathLike, suffix: str) -> Path:
    """SB3's rule: a path without a suffix gets ``suffix``."""
    path = Path(path)
    return path if path.suffix else path.with_name(path.name + suffix)


def _read_model_bytes(path: str | os.PathLike | io.BufferedIOBase) -> bytes:
    """A model file's bytes: an open stream, or a regular file (SB3's rule adds ``.zip`` when it is missing)."""
    if isinstance(path, io.BufferedIOBase):
        return read_bounded(path, "the model stream", MAX_MODEL_BYTES)  # type: ignore[arg-type]  # typeshed's BufferedIOBase is not the BinaryIO read_bounded names; both have read()
    path = Path(path)
    if not path.exists() and path.suffix != ".zip" and _with_default_suffix(path, ".zip").exists():
        path = _with_default_suffix(path, ".zip")
    return read_regular_file(path, "the model file", MAX_MODEL_BYTES)


def _read_model_archive(path: str | os.PathLike | io.BufferedIOBase) -> tuple[str, bytes, str]:
    """
    A model file read and checked before anything decodes it: its name for messages, its bytes (a zip whose member
    sizes are within the limits) and its ``data`` entry's text.
    """
    source = str(path) if not isinstance(path, io.BufferedIOBase) else "the given file"
    raw = _read_model_bytes(path)
    if not raw.startswith(b"PK"):
        raise CorruptFileError(f"Refusing to load {source}: it is not a zip file (a model file is one)")
    return source, raw, check_model_archive(raw, source)


class _RefusedInsideLoad(Exception):
    """
    A refusal raised inside SB3's ``load()``, carried out of it: its ``except ValueError`` around ``set_parameters``
    (a fallback for old DQN files) would turn an :class:`UnsafeFileError` into an unrelated ``KeyError``.
    """

    def __init__(self, error: UnsafeFileError):
        super().__init__(str(error))
        self.error = error


def _read_parameters_file(path: str | os.PathLike | io.BufferedIOBase, device: th.device | str) -> tuple[str, dict]:
    """
    The state dicts of a model file for ``set_parameters``, read as ``load()`` reads the file: a regular file (or
    stream) of bounded size, member sizes checked from the zip headers, state-dict members named by plain attribute
    paths, tensors read by torch with ``weights_only=True``. Returns the file's name for messages and the state dicts.
    """
    source, raw, _ = _read_model_archive(path)
    read_torch_variables(raw, source)  # set_parameters sets no variable, but the member names are checked here
    try:
        _, params, _ = load_from_zip_file(io.BytesIO(raw), device=device, load_data=False)
    except Exception as error:  # torch's safe unpickler and SB3's zip reader raise many types on damaged bytes
        raise CorruptFileError(
            f"Refusing to load {source}: its parameters cannot be read ({type(error).__name__}: {error})"
        ) from error
    return source, params


@contextlib.contextmanager
def _loading(source: str, variables: dict[str, th.Tensor | None]) -> Iterator[None]:
    previous = getattr(_LOADING, "source", None), getattr(_LOADING, "variables", None)
    _LOADING.source, _LOADING.variables = source, variables
    try:
        yield
    finally:
        _LOADING.source, _LOADING.variables = previous


class SafeSerializationMixin:
    """
    Safe loading and crash-proof saving for an SB3 algorithm; put it between the algorithm and SB3's class:
    ``class SACAE(SafeSerializationMixin, SAC)``.

    - ``load()`` runs no code from the file (see :meth:`load`); ``trust_remote_code=True`` restores SB3's loading.
    - ``save()`` and ``save_replay_buffer()`` are atomic (temporary file, fsync, rename).
    - Replay buffers are ``.npz`` arrays plus JSON metadata, checked against the model on load.
    """

    replay_buffer: Any
    env: Any
    device: th.device
    #: ``load()`` checks the file and runs no code from it (read by code that loads models of any SB3 class, such as
    #: :func:`sb3_sacae.checkpoints.resume_from_bundle`, which cannot import this module)
    loads_safely = True

    @classmethod
    def load(
        cls: type[SelfSafe],
        path: str | os.PathLike | io.BufferedIOBase,
        env: Any = None,
        device: th.device | str = "auto",
        custom_objects: dict[str, Any] | None = None,
        print_system_info: bool = False,
        force_reset: bool = True,
        trust_remote_code: bool = False,
        **kwargs: Any,
    ) -> SelfSafe:
        """
        Load a model like SB3's ``load()``, without running code from the file.

        Before SB3 sees the file: the file must be a regular file (or a symlink to one) of at most
        ``SB3_SACAE_MAX_MODEL_BYTES``, and so must every member once inflated (checked from the zip headers, the
        tensors' archive inside each ``.pth`` too); the ``data`` entry (at most ``SB3_SACAE_MAX_METADATA_BYTES``)
        has its pickled entries decoded by the allow-listed unpickler (at most ``SB3_SACAE_MAX_PICKLE_ELEMENTS``
        elements each); an ``env`` entry (which SB3 would pass to ``gym.make``, importing the module an id names),
        a ``policy_class`` outside the policy aliases and allow-listed classes, spaces that are not gymnasium spaces
        (or have more than ``SB3_SACAE_MAX_PICKLE_ELEMENTS`` elements) and keys that would replace a method are
        refused; the networks that ``policy_kwargs`` and the spaces describe are counted on torch's ``meta`` device
        (no memory) and refused above ``SB3_SACAE_MAX_PARAMETERS`` parameters. Weights are read by torch with
        ``weights_only=True``; the keys of ``pytorch_variables.pth`` (SB3 sets ``model.<key>.data`` from each) must
        be the model's torch variables, of its shapes, and the state-dict members plain attribute paths. The same
        bytes that were checked are loaded. Every refusal, and any failure to build the model from the file, is an
        :class:`~sb3_sacae.io.UnsafeFileError`.

        The other parameters are those of ``stable_baselines3.common.base_class.BaseAlgorithm.load``.

        :param trust_remote_code: decode the file with cloudpickle as SB3 does, without the checks (only for files
            you trust)
        """
        load_kwargs = dict(env=env, device=device, print_system_info=print_system_info, force_reset=force_reset, **kwargs)
        if trust_remote_code:
            return super().load(path, custom_objects=custom_objects, **load_kwargs)  # type: ignore[misc]  # a mixin's super(): mypy cannot see the SB3 algorithm class it precedes
        source, raw, data = _read_model_archive(path)
        user_objects = dict(custom_objects or {})
        decoded = decode_model_data(data, cls, source, skip=set(user_objects))
        variables = read_torch_variables(raw, source)
        try:
            with _loading(source, variables):
                return super().load(  # type: ignore[misc]  # a mixin's super(): mypy cannot see the SB3 algorithm class it precedes
                    io.BytesIO(raw), custom_objects={**decoded, **user_objects}, **load_kwargs
                )
        except _RefusedInsideLoad as carried:
            raise carried.error from None
        except UnsafeFileError:
            raise
        except ValueError as error:  # SB3's checks of the file against env=, policy_kwargs= and the parameters
            raise FileMismatchError(f"Cannot load {source}: {error}") from error
        except RuntimeError as error:
            overrides = sorted({*user_objects, *kwargs})
            if overrides and "state_dict" in str(error):
                # The networks built with the caller's arguments are not the file's: a mismatch, not a corrupt file
                raise FileMismatchError(
                    f"Cannot load {source}: its weights do not fit the networks built with the arguments given to "
                    f"load() ({', '.join(overrides)}); load it without the ones that change the networks, or with "
                    f"the values it was saved with ({error})"
                ) from error
            raise CorruptFileError(
                f"Refusing to load {source}: the model cannot be built from it ({type(error).__name__}: {error})"
            ) from error
        except (
            KeyError,
            TypeError,
            AttributeError,
            IndexError,
            AssertionError,
            EOFError,
            OSError,
            OverflowError,
            pickle.UnpicklingError,
            zipfile.BadZipFile,
            zlib.error,
            struct.error,
        ) as error:
            raise CorruptFileError(
                f"Refusing to load {source}: the model cannot be built from it ({type(error).__name__}: {error})"
            ) from error

    def _setup_model(self) -> None:
        source = getattr(_LOADING, "source", None)
        if source is not None:
            # Before SB3 allocates the networks a file's spaces and policy_kwargs describe: count them without memory
            policy_class, kwargs = getattr(self, "policy_class", None), dict(getattr(self, "policy_kwargs", None) or {})
            if kwargs.get("use_sde"):
                # gSDE's set-up calls Tensor.item(), which the meta device cannot: count the actor with the Linear
                # log_std layer gSDE replaces, which holds at least as many parameters (latent x actions, plus a bias)
                kwargs["use_sde"] = False
            spaces = getattr(self, "observation_space", None), getattr(self, "action_space", None)
            if isinstance(policy_class, type):
                check_network_size(lambda: policy_class(*spaces, lambda _: 0.0, **kwargs), source)
        super()._setup_model()  # type: ignore[misc]  # a mixin's super(): mypy cannot see the SB3 algorithm class it precedes

    def set_parameters(self, load_path_or_dict: Any, exact_match: bool = True, device: th.device | str = "auto") -> None:
        """
        Load parameters like SB3's ``set_parameters``. A path or file is read with the checks of :meth:`load` (a
        regular file of at most ``SB3_SACAE_MAX_MODEL_BYTES``, member sizes from the zip headers, tensors with
        ``weights_only=True``), and its state dicts are then set as a dict would be; a refusal, or state dicts that
        do not fit this model, end in :class:`~sb3_sacae.io.UnsafeFileError`. A dict is used as given.
        """
        if not isinstance(load_path_or_dict, dict):
            source, params = _read_parameters_file(load_path_or_dict, device)
            try:
                self.set_parameters(params, exact_match=exact_match, device=device)
            except UnsafeFileError:
                raise
            except (ValueError, RuntimeError) as error:  # SB3's name check, torch's load_state_dict
                raise FileMismatchError(
                    f"Cannot load the parameters of {source} into this model: {error}; a file saved by a model with "
                    "the same spaces and networks fits (or pass exact_match=False for a part of them)"
                ) from error
            except (KeyError, TypeError, AttributeError, IndexError) as error:
                raise CorruptFileError(
                    f"Refusing to load the parameters of {source}: {type(error).__name__}: {error}"
                ) from error
            return
        loading = getattr(_LOADING, "source", None)
        if loading is not None:
            # SB3's load() is about to set model.<name>.data for each torch variable of the file: the model is built,
            # so its variables are known; nothing from the file has been set on it yet
            _, names = self._get_torch_save_params()  # type: ignore[attr-defined]  # a mixin: the SB3 algorithm class it precedes defines it
            expected = {name: getattr(self, name, None) for name in names}
            try:
                check_torch_variables(getattr(_LOADING, "variables", None) or {}, expected, loading)
            except UnsafeFileError as error:
                raise _RefusedInsideLoad(error) from None
        super().set_parameters(load_path_or_dict, exact_match=exact_match, device=device)  # type: ignore[misc]  # a mixin's super(): mypy cannot see the SB3 algorithm class it precedes

    def save(
        self,
        path: str | os.PathLike | io.BufferedIOBase,
        exclude: Any = None,
        include: Any = None,
    ) -> None:
        """Save like SB3's ``save()``; a path is replaced atomically (a crash mid-save keeps the old file)."""
        if isinstance(path, io.BufferedIOBase):
            super().save(path, exclude=exclude, include=include)  # type: ignore[misc]  # a mixin's super(): mypy cannot see the SB3 algorithm class it precedes
            return
        with atomic_write(_with_default_suffix(path, ".zip")) as file:
            super().save(file, exclude=exclude, include=include)  # type: ignore[misc]  # a mixin's super(): mypy cannot see the SB3 algorithm class it precedes

    def save_replay_buffer(self, path: str | os.PathLike | io.BufferedIOBase) -> None:
        """Save the replay buffer without pickle: an ``.npz`` (the default suffix) of arrays plus JSON metadata."""
        if self.replay_buffer is None:
            raise ValueError("The replay buffer is not defined")
        write_replay_buffer(
            self.replay_buffer, path if isinstance(path, io.BufferedIOBase) else _with_default_suffix(path, ".npz")
        )

    def load_replay_buffer(
        self,
        path: str | os.PathLike | io.BufferedIOBase,
        truncate_last_traj: bool = True,
        trust_remote_code: bool = False,
    ) -> None:
        """
        Load a buffer written by :meth:`save_replay_buffer` into the model's own buffer, after checking that its
        class, spaces, number of envs, shapes and dtypes match the model (shapes and dtypes from the array headers,
        before any array is read).

        :param truncate_last_traj: for a ``HerReplayBuffer``, end the last episode where the file ends if it was
            unfinished (as SB3 does), so that relabelling never samples future goals past it
        :param trust_remote_code: accept SB3's pickled buffer files (only for files you trust)
        """
        if not isinstance(path, io.BufferedIOBase):
            path = Path(path)
            if not path.exists():
                candidates = [_with_default_suffix(path, ".npz"), _with_default_suffix(path, ".pkl")]
                path = next((c for c in candidates if c.exists()), path)
        if trust_remote_code and not looks_like_npz(path):
            super().load_replay_buffer(path, truncate_last_traj)  # type: ignore[misc]  # a mixin's super(): mypy cannot see the SB3 algorithm class it precedes
            return
        if self.replay_buffer is None:
            raise ValueError("This model has no replay buffer to load into")
        read_replay_buffer_into(self.replay_buffer, path)
        self.replay_buffer.device = self.device
        if isinstance(self.replay_buffer, HerReplayBuffer):
            # relabels with the model's env of now (set_env may have changed it; SB3 builds no HER model without one)
            self.replay_buffer.env = self.env
            if truncate_last_traj:
                self.replay_buffer.truncate_last_trajectory()

    @classmethod
    def load_checkpoint(cls: type[SelfSafe], path: str | os.PathLike, env: Any, **kwargs: Any) -> SelfSafe:
        """Resume from a checkpoint bundle: see :func:`sb3_sacae.checkpoints.resume_from_bundle`."""
        from sb3_sacae.checkpoints import resume_from_bundle

        return resume_from_bundle(path, env, algorithm_class=cls, **kwargs)  # type: ignore[arg-type, return-value]  # cls is the mixin here, an OffPolicyAlgorithm subclass at run time


__all__ = [
    "ALLOWED_GLOBALS",
    "TRUST_HINT",
    "SafeSerializationMixin",
    "UnsafeFileError",
    "atomic_write",
    "decode_model_data",
    "is_allowed_global",
    "read_replay_buffer_into",
    "restricted_loads",
    "safe_load_config",
    "write_replay_buffer",
]
