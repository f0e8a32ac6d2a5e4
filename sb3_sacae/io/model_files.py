"""
Model zips read without running code from them: sizes checked from the zip headers, the pickled entries of ``data``
decoded with the allow-listed unpickler, and the plain-JSON entries that SB3's ``load()`` would act on checked too.

SB3's ``BaseAlgorithm.load`` acts on these entries of ``data`` beyond copying them into the model:

- ``env`` (never written by SB3, which excludes it from saves): without ``env=``, ``load()`` passes it to the
  constructor, which calls ``gym.make`` on a string, and an id ``"module:Name-v0"`` imports ``module``: refused;
- ``policy_class``: a class (allow-listed, reference only) or one of the algorithm's ``policy_aliases``;
- ``observation_space`` / ``action_space``: gymnasium spaces (allow-listed), whose size is bounded here because the
  networks are built from them;
- ``policy_kwargs``: the network sizes, checked (with the spaces) by :func:`check_network_size` before
  ``_setup_model`` allocates anything;
- every key is copied into the model's ``__dict__``: a key that would shadow a method, property or dunder of the
  class is refused.

Its ``.pth`` members are acted on too: each state dict's member name is an attribute path that ``set_parameters``
looks up (only plain dotted names are accepted), and each key of ``pytorch_variables.pth`` becomes
``recursive_setattr(model, key + ".data", value)`` in ``load()``: a key such as ``log_ent_coef.__class__`` would set
``torch.Tensor.data`` for the whole process. :func:`read_torch_variables` reads those keys and values (torch,
``weights_only=True``) and :func:`check_torch_variables` holds them against the model's ``_get_torch_save_params()``
before SB3 sets any of them.
"""

import base64
import inspect
import io
import json
from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces

from sb3_sacae.io.archives import open_zip, read_member
from sb3_sacae.io.errors import CorruptFileError, FileMismatchError, UnsafeFileError
from sb3_sacae.io.limits import MAX_METADATA_BYTES, MAX_MODEL_BYTES, MAX_PARAMETERS, MAX_PICKLE_ELEMENTS
from sb3_sacae.io.unpickle import TRUST_HINT, restricted_loads

# Entries SB3 never saves (BaseAlgorithm._excluded_save_params) that load() would use to build or import something
_REFUSED_ENTRIES = {"env": "an environment (a string id 'module:Name' makes gym.make import that module)"}


def check_model_archive(raw: bytes, source: str) -> str:
    """
    Check every member size of a model zip from its headers (``.pth`` members: the tensors' archive inside too)
    and return the JSON text of its ``data`` entry (``"{}"`` when it has none).
    """
    with open_zip(raw, source) as archive:
        for info in archive.infolist():
            MAX_MODEL_BYTES.check(info.file_size, f"member '{info.filename}' of {source}")
        for info in archive.infolist():
            if info.filename.endswith(".pth"):
                _check_torch_archive(read_member(archive, info.filename, source, MAX_MODEL_BYTES), info.filename, source)
        if "data" not in archive.namelist():
            return "{}"
        text = read_member(archive, "data", source, MAX_METADATA_BYTES)
    try:
        return text.decode()
    except UnicodeDecodeError as error:
        raise CorruptFileError(f"Refusing to load {source}: its data entry is not UTF-8 text") from error


# SB3's names for the member of torch variables (not state dicts); "tensors.pth" before SB3 0.9
_VARIABLE_MEMBERS = ("pytorch_variables.pth", "tensors.pth")


def _plain_name(name: Any) -> bool:
    """A plain attribute name: an identifier, not a dunder (``__class__``, ...)."""
    return isinstance(name, str) and name.isidentifier() and not name.startswith("__")


def _plain_attribute_path(name: Any) -> bool:
    """A dotted path of plain attribute names (no empty part)."""
    return isinstance(name, str) and all(_plain_name(part) for part in name.split("."))


