"""The one reader of rl_zoo3 ``config.yml`` / ``args.yml`` files and other YAML the package accepts from files."""

import os
from typing import Any

import yaml

from sb3_sacae.io.errors import UnsafeFileError
from sb3_sacae.io.files import read_regular_file
from sb3_sacae.io.limits import MAX_METADATA_BYTES


class _ZooConfigLoader(yaml.SafeLoader):
    """yaml.SafeLoader plus the two harmless tags rl_zoo3 writes: OrderedDict (as dict) and tuple."""


def _construct_ordered_dict(loader: yaml.SafeLoader, node: yaml.Node) -> dict[Any, Any]:
    pairs = loader.construct_sequence(node, deep=True)
    if len(pairs) == 1 and isinstance(pairs[0], list) and all(isinstance(p, (list, tuple)) and len(p) == 2 for p in pairs[0]):
        pairs = pairs[0]  # !!python/object/apply:collections.OrderedDict [[[k, v], ...]]
    try:
        return {key: value for key, value in pairs}
    except (TypeError, ValueError) as error:  # pairs that are not (key, value), or unhashable keys
        raise yaml.constructor.ConstructorError(None, None, f"malformed OrderedDict: {error}", node.start_mark) from error


_ZooConfigLoader.add_constructor("tag:yaml.org,2002:python/object/apply:collections.OrderedDict", _construct_ordered_dict)
_ZooConfigLoader.add_constructor(
    "tag:yaml.org,2002:python/tuple", lambda loader, node: tuple(loader.construct_sequence(node, deep=True))
)


def safe_load_config_text(text: str | bytes, source: str) -> Any:
    """Parse YAML text like :func:`safe_load_config`; ``source`` names it in errors."""
    MAX_METADATA_BYTES.check(len(text), f"the config {source}")
    try:
        return yaml.load(text, Loader=_ZooConfigLoader)  # a SafeLoader subclass
    except yaml.constructor.ConstructorError as error:
        raise UnsafeFileError(f"Refusing to read {source}: {error.problem} (only plain YAML is accepted)") from error
    except (yaml.YAMLError, UnicodeDecodeError, RecursionError) as error:
        raise UnsafeFileError(f"Refusing to read {source}: it is not valid YAML ({error})") from error


def safe_load_config(path: str | os.PathLike) -> Any:
    """
    Read an rl_zoo3 ``config.yml`` / ``args.yml`` without running code.

    rl_zoo3 reads them with ``yaml.UnsafeLoader``, which builds arbitrary Python objects; this loader accepts
    plain YAML plus the OrderedDict and tuple tags rl_zoo3 itself writes, and refuses any other Python tag, a
    file that is not a regular file, and a file larger than ``SB3_SACAE_MAX_METADATA_BYTES``.
    """
    return safe_load_config_text(read_regular_file(path, "the config", MAX_METADATA_BYTES), str(path))
