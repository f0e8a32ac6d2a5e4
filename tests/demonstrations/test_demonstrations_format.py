"""The demonstrations file: exact round trips, both next-observation layouts, and no pickle ever."""

import json
import pickle

import numpy as np
import pytest

from sb3_sacae.demonstrations import load_demonstrations, save_demonstrations
from sb3_sacae.serialization import UnsafeFileError

KEYS = ("observations", "actions", "rewards", "next_observations", "terminated", "truncated", "episode_starts")


def transitions(episode_lengths=(5, 3, 4), shape=(2, 6, 6), seed=0) -> dict[str, np.ndarray]:
    """Episodes as an env produces them: each next observation is the following observation of the same episode."""
    rng = np.random.default_rng(seed)
    data: dict[str, list] = {key: [] for key in KEYS}
    for index, length in enumerate(episode_lengths):
        frames = rng.integers(0, 256, (length + 1, *shape), dtype=np.uint8)
        data["observations"].append(frames[:-1])
        data["next_observations"].append(frames[1:])
        data["actions"].append(rng.uniform(-1, 1, (length, 2)).astype(np.float32))
        data["rewards"].append(rng.normal(size=length).astype(np.float32))
        ended = np.arange(length) == length - 1
        data["terminated"].append(ended & (index % 2 == 0))
        data["truncated"].append(ended & (index % 2 == 1))
        data["episode_starts"].append(np.arange(length) == 0)
    return {key: np.concatenate(value) for key, value in data.items()}


def assert_same(loaded: dict, data: dict) -> None:
    for key in KEYS:
        assert loaded[key].dtype == data[key].dtype, key
        np.testing.assert_array_equal(loaded[key], data[key], err_msg=key)


def test_round_trip_is_exact_and_stores_each_observation_once(tmp_path):
    data = transitions()
    path = save_demonstrations(tmp_path / "demos", **data, metadata={"env_id": "Tiny-v0", "action_repeat": 2})
    assert path.name == "demos.npz"
    loaded = load_demonstrations(path)
    assert_same(loaded, data)
    meta = loaded["metadata"]
    assert (meta["env_id"], meta["action_repeat"], meta["next_observations"]) == ("Tiny-v0", 2, "shifted")
    assert (meta["n_transitions"], meta["n_episodes"], meta["observation_shape"]) == (12, 3, [2, 6, 6])
    with np.load(path, allow_pickle=False) as npz:
        assert "next_observations" not in npz.files
        assert npz["final_observations"].shape == (3, 2, 6, 6)  # one per episode


def test_next_observations_that_are_not_the_next_row_are_stored(tmp_path):
    data = transitions()
    data["next_observations"][1] = 7  # e.g. transitions collected out of order
    loaded = load_demonstrations(save_demonstrations(tmp_path / "d.npz", **data))
    assert loaded["metadata"]["next_observations"] == "stored"
    assert_same(loaded, data)


def test_a_copy_through_load_and_save_is_identical(tmp_path):
    data = transitions((4, 2))
    first = load_demonstrations(save_demonstrations(tmp_path / "a.npz", **data, metadata={"env_id": "X"}))
    second = load_demonstrations(save_demonstrations(tmp_path / "b.npz", **first))
    assert_same(second, data)
    assert second["metadata"] == first["metadata"]


def test_an_episode_cut_short_keeps_its_last_next_observation(tmp_path):
    data = transitions((4, 3))
    data["truncated"][-1] = False  # recording stopped mid-episode: no flag, the next observation is still known
    assert_same(load_demonstrations(save_demonstrations(tmp_path / "d.npz", **data)), data)


def test_empty_file_round_trips(tmp_path):
    data = {key: value[:0] for key, value in transitions().items()}
    loaded = load_demonstrations(save_demonstrations(tmp_path / "d.npz", **data))
    assert loaded["observations"].shape == (0, 2, 6, 6)


