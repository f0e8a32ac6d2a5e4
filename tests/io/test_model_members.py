"""
The ``.pth`` members of a model zip that SB3's ``load()`` acts on by name: the keys of ``pytorch_variables.pth``
(``recursive_setattr(model, key + ".data", value)``) and the state-dict member names (``recursive_getattr``) are
checked against the model before SB3 sets anything, on every path that loads a model.
"""

import io
import os
import threading
import time
import zipfile
from pathlib import Path

import pytest
import torch as th

from sb3_sacae import SACAE
from sb3_sacae.checkpoints import resume_from_bundle, save_bundle
from sb3_sacae.io import CorruptFileError, FileLimitError, FileMismatchError, UnsafeFileError
from sb3_sacae.policies import SACAEPolicy
from tests.conftest import TinyPixelEnv, tiny_model


def _torch_bytes(value: object) -> bytes:
    buffer = io.BytesIO()
    th.save(value, buffer)
    return buffer.getvalue()


def _with_members(source: Path, target: Path, members: dict[str, bytes], drop: tuple[str, ...] = ()) -> Path:
    """Copy a model zip, replacing (or adding) ``members`` and leaving out ``drop``."""
    with zipfile.ZipFile(source) as archive_in, zipfile.ZipFile(target, "w") as archive_out:
        for name in archive_in.namelist():
            if name not in members and name not in drop:
                archive_out.writestr(name, archive_in.read(name))
        for name, content in members.items():
            archive_out.writestr(name, content)
    return target


def _variables(**extra: th.Tensor) -> bytes:
    return _torch_bytes({"log_ent_coef": th.tensor([-2.3]), **extra})


@pytest.fixture
def tensor_class_guard():
    """Should a hostile file get through, undo its change to torch.Tensor so that the other tests still run."""
    yield
    if "data" in th.Tensor.__dict__:
        del th.Tensor.data
        pytest.fail("the file set torch.Tensor.data for the whole process")


def test_variable_key_with_a_special_attribute_is_refused_and_torch_is_unchanged(saved_model, tmp_path, tensor_class_guard):
    # SB3 would run recursive_setattr(model, "log_ent_coef.__class__.data", ...): torch.Tensor.data for the process
    members = {"pytorch_variables.pth": _variables(**{"log_ent_coef.__class__": th.tensor([1234.0])})}
    hostile = _with_members(saved_model, tmp_path / "hostile.zip", members)
    with pytest.raises(UnsafeFileError, match=r"'log_ent_coef\.__class__' is not a plain variable name"):
        SACAE.load(hostile)
    assert "data" not in th.Tensor.__dict__
    assert th.zeros(3).data.tolist() == [0.0, 0.0, 0.0]


def test_variable_key_naming_another_attribute_is_refused(saved_model, tmp_path):
    # a plain name, but not a variable: model.policy_class.data = tensor would change the policy class
    hostile = _with_members(
        saved_model, tmp_path / "hostile.zip", {"pytorch_variables.pth": _variables(policy_class=th.ones(1))}
    )
    with pytest.raises(FileMismatchError, match="'policy_class', which this model does not have"):
        SACAE.load(hostile)
    assert "data" not in vars(SACAEPolicy)


def test_variable_of_another_shape_is_refused(saved_model, tmp_path):
    hostile = _with_members(
        saved_model, tmp_path / "hostile.zip", {"pytorch_variables.pth": _torch_bytes({"log_ent_coef": th.zeros(5)})}
    )
    with pytest.raises(FileMismatchError, match=r"shape \(5,\)"):
        SACAE.load(hostile)


def test_state_dict_member_with_a_special_attribute_is_refused(saved_model, tmp_path):
    with zipfile.ZipFile(saved_model) as archive:
        policy = archive.read("policy.pth")
    hostile = _with_members(saved_model, tmp_path / "hostile.zip", {"policy.__class__.pth": policy})
    with pytest.raises(UnsafeFileError, match=r"'policy\.__class__\.pth' does not name a plain attribute path"):
        SACAE.load(hostile)


def test_resuming_a_bundle_checks_the_variables_too(tmp_path, tensor_class_guard):
    model = tiny_model()
    model.learn(10)
    bundle = save_bundle(model, tmp_path / "checkpoint_10_steps")
    genuine = bundle / "model.zip"
    hostile = _with_members(
        genuine, tmp_path / "hostile.zip", {"pytorch_variables.pth": _variables(**{"log_ent_coef.__class__": th.ones(1)})}
    )
    hostile.replace(genuine)
    with pytest.raises(UnsafeFileError, match="not a plain variable name"):
        resume_from_bundle(bundle, TinyPixelEnv(), algorithm_class=SACAE)
    assert "data" not in th.Tensor.__dict__


def test_genuine_variables_load(saved_model):
    model = SACAE.load(saved_model)
    with zipfile.ZipFile(saved_model) as archive:
        saved = th.load(io.BytesIO(archive.read("pytorch_variables.pth")), weights_only=True)
    assert th.equal(model.log_ent_coef.detach(), saved["log_ent_coef"])


# --- set_parameters(path) reads the file as load() does -------------------------------------------------------------


def test_set_parameters_from_a_path_is_bounded_like_load(saved_model, monkeypatch):
    model = tiny_model()
    monkeypatch.setenv("SB3_SACAE_MAX_MODEL_BYTES", "1000")
    with pytest.raises(FileLimitError, match="SB3_SACAE_MAX_MODEL_BYTES"):
        model.set_parameters(saved_model)


def test_set_parameters_refuses_a_fifo_without_blocking(tmp_path):
    fifo = tmp_path / "model.zip"
    os.mkfifo(fifo)

    def unblock() -> None:
        # Should the reader block on the FIFO, open and close its write end: the test then fails instead of hanging
        for _ in range(100):
            try:
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
                return
            except OSError:
                time.sleep(0.05)

    threading.Thread(target=unblock, daemon=True).start()
    with pytest.raises(UnsafeFileError, match="not a regular file"):
        tiny_model().set_parameters(fifo)


def test_set_parameters_names_a_damaged_file_or_one_of_another_model(saved_model, tmp_path):
    model = tiny_model()
    damaged = tmp_path / "damaged.zip"
    damaged.write_bytes(b"not a zip")
    with pytest.raises(CorruptFileError, match="not a zip file"):
        model.set_parameters(damaged)
    other = tiny_model(policy_kwargs={"net_arch": [7]})
    with pytest.raises(FileMismatchError, match="Cannot load the parameters of"):
        other.set_parameters(saved_model)


def test_set_parameters_from_a_path_a_stream_and_a_dict(saved_model):
    saved = SACAE.load(saved_model)
    expected = saved.policy.state_dict()
    for source in (saved_model, io.BytesIO(saved_model.read_bytes()), saved.get_parameters()):
        model = tiny_model(seed=1)
        model.set_parameters(source)
        for name, tensor in model.policy.state_dict().items():
            assert th.equal(tensor, expected[name]), name
