"""
Bounds on what an untrusted file may make the readers allocate, each overridable by an environment variable.

A bound is read when it is checked, so setting the variable in a running process takes effect at the next load.
"""

import os
from dataclasses import dataclass

try:
    import psutil
except ImportError:  # pragma: no cover - psutil comes with SB3's extras, not its core
    psutil = None

from sb3_sacae.io.errors import FileLimitError


@dataclass(frozen=True)
class Limit:
    """One bound: its environment variable, its default and what it bounds (for error messages)."""

    variable: str
    default: int
    what: str

    def value(self) -> int:
        """The bound in force: the environment variable when it is set to a non-negative integer, else the default."""
        raw = os.environ.get(self.variable)
        if raw is None or raw.strip() == "":
            return self.default
        try:
            value = int(raw.replace("_", ""))
        except ValueError:
            raise ValueError(f"{self.variable}={raw!r} is not an integer; set it to a number of {self.what}") from None
        if value < 0:
            raise ValueError(f"{self.variable}={raw!r} is negative; set it to a number of {self.what}")
        return value

    def check(self, requested: int, source: str, otherwise: str | None = None) -> None:
        """
        Raise :class:`FileLimitError` when ``requested`` exceeds the bound; the message says how to raise it, and
        ``otherwise`` what else to do.
        """
        bound = self.value()
        if requested > bound:
            alternative = f"; or {otherwise}" if otherwise else ""
            raise FileLimitError(
                f"Refusing {source}: it needs {requested:,} {self.what}, more than the limit of {bound:,}. If you "
                f"trust the file and have the memory, raise the limit with the environment variable {self.variable}"
                f"{alternative}"
            )


_GIB = 1 << 30
_MIB = 1 << 20

# Uncompressed size of one member of a model zip (policy.pth, the optimizers, data)
MAX_MODEL_BYTES = Limit("SB3_SACAE_MAX_MODEL_BYTES", 512 * _MIB, "bytes (uncompressed model-file member)")
# Elements one pickle may build in total: items of lists, tuples, dicts, sets and bytes
MAX_PICKLE_ELEMENTS = Limit("SB3_SACAE_MAX_PICKLE_ELEMENTS", 10_000_000, "elements (built by one pickle)")
# The JSON text of a model zip's data entry, a buffer's or bundle's metadata, a config file
MAX_METADATA_BYTES = Limit("SB3_SACAE_MAX_METADATA_BYTES", 64 * _MIB, "bytes (metadata)")
# Uncompressed size of the arrays of one replay buffer or demonstrations file (also bounded by the memory available)
MAX_ARRAY_BYTES = Limit("SB3_SACAE_MAX_ARRAY_BYTES", 256 * _GIB, "bytes (uncompressed arrays of one file)")
# Parameters the networks of a loaded model may hold, checked from policy_kwargs before anything is allocated
MAX_PARAMETERS = Limit("SB3_SACAE_MAX_PARAMETERS", 2_000_000_000, "network parameters")

ALL_LIMITS = (MAX_MODEL_BYTES, MAX_PICKLE_ELEMENTS, MAX_METADATA_BYTES, MAX_ARRAY_BYTES, MAX_PARAMETERS)


def available_memory() -> int | None:
    """
    :return: Bytes of memory available to this process without swapping (psutil, else
        ``MemAvailable`` of ``/proc/meminfo``), or ``None`` when it cannot be measured.
    """
    if psutil is not None:
        return int(psutil.virtual_memory().available)
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def check_fits_in_memory(nbytes: int, source: str) -> None:
    """Refuse to allocate ``nbytes`` for a file's contents when the machine does not have them available."""
    available = available_memory()
    if available is not None and nbytes > available:
        raise FileLimitError(
            f"Refusing {source}: its arrays need {nbytes:,} bytes but only {available:,} bytes of memory are available"
        )
