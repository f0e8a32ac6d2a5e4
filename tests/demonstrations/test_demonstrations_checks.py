"""Demonstration files: malformed metadata and members are refused; float observations must be finite and in bounds."""

import json
import zipfile

import numpy as np
import pytest
from stable_baselines3 import SAC

from sb3_sacae.demonstrations import add_demonstrations, load_demonstrations, save_demonstrations
from tests.conftest import TEST_DEVICE
from tests.demonstrations.test_demonstrations_format import rewrite, transitions


def pendulum_transitions(n=6, seed=0) -> dict[str, np.ndarray]:
    """One episode of Pendulum-like observations: cos, sin in [-1, 1], velocity in [-8, 8]."""
    rng = np.random.default_rng(seed)
    angles = rng.uniform(-np.pi, np.pi, n + 1)
    frames = np.stack([np.cos(angles), np.sin(angles), rng.uniform(-8, 8, n + 1)], axis=1).astype(np.float32)
    ended = np.arange(n) == n - 1
    return dict(
        observations=frames[:-1].copy(),
        next_observations=frames[1:].copy(),
        actions=rng.uniform(-2, 2, (n, 1)).astype(np.float32),
        rewards=rng.normal(size=n).astype(np.float32),
        terminated=np.zeros(n, bool),
        truncated=ended,
        episode_starts=np.arange(n) == 0,
    )


@pytest.fixture(scope="module")
def model():
    return SAC("MlpPolicy", "Pendulum-v1", buffer_size=100, learning_starts=0, device=TEST_DEVICE)


def test_valid_float_observations_are_added(model):
    assert add_demonstrations(model, pendulum_transitions()) == 6


@pytest.mark.parametrize(
    "key, row, value, message",
    [
        ("observations", 2, np.nan, "'observations' hold NaN or inf"),
        ("next_observations", 5, np.inf, "'next_observations' hold NaN or inf"),
        ("observations", 0, -np.inf, "NaN or inf"),
        ("observations", 3, 20.0, "'observations' lie outside the observation space bounds"),
        ("next_observations", 1, -9.0, "'next_observations' lie outside"),
    ],
)
def test_non_finite_or_out_of_bounds_observations_are_refused(tmp_path, model, key, row, value, message):
    data = pendulum_transitions()
    data[key][row, 2] = value
    before = model.replay_buffer.pos
    with pytest.raises(ValueError, match=message):
        add_demonstrations(model, data)
    path = save_demonstrations(tmp_path / "d.npz", **data)  # the file format itself does not know the bounds
    with pytest.raises(ValueError, match=message):
        add_demonstrations(model, path)
    assert model.replay_buffer.pos == before


@pytest.mark.parametrize("missing", ["observation_shape", "observation_dtype", "action_shape", "n_transitions"])
def test_missing_metadata_keys_are_a_value_error(tmp_path, missing):
    path = save_demonstrations(tmp_path / "d.npz", **transitions())
    meta = load_demonstrations(path)["metadata"]
    del meta[missing]
    with pytest.raises(ValueError, match=f"metadata lacks \\['{missing}'\\]"):
        load_demonstrations(rewrite(path, tmp_path / "bad.npz", metadata=np.array(json.dumps(meta))))


def test_malformed_metadata_shapes_are_a_value_error(tmp_path):
    path = save_demonstrations(tmp_path / "d.npz", **transitions())
    meta = {**load_demonstrations(path)["metadata"], "observation_shape": 7}
    with pytest.raises(ValueError, match="must be lists"):
        load_demonstrations(rewrite(path, tmp_path / "bad.npz", metadata=np.array(json.dumps(meta))))


def test_a_member_that_is_not_an_array_is_refused(tmp_path):
    path = save_demonstrations(tmp_path / "d.npz", **transitions())
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr("readme.txt", b"hello")
    with pytest.raises(ValueError, match=r"member 'readme\.txt' is not a numpy array"):
        load_demonstrations(path)
