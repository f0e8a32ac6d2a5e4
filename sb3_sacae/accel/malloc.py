"""
glibc malloc settings for SAC-AE's update on CPU.

One update at the paper's settings allocates and frees about 200 MB of tensors of 1 to 32 MB (activations saved for
backward, gradients, bfloat16 copies). glibc serves blocks above its mmap threshold with fresh ``mmap`` calls and
returns the top of the heap to the system once more than twice that threshold is free there; the threshold adapts,
but not far enough for this pattern, so every gradient step page-faults 30,000-50,000 fresh pages (about a tenth of
the step on small machines, measured with ``resource.getrusage``). :func:`tune_malloc` fixes the
threshold at glibc's maximum and keeps up to 1 GiB of freed heap for reuse: the same blocks then serve every step.
"""

import ctypes
import sys
import threading
from collections.abc import Callable

# mallopt parameters (glibc's malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
# glibc's largest mmap threshold on 64-bit systems: 4 * 1024 * 1024 * sizeof(long)
MMAP_THRESHOLD_MAX = 32 * 1024 * 1024
# freed memory kept at the top of the heap before it goes back to the system
TRIM_THRESHOLD = 1024**3

_lock = threading.Lock()
_tuned = False


def _glibc_mallopt() -> Callable[[int, int], int] | None:
    """glibc's ``mallopt``, or None on other C libraries (musl, macOS, Windows) and 32-bit builds."""
    if not sys.platform.startswith("linux") or ctypes.sizeof(ctypes.c_long) != 8:
        return None
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # only glibc has it  # noqa: B018
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return None
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return mallopt


def tune_malloc() -> bool:
    """
    Fix glibc's mmap threshold at 32 MB and its trim threshold at 1 GiB, for the whole process, once.

    An explicit opt-in for a training process on CPU: call ``sb3_sacae.accel.tune_malloc()`` once before training.
    The package never calls it itself (the environment variables ``MALLOC_MMAP_THRESHOLD_`` and
    ``MALLOC_TRIM_THRESHOLD_`` do the same before Python starts). The cost: up to 1 GiB of freed memory stays with the
    process for reuse.

    :return: whether the settings are in place (False where the C library is not glibc)
    """
    global _tuned
    with _lock:
        if not _tuned:
            mallopt = _glibc_mallopt()
            if mallopt is None:
                return False
            _tuned = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
        return _tuned