def read_torch_variables(raw: bytes, source: str) -> dict[str, th.Tensor | None]:
    """
    The torch variables of a model zip (``pytorch_variables.pth``: e.g. ``log_ent_coef``), read with
    ``weights_only=True``, after checking that every state-dict member is named by a plain attribute path. Their
    names are checked against the model by :func:`check_torch_variables`; here only their form: plain names (no dots,
    no dunders) holding tensors (or None, which SB3 skips).
    """
    variables: dict[str, th.Tensor | None] = {}
    with open_zip(raw, source) as archive:
        for name in archive.namelist():
            if not name.endswith(".pth"):
                continue
            if name not in _VARIABLE_MEMBERS:
                if not _plain_attribute_path(name[: -len(".pth")]):
                    raise UnsafeFileError(
                        f"Refusing to load {source}: its member '{name}' does not name a plain attribute path of the "
                        f"model (SB3 loads a state dict into the attribute it names). {TRUST_HINT}."
                    )
                continue
            payload = read_member(archive, name, source, MAX_MODEL_BYTES)
            try:
                loaded = th.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
            except Exception as error:  # torch's safe unpickler and its zip reader raise many types on damaged bytes
                raise CorruptFileError(
                    f"Refusing to load member '{name}' of {source}: torch cannot read it ({type(error).__name__}: {error})"
                ) from error
            if loaded is None:
                continue
            if not isinstance(loaded, dict):
                raise CorruptFileError(f"Refusing to load member '{name}' of {source}: it is not a dict of tensors")
            for key, value in loaded.items():
                if not _plain_name(key):
                    raise UnsafeFileError(
                        f"Refusing to load member '{name}' of {source}: its key {key!r} is not a plain variable name "
                        f"(SB3 sets model.<key>.data from it, so a dotted or special name would set attributes of "
                        f"other objects). {TRUST_HINT}."
                    )
                if value is not None and not isinstance(value, th.Tensor):
                    raise CorruptFileError(
                        f"Refusing to load member '{name}' of {source}: its variable '{key}' is a "
                        f"{type(value).__name__}, not a tensor"
                    )
                variables[key] = value
    return variables


def check_torch_variables(variables: dict[str, th.Tensor | None], expected: dict[str, Any], source: str) -> None:
    """
    Refuse torch variables that ``load()`` would set but the model does not have: ``expected`` maps the variable
    names of the model's ``_get_torch_save_params()`` to its current values (a variable must be one of them, and a
    tensor of the same shape as the model's).
    """
    for name, value in variables.items():
        if name not in expected:
            raise FileMismatchError(
                f"Cannot load {source}: it sets the torch variable '{name}', which this model does not have (its "
                f"variables are {sorted(expected)}); load it with the arguments it was saved with"
            )
        current = expected[name]
        if value is not None and isinstance(current, th.Tensor) and value.shape != current.shape:
            raise FileMismatchError(
                f"Cannot load {source}: its torch variable '{name}' has the shape {tuple(value.shape)}, the model's "
                f"{tuple(current.shape)}"
            )


def _check_torch_archive(payload: bytes, name: str, source: str) -> None:
    """A ``.pth`` is itself a zip: its records are inflated by torch at their stated size, so check those first."""
    if not payload.startswith(b"PK"):
        return  # torch's legacy format, read by torch.load(weights_only=True) without inflating anything
    with open_zip(payload, f"member '{name}' of {source}") as inner:
        total = sum(info.file_size for info in inner.infolist())
    MAX_MODEL_BYTES.check(total, f"the tensors of member '{name}' of {source}")


def decode_model_data(
    json_text: str, algorithm_class: type, source: str, skip: frozenset[str] | set[str] = frozenset()
) -> dict[str, Any]:
    """
    Decode every serialized (non-JSON) entry of a model zip's ``data`` with the allow-listed unpickler, and check
    the plain entries SB3's ``load()`` acts on (see the module docstring).

    Entries named in ``skip`` (the caller's ``custom_objects``) are not decoded. Returns the decoded entries, to be
    passed to SB3's ``load()`` as ``custom_objects``.
    """
    try:
        data = json.loads(json_text)
    except (ValueError, RecursionError) as error:
        raise CorruptFileError(f"Refusing to load {source}: its data entry is not JSON ({error})") from error
    if not isinstance(data, dict):
        raise CorruptFileError(f"Refusing to load {source}: its data entry is not a JSON object")
    decoded = {}
    for key, item in data.items():
        attribute = inspect.getattr_static(algorithm_class, key, None)
        if key.startswith("__") or callable(attribute) or isinstance(attribute, (classmethod, staticmethod, property)):
            raise UnsafeFileError(
                f"Refusing to load entry '{key}' of {source}: it would replace {algorithm_class.__name__}.{key}. "
                f"{TRUST_HINT}."
            )
        if key in skip:
            continue
        if key in _REFUSED_ENTRIES and item is not None:
            raise UnsafeFileError(
                f"Refusing to load entry '{key}' of {source}: SB3 never saves {_REFUSED_ENTRIES[key]}; pass env= to "
                f"load() instead, or custom_objects={{'{key}': None}} to ignore the entry. {TRUST_HINT}."
            )
        if isinstance(item, dict) and ":serialized:" in item:
            serialized = item[":serialized:"]
            if not isinstance(serialized, str):
                raise CorruptFileError(f"Refusing to load entry '{key}' of {source}: its payload is not text")
            try:
                payload = base64.b64decode(serialized.encode(), validate=False)
            except ValueError as error:
                raise CorruptFileError(f"Refusing to load entry '{key}' of {source}: bad base64 ({error})") from error
            decoded[key] = restricted_loads(payload, f"entry '{key}' of {source}")
    _check_entries({**data, **decoded}, algorithm_class, source, skip)
    return decoded


