"""Building blocks for the hostile files the security tests build at test time."""

import json
import pickle
import zipfile
from pathlib import Path


def rewrite_model_zip(
    source: Path, target: Path, edit_data=None, extra: dict[str, bytes] | None = None, compress: bool = False
) -> Path:
    """Copy a model zip, passing its JSON ``data`` through ``edit_data`` and adding ``extra`` members."""
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(source) as archive_in, zipfile.ZipFile(target, "w", method) as archive_out:
        for name in archive_in.namelist():
            content = archive_in.read(name)
            if name == "data" and edit_data is not None:
                data = json.loads(content)
                edit_data(data)
                content = json.dumps(data).encode()
            archive_out.writestr(name, content)
        for name, content in (extra or {}).items():
            archive_out.writestr(name, content)
    return target


def pickle_text(value: str) -> bytes:
    """A short string, as protocol 4 writes it."""
    encoded = value.encode()
    return pickle.SHORT_BINUNICODE + bytes([len(encoded)]) + encoded


def pickle_global(module: str, name: str) -> bytes:
    """The start of a protocol-4 pickle that pushes the global ``module.name``, written opcode by opcode."""
    return pickle.PROTO + b"\x04" + pickle_text(module) + pickle_text(name) + pickle.STACK_GLOBAL
