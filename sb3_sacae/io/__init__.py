"""
Reading untrusted files and writing files safely: one place for the allow-listed unpickler, the bounds on what a file
may allocate, atomic writes, pickle-free replay buffers, model zips and the one safe-YAML reader.

Every refusal is an :class:`UnsafeFileError` (a ``ValueError``); see the security guide for the threat model.
"""

from sb3_sacae.io.config import safe_load_config, safe_load_config_text
from sb3_sacae.io.errors import CorruptFileError, FileLimitError, FileMismatchError, UnsafeFileError
from sb3_sacae.io.files import atomic_write, open_regular_file, read_regular_file
from sb3_sacae.io.unpickle import ALLOWED_GLOBALS, TRUST_HINT, is_allowed_global, restricted_loads

__all__ = [
    "ALLOWED_GLOBALS",
    "TRUST_HINT",
    "CorruptFileError",
    "FileLimitError",
    "FileMismatchError",
    "UnsafeFileError",
    "atomic_write",
    "is_allowed_global",
    "open_regular_file",
    "read_regular_file",
    "restricted_loads",
    "safe_load_config",
    "safe_load_config_text",
]
