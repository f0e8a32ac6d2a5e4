from pathlib import Path

import pytest

from tests.conftest import tiny_model


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory) -> Path:
    """A genuine model zip, the starting point of the crafted ones."""
    model = tiny_model()
    model.learn(20)
    path = tmp_path_factory.mktemp("model") / "model.zip"
    model.save(path)
    return path
