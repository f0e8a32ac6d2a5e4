"""What a Hub push writes besides the model: the model card (huggingface_hub's ModelCard) and replay.mp4 (imageio)."""

from __future__ import annotations

import numpy as np
import pytest
from huggingface_hub import ModelCard

from sb3_sacae.zoo import hub


def test_model_card_is_a_hub_model_card_with_the_evaluation_and_loading_code(tmp_path):
    card = hub.model_card("tester/sacae-X", "PendulumPixels-v1", -150.5, 12.25, {"batch_size": 128}, {"image_size": 64})
    card.save(tmp_path / "README.md")
    loaded = ModelCard.load(tmp_path / "README.md")  # what the Hub parses
    assert loaded.data.library_name == "stable-baselines3"
    assert {"sb3-sacae", "sac-ae", "PendulumPixels-v1"} <= set(loaded.data.tags)
    (result,) = loaded.data.eval_results
    assert result.metric_type == "mean_reward" and result.metric_value == "-150.50 +/- 12.25"
    assert result.dataset_name == "PendulumPixels-v1"
    assert 'load_from_hub("tester/sacae-X")' in loaded.text
    assert "gym.make(\"PendulumPixels-v1\", **{'image_size': 64})" in loaded.text
    assert "batch_size: 128" in loaded.text


class Frames:
    """A VecEnv-shaped stand-in whose observations are 2 stacked RGB frames of an odd size (33x35)."""

    def __init__(self) -> None:
        self.t = 0

    def _obs(self) -> np.ndarray:
        return np.full((1, 6, 33, 35), (self.t * 10) % 256, dtype=np.uint8)

    def reset(self) -> np.ndarray:
        self.t = 0
        return self._obs()

    def step(self, action):
        self.t += 1
        return self._obs(), np.zeros(1), np.zeros(1, dtype=bool), [{}]


class Still:
    def predict(self, obs, deterministic=True):
        return np.zeros((1, 1)), None


@pytest.mark.skipif(not hub.video_writer_available(), reason="pip install imageio-ffmpeg")
def test_replay_video_is_written_by_imageio_and_plays_back(tmp_path):
    import imageio.v2 as imageio

    path = tmp_path / "replay.mp4"
    assert hub.record_replay(Still(), Frames(), path, n_steps=11, deterministic=True, fps=10)
    frames = list(imageio.get_reader(path, format="FFMPEG").iter_data())
    assert len(frames) == 12 and frames[0].shape == (34, 36, 3)  # odd sides padded to even ones for H.264


def test_replay_video_is_skipped_without_a_video_writer(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(hub, "video_writer_available", lambda: False)
    assert not hub.record_replay(Still(), Frames(), tmp_path / "replay.mp4", n_steps=3, deterministic=True)
    assert not (tmp_path / "replay.mp4").exists() and "skipping replay.mp4" in capsys.readouterr().out
