"""The scripts in ``examples/`` run end to end as a user starts them, with tiny networks and step counts
(``tests/docs/conftest.py``) and the sizes their commands accept: each writes what its docstring promises."""

import runpy
import sys
from pathlib import Path

import numpy as np
import pytest

from sb3_sacae import SACAE
from sb3_sacae.demonstrations import load_demonstrations
from tests.docs.conftest import MAX_STEPS

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run_script(name: str, *arguments: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """``python examples/<name> <arguments>``, in this process (so the tiny models apply)."""
    monkeypatch.setattr(sys, "argv", [str(EXAMPLES / name), *arguments])
    runpy.run_path(str(EXAMPLES / name), run_name="__main__")


def test_train_pendulum_pixels_saves_the_model_and_the_learning_curve(tiny_examples, monkeypatch, capsys):
    run_script("train_pendulum_pixels.py", "--steps", "40", "--eval-freq", "40", "--output", "demo", monkeypatch=monkeypatch)

    output = tiny_examples / "demo"
    model = SACAE.load(output / "sacae_pendulum_pixels.zip")
    assert model.num_timesteps == MAX_STEPS
    assert list(np.load(output / "evaluations.npz")["timesteps"]) == [40]
    assert (output / "learning_curve.png").read_bytes().startswith(b"\x89PNG")
    assert (output / "monitor.csv").exists()
    assert "last evaluation:" in capsys.readouterr().out


def test_demonstrations_records_prefills_pretrains_and_learns(tiny_examples, monkeypatch, capsys):
    arguments = ["--episodes", "1", "--pretrain-steps", "2", "--timesteps", "20", "--out", "demos"]
    run_script("demonstrations.py", *arguments, monkeypatch=monkeypatch)

    demonstrations = load_demonstrations(tiny_examples / "demos" / "pendulum_expert.npz")
    assert len(demonstrations["rewards"]) == 100  # one episode of 200 frames at action repeat 2
    model = SACAE.load(tiny_examples / "demos" / "sacae_from_demonstrations.zip")
    assert model.num_timesteps == 20
    out = capsys.readouterr().out
    assert "100 transitions added" in out and "after 2 gradient steps" in out


def test_diagnostics_writes_reconstructions_and_the_curve_over_seeds(tiny_examples, monkeypatch, capsys):
    arguments = ["--steps", "40", "--seeds", "2", "--eval-freq", "40", "--image-every", "4", "--output", "diag"]
    run_script("diagnostics.py", *arguments, monkeypatch=monkeypatch)

    output = tiny_examples / "diag"
    for seed in (0, 1):
        assert list(np.load(output / f"seed{seed}" / "evaluations.npz")["timesteps"]) == [40]
        assert (output / f"reconstructions_seed{seed}.png").read_bytes().startswith(b"\x89PNG")
    assert (output / "learning_curve.png").read_bytes().startswith(b"\x89PNG")
    assert "figure:" in capsys.readouterr().out


def test_pixel_envs_prints_each_environment_it_is_given(tiny_examples, monkeypatch, capsys):
    run_script("pixel_envs.py", "PendulumPixels-v1", "CarRacingPixels-v3", monkeypatch=monkeypatch)

    out = capsys.readouterr().out
    assert out.count("observation space: Box(0, 255, (9, 32, 32), uint8)  (frame_stack=3)") == 2
    assert "CarRacingPixels-v3" in out and "(action_repeat=" in out