class Payload:
    """Unpickling it creates the marker file: proof that code ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_object_arrays_are_refused_without_running_them(tmp_path):
    marker = tmp_path / "pwned"
    data = transitions()
    meta = load_demonstrations(save_demonstrations(tmp_path / "genuine.npz", **data))["metadata"]
    crafted = tmp_path / "crafted.npz"
    arrays = {key: data[key] for key in KEYS if key != "next_observations"}
    np.savez(
        crafted,
        **{**arrays, "observations": np.array([Payload(marker)], dtype=object)},
        final_observations=data["observations"][:3],
        metadata=np.array(json.dumps(meta))
    )
    with pytest.raises(UnsafeFileError, match="Object arrays cannot be loaded"):
        load_demonstrations(crafted)
    assert not marker.exists()
    np.load(crafted, allow_pickle=True)["observations"]  # the payload is real
    assert marker.exists()


def test_a_pickle_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "demos.npz"
    path.write_bytes(pickle.dumps({"observations": Payload(marker)}))
    with pytest.raises(UnsafeFileError, match=r"not an \.npz archive"):
        load_demonstrations(path)
    assert not marker.exists()


def test_saving_object_arrays_is_refused(tmp_path):
    data = transitions()
    data["observations"] = data["observations"].astype(object)
    data["next_observations"] = data["next_observations"].astype(object)
    with pytest.raises(TypeError, match="'observations' is an object array"):
        save_demonstrations(tmp_path / "d.npz", **data)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: d.update(rewards=d["rewards"][:-1]), "'rewards' has 11 rows"),
        (lambda d: d["episode_starts"].__setitem__(0, False), "True on the first transition"),
        (lambda d: d["episode_starts"].__setitem__(5, False), "transition 4 is terminated or truncated"),
        (lambda d: d.update(terminated=np.full(12, 2)), "'terminated' must hold booleans"),
        (lambda d: d["rewards"].__setitem__(3, np.nan), "must be finite"),
        (lambda d: d.update(next_observations=d["next_observations"][:, :1]), "'next_observations' is"),
    ],
)
def test_inconsistent_transitions_are_refused_with_the_reason(tmp_path, change, message):
    data = transitions()
    change(data)
    with pytest.raises(ValueError, match=message):
        save_demonstrations(tmp_path / "d.npz", **data)


def rewrite(path, out, **changes):
    with np.load(path, allow_pickle=False) as npz:
        entries = {key: npz[key] for key in npz.files}
    entries.update(changes)
    np.savez(out, **{key: value for key, value in entries.items() if value is not None})
    return out


@pytest.mark.parametrize(
    "changes, message",
    [
        (dict(metadata=None), "no JSON 'metadata'"),
        (dict(actions=None), "missing \\['actions'\\]"),
        (dict(extra=np.zeros(3)), "unexpected \\['extra'\\]"),
        (dict(final_observations=np.zeros((2, 2, 6, 6), np.uint8)), "one observation per episode"),
        (dict(actions=np.zeros((12, 2), np.float64)), "'actions' is float64, expected float32"),
        (dict(observations=np.zeros((12, 2, 6, 5), np.uint8)), "metadata describes observations"),
    ],
)
def test_files_that_break_the_format_are_refused(tmp_path, changes, message):
    path = save_demonstrations(tmp_path / "d.npz", **transitions())
    with pytest.raises(ValueError, match=message):
        load_demonstrations(rewrite(path, tmp_path / "bad.npz", **changes))


def test_other_formats_and_versions_are_refused(tmp_path):
    path = save_demonstrations(tmp_path / "d.npz", **transitions())
    meta = load_demonstrations(path)["metadata"]
    newer = rewrite(path, tmp_path / "v2.npz", metadata=np.array(json.dumps({**meta, "version": 2})))
    with pytest.raises(ValueError, match=r"version 2.*upgrade sb3_sacae"):
        load_demonstrations(newer)
    other = rewrite(path, tmp_path / "other.npz", metadata=np.array(json.dumps({**meta, "format": "x"})))
    with pytest.raises(ValueError, match="not sb3_sacae demonstrations"):
        load_demonstrations(other)
