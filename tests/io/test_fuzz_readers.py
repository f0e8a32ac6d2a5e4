"""
Every reader of untrusted bytes, fed random truncations, bit flips, splices and member swaps of valid files, ends in a
load or in :class:`~sb3_sacae.io.UnsafeFileError`: never another exception, a hang (hypothesis' deadline), an
allocation beyond the limits (lowered here), or a marker file written by a payload spliced in.

``SB3_SACAE_FUZZ_EXAMPLES`` sets the examples per test (default 6, a few seconds; 200 for a long run).
"""

import base64
import io
import json
import os
import shutil
import zipfile
from collections import OrderedDict
from pathlib import Path

import cloudpickle
import pytest
import yaml

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from sb3_sacae import SACAE  # noqa: E402
from sb3_sacae.callbacks import CheckpointBundleCallback, resume_from_bundle  # noqa: E402
from sb3_sacae.demonstrations import load_demonstrations, save_demonstrations  # noqa: E402
from sb3_sacae.io import UnsafeFileError, restricted_loads, safe_load_config_text  # noqa: E402
from tests.conftest import TEST_DEVICE, TinyPixelEnv, tiny_model  # noqa: E402
from tests.demonstrations.test_demonstrations_format import transitions  # noqa: E402

EXAMPLES = int(os.environ.get("SB3_SACAE_FUZZ_EXAMPLES", "6"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=30_000,  # ms per example: a reader that hangs fails here
    derandomize=EXAMPLES <= 6,  # the default run is reproducible; a long run explores
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
MARKER = Path(os.environ.get("TMPDIR", "/tmp")) / f"sb3_sacae_fuzz_marker_{os.getpid()}"


class _TouchMarker:
    def __reduce__(self):
        return (eval, (f"open({str(MARKER)!r}, 'w').close()",))


HOSTILE_PICKLE = cloudpickle.dumps(_TouchMarker())


@pytest.fixture(autouse=True)
def small_limits(monkeypatch):
    """Limits small enough that an accepted mutation cannot allocate much."""
    monkeypatch.setenv("SB3_SACAE_MAX_MODEL_BYTES", str(64 << 20))
    monkeypatch.setenv("SB3_SACAE_MAX_PICKLE_ELEMENTS", "1000000")
    monkeypatch.setenv("SB3_SACAE_MAX_METADATA_BYTES", str(4 << 20))
    monkeypatch.setenv("SB3_SACAE_MAX_ARRAY_BYTES", str(256 << 20))
    monkeypatch.setenv("SB3_SACAE_MAX_PARAMETERS", "50000000")
    MARKER.unlink(missing_ok=True)
    yield
    assert not MARKER.exists(), "a fuzzed file ran code"


def mutated(data: st.DataObject, original: bytes, splices: list[bytes] | None = None) -> bytes:
    """One random mutation: a truncation, up to 8 bit flips, or a slice replaced by random or given bytes."""
    kind = data.draw(st.sampled_from(["truncate", "flip", "splice"]))
    if kind == "truncate":
        return original[: data.draw(st.integers(0, max(len(original) - 1, 0)))]
    if kind == "flip":
        result = bytearray(original)
        for _ in range(data.draw(st.integers(1, 8))):
            position = data.draw(st.integers(0, len(result) - 1))
            result[position] ^= 1 << data.draw(st.integers(0, 7))
        return bytes(result)
    start = data.draw(st.integers(0, len(original)))
    end = data.draw(st.integers(start, min(len(original), start + 64)))
    pool = st.binary(max_size=64) if not splices else st.one_of(st.binary(max_size=64), st.sampled_from(splices))
    return original[:start] + data.draw(pool) + original[end:]


def _members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def _zip(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return out.getvalue()


def _ends_in_load_or_refusal(load, payload) -> None:
    try:
        load(payload)
    except UnsafeFileError:
        pass


def _load_model(payload: bytes) -> None:
    SACAE.load(io.BytesIO(payload), device=TEST_DEVICE)


@FUZZ
@given(data=st.data())
def test_model_zip_bytes(saved_model, data):
    _ends_in_load_or_refusal(_load_model, mutated(data, saved_model.read_bytes()))


@FUZZ
@given(data=st.data())
def test_model_data_entry(saved_model, data):
    members = _members(saved_model)
    members["data"] = mutated(data, members["data"])
    _ends_in_load_or_refusal(_load_model, _zip(members))


@FUZZ
@given(data=st.data())
def test_model_pickled_entries(saved_model, data):
    members = _members(saved_model)
    entries = json.loads(members["data"])
    serialized = sorted(key for key, value in entries.items() if isinstance(value, dict) and ":serialized:" in value)
    key = data.draw(st.sampled_from(serialized))
    payload = base64.b64decode(entries[key][":serialized:"])
    entries[key][":serialized:"] = base64.b64encode(mutated(data, payload, [HOSTILE_PICKLE])).decode()
    members["data"] = json.dumps(entries).encode()
    _ends_in_load_or_refusal(_load_model, _zip(members))
    _ends_in_load_or_refusal(lambda raw: restricted_loads(raw, "the fuzzed pickle"), mutated(data, payload))


@FUZZ
@given(data=st.data())
def test_model_member_swaps(saved_model, data):
    members = _members(saved_model)
    names = sorted(members)
    first, second = data.draw(st.sampled_from(names)), data.draw(st.sampled_from([*names, "hostile"]))
    other = HOSTILE_PICKLE if second == "hostile" else members[second]
    members[first], members[second if second != "hostile" else first] = other, members[first]
    _ends_in_load_or_refusal(_load_model, _zip(members))


@pytest.fixture(scope="module")
def buffer_file(tmp_path_factory) -> tuple[Path, SACAE]:
    model = tiny_model()
    model.learn(20)
    path = tmp_path_factory.mktemp("fuzz_buffer") / "buffer.npz"
    model.save_replay_buffer(path)
    return path, model


@FUZZ
@given(data=st.data())
def test_replay_buffer_file(buffer_file, data):
    path, model = buffer_file
    members = _members(path)
    if data.draw(st.booleans()):
        raw = mutated(data, path.read_bytes())
    else:  # a valid archive whose metadata or one array is mutated
        name = data.draw(st.sampled_from(sorted(members)))
        members[name] = mutated(data, members[name])
        raw = _zip(members)
    _ends_in_load_or_refusal(lambda payload: model.load_replay_buffer(io.BytesIO(payload)), raw)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("fuzz_bundles")
    tiny_model().learn(10, callback=CheckpointBundleCallback(10, directory))
    return directory / "checkpoint_10_steps"


@FUZZ
@given(data=st.data())
def test_bundle_files(bundle, tmp_path_factory, data):
    copy = tmp_path_factory.mktemp("fuzzed") / bundle.name
    shutil.copytree(bundle, copy)
    name = data.draw(st.sampled_from(["state.json", "model.zip", "replay_buffer.npz"]))
    (copy / name).write_bytes(mutated(data, (copy / name).read_bytes()))
    _ends_in_load_or_refusal(lambda path: resume_from_bundle(path, TinyPixelEnv(), device=TEST_DEVICE), copy)


@pytest.fixture(scope="module")
def demonstrations_file(tmp_path_factory) -> Path:
    return save_demonstrations(tmp_path_factory.mktemp("fuzz_demos") / "demos.npz", **transitions())


@FUZZ
@given(data=st.data())
def test_demonstrations_file(demonstrations_file, tmp_path_factory, data):
    members = _members(demonstrations_file)
    if data.draw(st.booleans()):
        raw = mutated(data, demonstrations_file.read_bytes())
    else:
        name = data.draw(st.sampled_from(sorted(members)))
        members[name] = mutated(data, members[name])
        raw = _zip(members)
    path = tmp_path_factory.mktemp("fuzzed_demos") / "demos.npz"
    path.write_bytes(raw)
    _ends_in_load_or_refusal(load_demonstrations, path)


ZOO_CONFIG = yaml.dump(
    OrderedDict(
        [
            ("policy", "CnnPolicy"),
            ("learning_rate", 1e-3),
            ("train_freq", (1, "step")),
            ("policy_kwargs", "dict(net_arch=[64, 64])"),
            ("env_wrapper", [{"gymnasium.wrappers.TimeLimit": {"max_episode_steps": 100}}]),
        ]
    )
).encode()


@FUZZ
@given(data=st.data())
def test_zoo_config(data):
    hostile = b"!!python/object/apply:os.system ['touch " + str(MARKER).encode() + b"']"
    _ends_in_load_or_refusal(
        lambda text: safe_load_config_text(text, "the fuzzed config"), mutated(data, ZOO_CONFIG, [hostile])
    )
