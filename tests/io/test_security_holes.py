"""
Hostile files built at test time: plain-JSON entries that would make SB3 import something, pickles that would change
an allowed class, and small files that ask for huge allocations are refused, and nothing of them ran or persisted.
"""

import base64
import io
import os
import pickle
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from stable_baselines3.common.utils import FloatSchedule

from sb3_sacae import SACAE
from sb3_sacae.io import UnsafeFileError, restricted_loads
from sb3_sacae.io.errors import FileLimitError
from sb3_sacae.io.files import read_regular_file
from sb3_sacae.io.limits import MAX_METADATA_BYTES
from tests.io.hostile import pickle_global, pickle_text, rewrite_model_zip


def _serialized(payload: bytes) -> dict:
    return {":type:": "x", ":serialized:": base64.b64encode(payload).decode()}


# --- 1. plain-JSON entries that make SB3 import or build things ---------------------------------------------------


@pytest.fixture
def evil_module(tmp_path, monkeypatch) -> tuple[str, Path]:
    """An importable module that writes a marker file when imported."""
    marker = tmp_path / "imported"
    name = f"sb3_sacae_evil_{os.getpid()}"
    (tmp_path / f"{name}.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name, marker
    sys.modules.pop(name, None)


def test_env_entry_with_module_prefix_is_refused_without_importing(saved_model, tmp_path, evil_module):
    name, marker = evil_module
    hostile = rewrite_model_zip(saved_model, tmp_path / "hostile.zip", lambda data: data.update(env=f"{name}:Evil-v0"))
    with pytest.raises(UnsafeFileError, match="entry 'env'"):
        SACAE.load(hostile)
    assert not marker.exists()
    assert name not in sys.modules


def test_env_entry_can_be_ignored_with_custom_objects(saved_model, tmp_path, evil_module):
    name, marker = evil_module
    hostile = rewrite_model_zip(saved_model, tmp_path / "hostile.zip", lambda data: data.update(env=f"{name}:Evil-v0"))
    model = SACAE.load(hostile, custom_objects={"env": None})
    assert model.env is None and not marker.exists()


def test_policy_class_name_outside_the_aliases_is_refused(saved_model, tmp_path):
    hostile = rewrite_model_zip(saved_model, tmp_path / "hostile.zip", lambda data: data.update(policy_class="os:system"))
    with pytest.raises(UnsafeFileError, match="policy_class"):
        SACAE.load(hostile)


def test_space_that_is_not_a_space_is_refused(saved_model, tmp_path):
    hostile = rewrite_model_zip(saved_model, tmp_path / "hostile.zip", lambda data: data.update(observation_space="Box"))
    with pytest.raises(UnsafeFileError, match="observation_space"):
        SACAE.load(hostile)


# --- 5. allowed classes stay immutable ----------------------------------------------------------------------------


def _build_on_global(module: str, name: str, attribute: str, replacement_module: str, replacement: str) -> bytes:
    """A pickle that sets ``module.name.attribute = replacement_module.replacement`` through BUILD's slot state."""
    return (
        pickle_global(module, name)
        + pickle.NONE
        + pickle.EMPTY_DICT
        + pickle_text(attribute)
        + pickle_text(replacement_module)
        + pickle_text(replacement)
        + pickle.STACK_GLOBAL
        + pickle.SETITEM
        + pickle.TUPLE2
        + pickle.BUILD
        + pickle.STOP
    )


@pytest.mark.parametrize(
    ("module", "name", "attribute"),
    [
        ("stable_baselines3.common.utils", "FloatSchedule", "__call__"),
        ("gymnasium.spaces.box", "Box", "contains"),
        ("sb3_sacae.policies", "SACAEPolicy", "forward"),
    ],
)
def test_build_on_an_allowed_class_is_refused_and_the_class_is_unchanged(module, name, attribute):
    cls = getattr(sys.modules[module], name)
    before = cls.__dict__.get(attribute)
    payload = _build_on_global(module, name, attribute, "builtins", "range")
    with pytest.raises(UnsafeFileError, match="class or global"):
        restricted_loads(payload, "the test pickle")
    assert cls.__dict__.get(attribute) is before


def test_dunder_state_on_an_instance_is_refused():
    schedule = FloatSchedule(0.5)
    payload = pickle.dumps(schedule, protocol=4)
    hostile = payload.replace(b"value_schedule", b"__class__\x00\x00\x00\x00\x00")  # same length, a dunder name
    with pytest.raises(UnsafeFileError):
        restricted_loads(hostile, "the test pickle")


def test_reference_only_classes_are_not_instantiated():
    payload = pickle_global("torch.nn.modules.linear", "Linear")
    payload += pickle.BININT + (100_000).to_bytes(4, "little") + pickle.BININT + (100_000).to_bytes(4, "little")
    payload += pickle.TUPLE2 + pickle.REDUCE + pickle.STOP
    with pytest.raises(UnsafeFileError, match="may only name that class"):
        restricted_loads(payload, "the test pickle")


def test_genuine_entries_still_load():
    space = spaces.Box(0, 255, (3, 8, 8), np.uint8)
    loaded = restricted_loads(pickle.dumps(space, protocol=4), "space")
    assert loaded == space
    assert restricted_loads(pickle.dumps(FloatSchedule(3e-4)), "schedule")(1.0) == pytest.approx(3e-4)


# --- 6. bounded reads ---------------------------------------------------------------------------------------------


def _call(module: str, name: str, *arguments: bytes) -> bytes:
    return pickle_global(module, name) + pickle.MARK + b"".join(arguments) + pickle.TUPLE + pickle.REDUCE + pickle.STOP


def _long(value: int) -> bytes:
    encoded = value.to_bytes(8, "little", signed=True)
    return pickle.LONG1 + bytes([len(encoded)]) + encoded


@pytest.mark.parametrize(
    "payload",
    [
        _call("builtins", "bytearray", _long(10**12)),
        _call("builtins", "set", _call("builtins", "range", _long(10**12))[2:-1]),
        _call("numpy", "ndarray", _long(10**6) + _long(10**6) + pickle.TUPLE2),
        _call("gymnasium.spaces.box", "Box", _long(0) + _long(1) + _long(10**6) + _long(10**6) + pickle.TUPLE2),
    ],
    ids=["bytearray", "set-of-range", "ndarray-shape", "box-shape"],
)
def test_tiny_pickles_asking_for_huge_containers_are_refused(payload):
    assert len(payload) < 120
    with pytest.raises(FileLimitError, match="SB3_SACAE_MAX_PICKLE_ELEMENTS"):
        restricted_loads(payload, "the test pickle")


def test_pickle_element_limit_can_be_raised(monkeypatch):
    payload = _call("builtins", "bytearray", _long(1000))
    monkeypatch.setenv("SB3_SACAE_MAX_PICKLE_ELEMENTS", "100")
    with pytest.raises(FileLimitError):
        restricted_loads(payload, "the test pickle")
    monkeypatch.setenv("SB3_SACAE_MAX_PICKLE_ELEMENTS", "100000")
    assert restricted_loads(payload, "the test pickle") == bytearray(1000)


def test_small_zip_with_a_600_mb_member_is_refused_without_inflating(saved_model, tmp_path):
    big = io.BytesIO()
    with zipfile.ZipFile(big, "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("policy.pth", "w", force_zip64=True) as member:
            chunk = bytes(1 << 20)
            for _ in range(600):
                member.write(chunk)
    with zipfile.ZipFile(big) as bomb:
        info = bomb.getinfo("policy.pth")
    hostile = tmp_path / "bomb.zip"
    _rebuild_with_member(saved_model, hostile, big.getvalue(), info)  # the header states 600 MB, the file is small
    assert hostile.stat().st_size < 5 << 20
    with pytest.raises(FileLimitError, match="SB3_SACAE_MAX_MODEL_BYTES"):
        SACAE.load(hostile)


def _rebuild_with_member(source: Path, target: Path, bomb_zip: bytes, info: zipfile.ZipInfo) -> None:
    """Write ``source``'s members except policy.pth, then the compressed policy.pth of ``bomb_zip`` byte for byte."""
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(target, "w") as out:
        for name in original.namelist():
            if name != "policy.pth":
                out.writestr(name, original.read(name))
        # the raw deflate stream of the bomb, written without recompressing it
        header_offset = info.header_offset
        name_length, extra_length = np.frombuffer(bomb_zip[header_offset + 26 : header_offset + 30], "<u2")
        start = header_offset + 30 + int(name_length) + int(extra_length)
        compressed = bomb_zip[start : start + info.compress_size]
        clone = zipfile.ZipInfo("policy.pth")
        clone.compress_type = zipfile.ZIP_DEFLATED
        clone.file_size, clone.compress_size, clone.CRC = info.file_size, len(compressed), info.CRC
        clone.header_offset = out.fp.tell()
        clone.flag_bits = 0
        clone.extract_version = max(clone.extract_version, 45)
        out.fp.write(clone.FileHeader(zip64=True))
        out.fp.write(compressed)
        out.filelist.append(clone)
        out.NameToInfo[clone.filename] = clone
        out.start_dir = out.fp.tell()
        out._didModify = True


def test_model_file_that_is_a_symlink_to_a_device_is_refused(tmp_path):
    link = tmp_path / "model.zip"
    link.symlink_to("/dev/zero")
    with pytest.raises(UnsafeFileError, match="not a regular file"):
        SACAE.load(link)


def test_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "config.yml"
    os.mkfifo(fifo)
    with pytest.raises(UnsafeFileError, match="not a regular file"):
        read_regular_file(fifo, "the config", MAX_METADATA_BYTES)


def test_enormous_layers_in_policy_kwargs_are_refused_before_allocating(saved_model, tmp_path):
    def huge(data: dict) -> None:
        data["policy_kwargs"] = {**data["policy_kwargs"], "net_arch": [200_000, 200_000]}  # 4e10 parameters

    hostile = rewrite_model_zip(saved_model, tmp_path / "hostile.zip", huge)
    with pytest.raises(FileLimitError, match="SB3_SACAE_MAX_PARAMETERS"):
        SACAE.load(hostile)


def test_large_layers_of_a_gsde_model_are_refused_before_allocating(saved_model, tmp_path, monkeypatch):
    # gSDE's set-up calls Tensor.item(), which torch's meta device cannot: the count must not be skipped for it
    def sde(data: dict) -> None:
        data["policy_kwargs"] = {**data["policy_kwargs"], "net_arch": [2000, 2000], "use_sde": True}
        data["use_sde"] = True

    hostile = rewrite_model_zip(saved_model, tmp_path / "hostile.zip", sde)
    monkeypatch.setenv("SB3_SACAE_MAX_PARAMETERS", "1000000")  # the file's networks hold about 20 million
    with pytest.raises(FileLimitError, match="SB3_SACAE_MAX_PARAMETERS"):
        SACAE.load(hostile)


@pytest.mark.parametrize("buffer_size", [10**12, 10**18])
def test_a_huge_buffer_size_in_a_model_file_is_refused_naming_the_fix(saved_model, tmp_path, buffer_size):
    hostile = rewrite_model_zip(saved_model, tmp_path / "hostile.zip", lambda data: data.update(buffer_size=buffer_size))
    with pytest.raises(FileLimitError, match=r"SACAE\.load\(path, buffer_size=N\)"):
        SACAE.load(hostile)


def test_networks_that_cannot_be_counted_are_refused():
    from sb3_sacae.io.model_files import check_network_size

    def build():
        return th.nn.Linear(3, 3).weight.item()  # no meta implementation

    with pytest.raises(UnsafeFileError, match="cannot be counted"):
        check_network_size(build, "the test model")


def _npy_header(shape: tuple[int, ...], dtype: str = "<f4") -> bytes:
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": dtype, "fortran_order": False, "shape": shape})
    return header.getvalue()


def test_demonstrations_member_with_a_huge_header_shape_is_refused_before_reading(tmp_path, monkeypatch):
    from sb3_sacae.demonstrations import load_demonstrations

    path = tmp_path / "demos.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("metadata.npy", _npy_header((), "<U2") + "{}".encode("utf-32-le"))
        archive.writestr("observations.npy", _npy_header((10**11,)) + b"\0" * 16)  # states 400 GB, holds 16 bytes
    with pytest.raises(FileLimitError, match="SB3_SACAE_MAX_ARRAY_BYTES"):
        load_demonstrations(path)


def test_compressed_npz_member_is_refused_from_its_header_before_inflating(tmp_path, monkeypatch):
    from sb3_sacae.demonstrations import load_demonstrations

    monkeypatch.setenv("SB3_SACAE_MAX_ARRAY_BYTES", str(100 << 20))
    path = tmp_path / "demos.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("observations.npy", "w", force_zip64=True) as member:
            member.write(_npy_header((300 << 20,), "|u1"))
            chunk = bytes(1 << 20)
            for _ in range(300):
                member.write(chunk)
    assert path.stat().st_size < 2 << 20
    with pytest.raises(FileLimitError, match="SB3_SACAE_MAX_ARRAY_BYTES"):
        load_demonstrations(path)


def test_object_array_state_with_a_huge_shape_is_refused_before_numpy_allocates_it():
    array = np.empty(2, dtype=object)
    array[:] = [1, 2]
    payload = pickle.dumps(array, protocol=4)
    # the state's shape tuple (2,) becomes (10**11,): numpy would allocate 10**11 pointers before checking the list
    hostile = payload.replace(b"K\x02\x85", b"\x8a\x05\x00\xe8vH\x17\x85")
    assert hostile != payload
    with pytest.raises(FileLimitError, match="SB3_SACAE_MAX_PICKLE_ELEMENTS"):
        restricted_loads(hostile, "the test pickle")


def test_build_on_a_shared_enum_member_is_refused_and_the_member_is_unchanged():
    from stable_baselines3.common.type_aliases import TrainFrequencyUnit

    module, name = "stable_baselines3.common.type_aliases", "TrainFrequencyUnit"
    payload = (
        pickle_global(module, name)
        + pickle_text("step")
        + pickle.TUPLE1
        + pickle.REDUCE
        + pickle.EMPTY_DICT
        + pickle_text("_value_")
        + pickle_text("episode")
        + pickle.SETITEM
        + pickle.BUILD
        + pickle.STOP
    )
    with pytest.raises(UnsafeFileError, match="enum member"):
        restricted_loads(payload, "the test pickle")
    assert TrainFrequencyUnit.STEP.value == "step"


def test_a_shared_numpy_dtype_is_not_handed_to_the_file():
    payload = _call("numpy", "dtype", pickle_text("f4") + pickle.NEWFALSE + pickle.NEWFALSE)
    with pytest.raises(UnsafeFileError, match="shared numpy dtype"):
        restricted_loads(payload, "the test pickle")
    genuine = pickle.dumps(np.dtype("f4"), protocol=4)  # numpy asks for a copy: dtype("f4", False, True)
    assert restricted_loads(genuine, "dtype") == np.dtype("f4")


# --- 7. numpy dtypes stay plain -----------------------------------------------------------------------------------


class _Reduced:
    """Pickles as the given reduce tuple (numpy's own callables: the pickle does not name this class)."""

    def __init__(self, reduced: tuple):
        self.reduced = reduced

    def __reduce__(self) -> tuple:
        return self.reduced


def _dtype_with_state(dtype: np.dtype, **changes: object) -> _Reduced:
    """A dtype pickled as numpy does (a copy, then BUILD), with fields of its state replaced."""
    constructor, arguments, state = dtype.__reduce__()
    names = ("version", "byteorder", "subarray", "names", "fields", "elsize", "alignment", "flags")
    head = tuple(changes.get(name, value) for name, value in zip(names, state[: len(names)], strict=True))
    state = head + tuple(state[len(names) :])
    return _Reduced((constructor, arguments, state))


def _array_of(dtype: object, shape: tuple[int, ...], source: np.ndarray) -> bytes:
    """An array pickled as numpy does, with its dtype replaced by ``dtype``."""
    constructor, arguments, state = source.__reduce__()
    state = list(state)
    state[1], state[2] = shape, dtype
    return pickle.dumps(_Reduced((constructor, arguments, tuple(state))), protocol=4)


def test_dtype_state_with_a_field_outside_the_item_is_refused():
    # numpy's dtype.__setstate__ accepts the offset: reading the field would read 2**40 bytes past the array
    structured = np.dtype([("a", "<f8"), ("b", "<f8")])
    fields = {"a": (np.dtype("<f8"), 0), "b": (np.dtype("<f8"), 1 << 40)}
    payload = _array_of(_dtype_with_state(structured, fields=fields), (4,), np.zeros(4, dtype=structured))
    with pytest.raises(UnsafeFileError, match="changes a numpy dtype: its state gives it fields"):
        restricted_loads(payload, "the test pickle")


@pytest.mark.parametrize(
    ("dtype", "changes", "message"),
    [
        (np.dtype("V1"), {"elsize": 1 << 30}, "item size"),  # a larger item over the same buffer
        (np.dtype("V8"), {"flags": np.dtype("O").flags}, "flags"),  # raw bytes treated as object pointers
        (np.dtype("f4"), {"byteorder": "!"}, "byte order"),
    ],
    ids=["itemsize", "object-flags", "byteorder"],
)
def test_dtype_state_changing_the_layout_is_refused(dtype, changes, message):
    payload = pickle.dumps(_dtype_with_state(dtype, **changes), protocol=4)
    with pytest.raises(UnsafeFileError, match=message):
        restricted_loads(payload, "the test pickle")


@pytest.mark.parametrize("spec", ["f8,f8", "(2,)f4"], ids=["structured", "subarray"])
def test_structured_and_subarray_dtypes_are_refused(spec):
    payload = _call("numpy", "dtype", pickle_text(spec) + pickle.NEWFALSE + pickle.NEWTRUE)
    with pytest.raises(UnsafeFileError, match=r"structured|subarray"):
        restricted_loads(payload, "the test pickle")
    structured = np.zeros(2, dtype=[("a", "<f4")])
    with pytest.raises(UnsafeFileError, match="structured"):
        restricted_loads(pickle.dumps(structured, protocol=4), "the test pickle")


@pytest.mark.parametrize("dtype", ["<f4", ">f8", "|u1", "?", "<U5", "|S3", "|V8", "<M8[ns]", "<c16", "<i8"])
def test_arrays_of_plain_dtypes_still_load(dtype):
    array = np.arange(3).astype(dtype)
    payload = pickle.dumps(array, protocol=4)
    loaded, expected = restricted_loads(payload, "array"), pickle.loads(payload)  # the test's own pickle
    assert loaded.dtype.str == expected.dtype.str
    np.testing.assert_array_equal(loaded, array)
    assert restricted_loads(pickle.dumps(np.dtype(dtype), protocol=4), "dtype").str == np.dtype(dtype).str
