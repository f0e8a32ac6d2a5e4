"""No ``load()`` of any class in the package runs code from a hostile file.

Every class of the package is found by walking its modules; each one with a class-level ``load`` (the networks inherit
SB3's ``BaseModel.load``, which unpickles with ``weights_only=False``) is called on a torch file whose pickle writes a
marker file when unpickled. The call must fail with an error and the marker must not exist afterwards.
"""

import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest
import torch as th
from stable_baselines3.common.policies import BaseModel

import sb3_sacae


class _WritesMarker:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return exec, (f"open({str(self.marker)!r}, 'w').write('code ran')",)


def _classes_with_a_load() -> list[type]:
    classes = {}
    for info in pkgutil.walk_packages(sb3_sacae.__path__, "sb3_sacae."):
        module = importlib.import_module(info.name)
        for cls in vars(module).values():
            if inspect.isclass(cls) and cls.__module__ == info.name and cls.__module__.startswith("sb3_sacae."):
                if isinstance(inspect.getattr_static(cls, "load", None), classmethod):
                    classes[f"{cls.__module__}.{cls.__qualname__}"] = cls
    return [classes[name] for name in sorted(classes)]


CLASSES = _classes_with_a_load()


def test_the_walk_finds_the_network_classes():
    names = {cls.__name__ for cls in CLASSES}
    assert {"SACAEActor", "SACAECritic", "CategoricalActor", "DiscreteCritic", "SACAEPolicy", "SACAE"} <= names


@pytest.fixture
def hostile(tmp_path) -> tuple[Path, Path]:
    marker = tmp_path / "marker"
    path = tmp_path / "network.pth"
    th.save({"data": {"payload": _WritesMarker(marker)}, "state_dict": {}}, path)
    return path, marker


def test_the_hostile_file_does_run_code_when_unpickled(hostile):
    path, marker = hostile
    th.load(path, weights_only=False)
    assert marker.read_text() == "code ran"


@pytest.mark.parametrize("cls", CLASSES, ids=lambda cls: f"{cls.__module__}.{cls.__qualname__}")
def test_load_refuses_a_hostile_file_and_runs_nothing(hostile, cls):
    path, marker = hostile
    with pytest.raises(ValueError, match=r"(?i)SACAE\.load|refus"):
        cls.load(str(path))
    assert not marker.exists()


@pytest.mark.parametrize("cls", [cls for cls in CLASSES if issubclass(cls, BaseModel)], ids=lambda cls: cls.__name__)
def test_network_load_error_points_to_sacae_load(hostile, cls):
    with pytest.raises(ValueError, match=r"SACAE\.save\(\)/SACAE\.load\(\).*trust_remote_code=True"):
        cls.load(str(hostile[0]))
