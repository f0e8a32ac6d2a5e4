"""
Zip and ``.npz`` archives read with their sizes checked from the headers before anything is inflated or allocated.

A zip's central directory states each member's uncompressed size, and :mod:`zipfile` stops inflating at that size;
an ``.npy`` member's header states its shape and dtype, from which ``numpy`` would allocate the array before reading
it. Both are checked against the limits (and against each other) first, so a small archive cannot make the reader
inflate or allocate gigabytes.
"""

import io
import zipfile
from typing import Any

import numpy as np

from sb3_sacae.io.errors import CorruptFileError, FileMismatchError, UnsafeFileError
from sb3_sacae.io.limits import MAX_ARRAY_BYTES, Limit


def open_zip(raw: bytes, what: str) -> zipfile.ZipFile:
    """A zip archive over ``raw``; a file that is not one is refused with :class:`CorruptFileError`."""
    try:
        return zipfile.ZipFile(io.BytesIO(raw))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as error:
        raise CorruptFileError(f"Refusing to load {what}: it is not a valid zip file ({error})") from error


def read_member(archive: zipfile.ZipFile, name: str, what: str, limit: Limit) -> bytes:
    """The bytes of one member, refused from its header size before inflating when it exceeds ``limit``."""
    info = archive.getinfo(name)
    limit.check(info.file_size, f"member '{name}' of {what}")
    try:
        data = archive.read(info)  # zipfile stops at the header's file_size and checks the CRC
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError, NotImplementedError) as error:
        raise CorruptFileError(f"Refusing to load member '{name}' of {what}: {error}") from error
    if len(data) != info.file_size:
        raise CorruptFileError(f"Refusing to load member '{name}' of {what}: it is truncated")
    return data


def npy_header(archive: zipfile.ZipFile, name: str, what: str) -> tuple[tuple[int, ...], np.dtype, int]:
    """Shape, dtype and header length of an ``.npy`` member, read without reading its data."""
    try:
        with archive.open(name) as member:
            version = np.lib.format.read_magic(member)
            if version == (1, 0):
                shape, _fortran, dtype = np.lib.format.read_array_header_1_0(member)
            elif version in ((2, 0), (3, 0)):
                shape, _fortran, dtype = np.lib.format.read_array_header_2_0(member)
            else:
                raise ValueError(f"unknown .npy version {version}")
            header_length = member.tell()
    except (ValueError, SyntaxError, TypeError, OSError, EOFError, zipfile.BadZipFile, NotImplementedError) as error:
        raise CorruptFileError(f"Refusing to load member '{name}' of {what}: not a valid .npy header ({error})") from error
    if dtype.hasobject:
        raise UnsafeFileError(
            f"Refusing to load member '{name}' of {what}: it is an object array, which needs pickle to read (allow_pickle)"
        )
    return tuple(int(side) for side in shape), dtype, header_length


def read_npz(
    raw: bytes,
    what: str,
    expected: dict[str, tuple[tuple[int, ...], np.dtype]] | None = None,
    limit: Limit = MAX_ARRAY_BYTES,
    member_limits: dict[str, Limit] | None = None,
    only_expected: bool = False,
    keys: set[str] | None = None,
) -> dict[str, np.ndarray]:
    """
    The arrays of an ``.npz`` (``allow_pickle=False``), each checked before it is read: an ``.npy`` header, no object
    dtype, a data size that matches the member's stated size, at most ``limit`` bytes (``member_limits`` per key),
    and, where ``expected`` names the member, exactly the expected shape and dtype; with ``only_expected``, a member
    that ``expected`` and ``member_limits`` do not name is refused. ``keys`` reads only those members.
    """
    member_limits = member_limits or {}
    arrays: dict[str, np.ndarray] = {}
    with open_zip(raw, what) as archive:
        for info in archive.infolist():
            if not info.filename.endswith(".npy"):
                raise CorruptFileError(
                    f"Refusing to load {what}: member '{info.filename}' is not a numpy array (.npy); the file holds "
                    "only arrays"
                )
            key = info.filename[: -len(".npy")]
            if only_expected and key not in (expected or {}) and key not in member_limits:
                raise FileMismatchError(f"{what} does not match this model: it holds an unexpected array '{key}'")
            if keys is not None and key not in keys:
                continue
            shape, dtype, header_length = npy_header(archive, info.filename, what)
            nbytes = int(np.prod(shape, dtype=object)) * dtype.itemsize
            member_limits.get(key, limit).check(nbytes, f"array '{key}' of {what}")
            if header_length + nbytes != info.file_size:
                raise CorruptFileError(
                    f"Refusing to load {what}: array '{key}' states {nbytes} bytes of data but the member holds "
                    f"{info.file_size - header_length}"
                )
            if expected is not None and key in expected and (shape, dtype) != expected[key]:
                raise FileMismatchError(
                    f"{what} does not match this model: array '{key}' is {shape} {dtype} in the file but "
                    f"{expected[key][0]} {expected[key][1]} in the model"
                )
            try:
                with archive.open(info) as member:
                    arrays[key] = np.lib.format.read_array(member, allow_pickle=False)
            except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
                raise CorruptFileError(f"Refusing to load array '{key}' of {what}: {error}") from error
    return arrays


def string_array(value: Any, key: str, what: str) -> str:
    """The text of a 0-d unicode array (how the metadata entries are stored)."""
    if not isinstance(value, np.ndarray) or value.shape != () or value.dtype.kind != "U":
        raise CorruptFileError(f"Refusing to load {what}: '{key}' is not a text entry")
    return str(value)


__all__ = ["npy_header", "open_zip", "read_member", "read_npz", "string_array"]
