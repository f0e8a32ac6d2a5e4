"""
Files on disk: atomic replacement (temporary file, fsync, rename) and reads that refuse anything but a bounded regular
file (a symlink to ``/dev/zero`` or a FIFO would otherwise be read until memory runs out, or block forever).
"""

import contextlib
import io
import os
import re
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from sb3_sacae.io.errors import UnsafeFileError
from sb3_sacae.io.limits import Limit


def current_umask() -> int:
    """The process umask, read without changing it where /proc allows (``os.umask`` can only set and return it)."""
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    mask = os.umask(0o022)  # no /proc (macOS, old kernels): set and restore, briefly visible to other threads
    os.umask(mask)
    return mask


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` still runs (the current one always does; one we may not signal counts as alive)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def fsync_dir(directory: str | os.PathLike) -> None:
    """Make a rename in ``directory`` durable (where the file system lets a directory be opened and synced)."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _remove_stale_temporaries(path: Path) -> None:
    """Delete ``.<name>.<pid>.XXXX.tmp`` files of ``path`` left by a killed save (their process is gone)."""
    pattern = re.compile(rf"\.{re.escape(path.name)}\.(\d+)\.[^.]+\.tmp")
    with contextlib.suppress(OSError):
        for candidate in path.parent.iterdir():
            match = pattern.fullmatch(candidate.name)
            if match and not pid_alive(int(match.group(1))):
                with contextlib.suppress(OSError):
                    candidate.unlink()


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike) -> Iterator[io.BufferedWriter]:
    """
    Open ``path`` for writing so that it is replaced only when the block completes: the data goes to a temporary
    file in the same directory, is flushed and fsynced, then renamed over ``path``. An exception (or a kill)
    before the rename leaves the previous file untouched.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"Cannot save to {path}: it is a directory")
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(path)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        os.chmod(tmp_name, path.stat().st_mode & 0o777 if path.exists() else 0o666 & ~current_umask())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    fsync_dir(path.parent)


def open_regular_file(path: str | os.PathLike, what: str, follow_symlinks: bool = True) -> BinaryIO:
    """
    Open ``path`` for reading only if it is (or, with ``follow_symlinks``, points to) a regular file; anything else
    (a device, a FIFO, a socket, a directory, or any symlink when ``follow_symlinks`` is False) is refused with
    :class:`UnsafeFileError` without reading from it. Hub downloads are symlinks into a cache, so models and
    configs follow them; checkpoint bundles, written by this package, never contain one.
    """
    path = Path(path)
    info = os.stat(path) if follow_symlinks else os.lstat(path)
    if stat.S_ISLNK(info.st_mode):
        raise UnsafeFileError(
            f"Refusing to read {what} {path}: it is a symbolic link (to {os.readlink(path)!r}); copy the file it points "
            "to in its place if you trust it"
        )
    if not stat.S_ISREG(info.st_mode):
        raise UnsafeFileError(f"Refusing to read {what} {path}: it is not a regular file (a device, FIFO or socket)")
    # O_NONBLOCK (and O_NOFOLLOW): a path swapped for a FIFO (or a symlink) after the check cannot block or redirect
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | (0 if follow_symlinks else getattr(os, "O_NOFOLLOW", 0))
    try:
        fd = os.open(path, flags)
    except OSError as error:
        raise UnsafeFileError(f"Refusing to read {what} {path}: {error.strerror}") from error
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise UnsafeFileError(f"Refusing to read {what} {path}: it is not a regular file")
    return os.fdopen(fd, "rb")


def read_regular_file(path: str | os.PathLike, what: str, limit: Limit, follow_symlinks: bool = True) -> bytes:
    """The bytes of a regular file (see :func:`open_regular_file`) no larger than ``limit``."""
    with open_regular_file(path, what, follow_symlinks) as file:
        size = os.fstat(file.fileno()).st_size
        limit.check(size, f"{what} {path}")
        data = file.read(size + 1)  # a file that grew after fstat is refused below, not read further
    if len(data) > size:
        raise UnsafeFileError(f"Refusing to read {what} {path}: it grew while being read")
    return data


def read_bounded(stream: BinaryIO, what: str, limit: Limit) -> bytes:
    """Read an already open stream in chunks, refusing it once it exceeds ``limit`` bytes."""
    bound, chunks, total = limit.value(), [], 0
    while chunk := stream.read(1 << 20):
        total += len(chunk)
        if total > bound:
            limit.check(total, what)
        chunks.append(chunk)
    return b"".join(chunks)
