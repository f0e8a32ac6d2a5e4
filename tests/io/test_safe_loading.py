"""Crafted model zips and buffer files whose unpickling would run code are refused before anything runs."""

import base64
import io
import pickle
from pathlib import Path

import cloudpickle
import numpy as np
import pytest

from sb3_sacae import SACAE
from sb3_sacae.serialization import UnsafeFileError, is_allowed_global, restricted_loads
from tests.conftest import TinyPixelEnv, tiny_model
from tests.io.hostile import pickle_global, pickle_text, rewrite_model_zip


class _TouchMarker:
    """Unpickling this runs ``eval``, which creates the marker file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (eval, (f"open({str(self.marker)!r}, 'w').close()",))


def _serialized(obj) -> dict:
    return {":type:": str(type(obj)), ":serialized:": base64.b64encode(cloudpickle.dumps(obj)).decode()}


def _global_pickle(module: str, name: str, argument: str) -> bytes:
    """A protocol-4 pickle calling ``module.name(argument)``, built opcode by opcode."""
    return pickle_global(module, name) + pickle_text(argument) + pickle.TUPLE1 + pickle.REDUCE + pickle.STOP


@pytest.fixture
def marker(tmp_path) -> Path:
    return tmp_path / "pwned"


@pytest.mark.parametrize("entry", ["observation_space", "lr_schedule", "policy_class", "learning_rate", "a_new_key"])
def test_payload_in_model_data_is_refused(saved_model, tmp_path, marker, entry):
    crafted = rewrite_model_zip(
        saved_model, tmp_path / "crafted.zip", lambda data: data.update({entry: _serialized(_TouchMarker(marker))})
    )
    with pytest.raises(UnsafeFileError) as error:
        SACAE.load(crafted)
    assert not marker.exists()
    message = str(error.value)
    assert f"'{entry}'" in message and "builtins.eval" in message and "trust_remote_code=True" in message


def test_the_payload_is_live_under_trust_remote_code(saved_model, tmp_path, marker):
    # The refusal above is not an accident of a broken payload: SB3's own loading runs it
    crafted = rewrite_model_zip(
        saved_model, tmp_path / "crafted.zip", lambda data: data.update(extra=_serialized(_TouchMarker(marker)))
    )
    SACAE.load(crafted, trust_remote_code=True)
    assert marker.exists()


def test_payload_from_a_file_object_is_refused(saved_model, tmp_path, marker):
    crafted = rewrite_model_zip(
        saved_model, tmp_path / "crafted.zip", lambda data: data.update(extra=_serialized(_TouchMarker(marker)))
    )
    with open(crafted, "rb") as file, pytest.raises(UnsafeFileError):
        SACAE.load(file)
    assert not marker.exists()


@pytest.mark.parametrize(
    "module, name",
    [
        ("os", "system"),
        ("posix", "system"),
        ("builtins", "getattr"),
        ("sb3_sacae.serialization", "os.system"),  # dotted names walk attributes
        ("sb3_sacae.serialization", "_read_bytes"),
        ("subprocess", "getoutput"),
        ("stable_baselines3.common.save_util", "load_from_pkl"),  # a function, not an allowed class
    ],
)
def test_globals_outside_the_allow_list_are_refused(module, name, marker):
    assert not is_allowed_global(module, name)
    with pytest.raises(UnsafeFileError, match=f"'{module}.{name}'"):
        restricted_loads(_global_pickle(module, name, f"touch {marker}"), what="a test pickle")
    assert not marker.exists()


def test_lambdas_are_refused_with_a_hint(saved_model, tmp_path):
    crafted = rewrite_model_zip(
        saved_model, tmp_path / "lambda.zip", lambda data: data.update(lr_schedule=_serialized(lambda _: 1e-3))
    )
    with pytest.raises(UnsafeFileError, match="lambdas"):
        SACAE.load(crafted)


def test_keys_shadowing_methods_are_refused(saved_model, tmp_path):
    # SB3 copies the data into the model's __dict__; a key named like a method would replace it
    crafted = rewrite_model_zip(saved_model, tmp_path / "shadow.zip", lambda data: data.update(_setup_model=1))
    with pytest.raises(UnsafeFileError, match="_setup_model"):
        SACAE.load(crafted)


def test_custom_objects_replace_entries_before_decoding(saved_model, tmp_path, marker):
    crafted = rewrite_model_zip(
        saved_model, tmp_path / "crafted.zip", lambda data: data.update(extra=_serialized(_TouchMarker(marker)))
    )
    model = SACAE.load(crafted, custom_objects={"extra": None})
    assert model.extra is None and not marker.exists()


def test_pickled_replay_buffer_is_refused(tmp_path, marker):
    model = tiny_model()
    path = tmp_path / "buffer.pkl"
    path.write_bytes(pickle.dumps(_TouchMarker(marker)))
    with pytest.raises(UnsafeFileError, match="trust_remote_code=True"):
        model.load_replay_buffer(path)
    assert not marker.exists()


def test_object_array_in_buffer_file_is_refused(tmp_path, marker):
    model = tiny_model()
    path = tmp_path / "buffer.npz"
    payload = np.empty(1, dtype=object)
    payload[0] = _TouchMarker(marker)
    buffer = io.BytesIO()
    model.save_replay_buffer(buffer)
    with np.load(io.BytesIO(buffer.getvalue())) as npz:
        entries = {key: npz[key] for key in npz.files}
    entries["observations"] = payload
    np.savez(path, **entries)
    with pytest.raises(UnsafeFileError, match="allow_pickle"):
        model.load_replay_buffer(path)
    assert not marker.exists()


def test_weights_load_without_pickle(saved_model):
    # Tensors keep SB3's weights_only=True: a model loads without any cloudpickle call
    import stable_baselines3.common.save_util as save_util

    real = save_util.cloudpickle.loads
    save_util.cloudpickle.loads = lambda *_: pytest.fail("cloudpickle.loads called")
    try:
        model = SACAE.load(saved_model, env=TinyPixelEnv())
    finally:
        save_util.cloudpickle.loads = real
    assert model.num_timesteps == 20
