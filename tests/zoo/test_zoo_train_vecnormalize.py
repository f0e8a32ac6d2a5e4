"""``rl_zoo3.train --algo sacae``: the ``vecnormalize.pkl`` beside ``-i model.zip`` is a pickle, loaded only when
normalization is configured and the file passes the gate of enjoy (``SB3_SACAE_TRUST_VECNORMALIZE=1``).

rl_zoo3 2.9.2 (``ExperimentManager._maybe_normalize``) unpickles ``<model folder>/<env>/vecnormalize.pkl`` whenever
it exists, whatever ``normalize`` says; without ``-i``, a file of that name in the working directory. Each hostile
file below would create a marker when unpickled. Through the installed wheel's ``python -m rl_zoo3.train``:
test_zoo_wheel.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.zoo.hostile_zoo import ENV_ID, bomb_pickle, refusal, run_module

TINY = ["--env-kwargs", "image_size:32", "frame_stack:2", "--hyperparams", "learning_starts:8", "batch_size:8",
        "buffer_size:100", "policy_kwargs:dict(features_dim=8, net_arch=[16], n_filters=4, n_conv_layers=2)"]  # fmt: skip


def train(work: Path, *args: str, hyperparams: tuple[str, ...] = (), **env: str):
    return run_module("sb3_sacae.zoo", "train", "--algo", "sacae", "--env", ENV_ID, "-n", "12", "-f", "logs",
                      *args, *TINY, *hyperparams, cwd=work, **env)  # fmt: skip


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory) -> Path:
    """A model zip written by a 16-step zoo run."""
    work = tmp_path_factory.mktemp("pretrained")
    result = train(work)
    assert result.returncode == 0, result.stderr[-3000:]
    return work / "logs" / "sacae" / f"{ENV_ID}_1" / f"{ENV_ID}.zip"


def hostile_stats_beside(model: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A copy of ``model`` in ``tmp_path/pre`` with a hostile ``<env>/vecnormalize.pkl`` beside it."""
    marker = tmp_path / "pwned"
    (tmp_path / "pre" / ENV_ID).mkdir(parents=True)
    (tmp_path / "pre" / "model.zip").write_bytes(model.read_bytes())
    (tmp_path / "pre" / ENV_ID / "vecnormalize.pkl").write_bytes(bomb_pickle(marker))
    return tmp_path / "pre" / "model.zip", marker


def test_continuing_without_normalize_never_unpickles_the_stats_beside_the_model(pretrained, tmp_path):
    model, marker = hostile_stats_beside(pretrained, tmp_path)
    result = train(tmp_path, "-i", str(model))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Ignoring" in result.stderr and "vecnormalize.pkl" in result.stderr
    assert "Loading saved VecNormalize stats" not in result.stdout
    assert not marker.exists()


def test_continuing_with_normalize_refuses_the_stats_unless_trusted(pretrained, tmp_path):
    model, marker = hostile_stats_beside(pretrained, tmp_path)
    line = refusal(train(tmp_path, "-i", str(model), hyperparams=("normalize:True",)))
    assert "vecnormalize.pkl" in line and "SB3_SACAE_TRUST_VECNORMALIZE=1" in line
    assert not marker.exists()
    # the opt-in loads it: the file above is a live payload
    train(tmp_path, "-i", str(model), hyperparams=("normalize:True",), SB3_SACAE_TRUST_VECNORMALIZE="1")
    assert marker.exists()


def test_a_new_run_ignores_stats_in_the_working_directory(tmp_path):
    marker = tmp_path / "pwned"
    (tmp_path / ENV_ID).mkdir()
    (tmp_path / ENV_ID / "vecnormalize.pkl").write_bytes(bomb_pickle(marker))
    result = train(tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert not marker.exists()