def _check_entries(data: dict[str, Any], algorithm_class: type, source: str, skip: frozenset[str] | set[str]) -> None:
    """Types of the entries SB3's load() builds from, so that a wrong type is refused rather than half-built."""
    policy = data.get("policy_class")
    if "policy_class" not in skip and policy is not None:
        aliases = getattr(algorithm_class, "policy_aliases", {})
        if isinstance(policy, str) and policy not in aliases:
            raise UnsafeFileError(
                f"Refusing to load {source}: its policy_class {policy!r} is not one of {sorted(aliases)}; pass "
                "custom_objects={'policy_class': <the class>} if the file is yours"
            )
        if not isinstance(policy, (str, type)):
            raise CorruptFileError(f"Refusing to load {source}: its policy_class is a {type(policy).__name__}")
    for key in ("observation_space", "action_space"):
        if key in skip or key not in data:
            continue
        space = data[key]
        if not isinstance(space, spaces.Space):
            raise CorruptFileError(f"Refusing to load {source}: its {key} is a {type(space).__name__}, not a space")
        MAX_PICKLE_ELEMENTS.check(_space_elements(space), f"the {key} of {source}")
    kwargs = data.get("policy_kwargs")
    if "policy_kwargs" not in skip and kwargs is not None and not isinstance(kwargs, dict):
        raise CorruptFileError(f"Refusing to load {source}: its policy_kwargs is a {type(kwargs).__name__}, not a dict")


def _space_elements(space: spaces.Space) -> int:
    if isinstance(space, spaces.Dict):
        return sum(_space_elements(sub) for sub in space.spaces.values())
    if isinstance(space, spaces.Tuple):
        return sum(_space_elements(sub) for sub in space.spaces)
    shape = getattr(space, "_shape", None) or ()
    try:
        return int(np.prod(shape, dtype=object))
    except (TypeError, ValueError) as error:
        raise CorruptFileError(f"Refusing a space with the shape {shape!r}") from error


def _count_on_meta(build: Any) -> int:
    with th.device("meta"):
        modules = build()
    if isinstance(modules, th.nn.Module):
        modules = [modules]
    return sum(p.numel() for module in modules for p in module.parameters())


def check_network_size(build: Any, source: str) -> None:
    """
    Refuse a model whose networks would hold more than ``SB3_SACAE_MAX_PARAMETERS`` parameters, before allocating.
    Networks that cannot be built on torch's ``meta`` device cannot be counted: refused too (fail closed), since
    building them for real is the allocation the check exists to prevent.
    """
    try:
        count = _count_on_meta(build)
    except Exception as error:  # an operation without a meta implementation, or arguments the networks refuse
        raise UnsafeFileError(
            f"Refusing to load {source}: the networks it describes cannot be counted on torch's meta device before "
            f"they are built ({type(error).__name__}: {error}), so their size cannot be checked against "
            f"SB3_SACAE_MAX_PARAMETERS. {TRUST_HINT}."
        ) from error
    MAX_PARAMETERS.check(count, f"the networks of {source}")


__all__ = [
    "check_model_archive",
    "check_network_size",
    "check_torch_variables",
    "decode_model_data",
    "read_torch_variables",
]
