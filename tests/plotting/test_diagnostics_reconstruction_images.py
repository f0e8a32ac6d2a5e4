"""ReconstructionImageCallback: inputs and reconstructions reach image-capable logger outputs every N updates."""

import io
from typing import Any

import numpy as np
import pytest
import torch as th
from stable_baselines3.common.logger import CSVOutputFormat, HumanOutputFormat, Image, KVWriter, Logger

from sb3_sacae.buffers import FrameStackReplayBuffer
from sb3_sacae.diagnostics import ReconstructionImageCallback, last_frame_rgb
from tests.conftest import TEST_DEVICE, TinyPixelEnv, frame_stacked_env, tiny_model

SIDE = 32


class ImageCapture(KVWriter):
    """A logger output that keeps every Image it is given, with its step."""

    def __init__(self) -> None:
        self.images: list[tuple[str, Image, int]] = []

    def write(self, key_values: dict[str, Any], key_excluded: dict[str, tuple[str, ...]], step: int = 0) -> None:
        self.images += [(key, value, step) for key, value in key_values.items() if isinstance(value, Image)]


def capturing(model, *extra_outputs: KVWriter) -> ImageCapture:
    capture = ImageCapture()
    model.set_logger(Logger(folder=None, output_formats=[capture, *extra_outputs]))
    return capture


def test_an_image_every_n_updates_at_the_step_it_was_made():
    model = tiny_model()  # learning_starts=16: one update per step from there
    capture = capturing(model)
    callback = ReconstructionImageCallback(every_n_updates=10, n_images=4)
    model.learn(48, callback=callback)
    assert model._n_updates == 32
    assert [key for key, _, _ in capture.images] == ["train/reconstructions"] * 3
    steps = [step for _, _, step in capture.images]
    assert steps == sorted(steps) and len(set(steps)) == 3
    assert callback.n_logged == 3


def test_the_image_is_uint8_hwc_inputs_above_reconstructions():
    model = tiny_model()
    capture = capturing(model)
    callback = ReconstructionImageCallback(every_n_updates=10, n_images=4, tb_key="diag/ae")
    model.learn(28, callback=callback)
    (key, image, _), *_ = capture.images
    assert key == "diag/ae" and image.dataformats == "HWC"
    grid = image.image
    assert grid.dtype == np.uint8 and grid.shape == (2 * SIDE + 2, 4 * SIDE + 3 * 2, 3)
    np.testing.assert_array_equal(grid[:SIDE, :SIDE], last_frame_rgb(callback.observations, 3)[0])
    assert grid[SIDE + 2 :].std() > 0  # the reconstruction is an image, not a constant


def test_text_outputs_are_left_alone():
    model = tiny_model()
    stdout = io.StringIO()
    capture = capturing(model, HumanOutputFormat(stdout))
    model.learn(28, callback=ReconstructionImageCallback(every_n_updates=5))  # stdout would raise on an Image
    assert capture.images and "reconstructions" not in stdout.getvalue()


def test_csv_output_gets_no_empty_rows(tmp_path):
    model = tiny_model()
    csv_output = CSVOutputFormat(str(tmp_path / "progress.csv"))
    capturing(model, csv_output)
    model.learn(28, callback=ReconstructionImageCallback(every_n_updates=5))
    csv_output.close()
    assert (tmp_path / "progress.csv").read_text() == ""  # no dump happened, and the images wrote nothing


def test_rgb_frame_stack_shows_the_last_frame():
    model = tiny_model(frame_stacked_env((3, SIDE, SIDE), 3))
    assert isinstance(model.replay_buffer, FrameStackReplayBuffer)
    capture = capturing(model)
    callback = ReconstructionImageCallback(every_n_updates=8, n_images=2)
    model.learn(28, callback=callback)
    assert callback.channels_per_frame == 3
    assert callback.observations.shape == (2, 9, SIDE, SIDE)
    grid = capture.images[0][1].image
    np.testing.assert_array_equal(grid[:SIDE, :SIDE], np.moveaxis(callback.observations[0, 6:9], 0, -1))


def test_grayscale_frame_stack_is_shown_in_gray():
    model = tiny_model(frame_stacked_env((1, SIDE, SIDE), 4))
    capture = capturing(model)
    callback = ReconstructionImageCallback(every_n_updates=8, n_images=2)
    model.learn(28, callback=callback)
    assert callback.channels_per_frame == 1
    grid = capture.images[0][1].image
    assert grid.shape == (2 * SIDE + 2, 2 * SIDE + 2, 3)
    np.testing.assert_array_equal(grid[:SIDE, :SIDE, 0], callback.observations[0, 3])
    assert np.array_equal(grid[..., 0], grid[..., 1]) and np.array_equal(grid[..., 1], grid[..., 2])


def test_a_fixed_batch_of_channel_last_frames_is_transposed_and_kept():
    env = TinyPixelEnv((SIDE, SIDE, 3), channel_last=True)
    frames = np.stack([env.reset(seed=seed)[0] for seed in range(3)])  # (3, H, W, C) as the env returns them
    model = tiny_model(TinyPixelEnv((SIDE, SIDE, 3), channel_last=True))
    capture = capturing(model)
    model.learn(36, callback=ReconstructionImageCallback(every_n_updates=8, observations=frames))
    assert len(capture.images) == 2
    for _, image, _ in capture.images:
        np.testing.assert_array_equal(image.image[:SIDE, :SIDE], frames[0])
    # the reconstructions change as the autoencoder trains
    assert not np.array_equal(capture.images[0][1].image, capture.images[1][1].image)


def test_a_batch_of_the_wrong_shape_is_refused():
    model = tiny_model()
    callback = ReconstructionImageCallback(every_n_updates=8, observations=np.zeros((2, 3, 16, 16), np.uint8))
    with pytest.raises(ValueError, match="observation space"):
        model.learn(20, callback=callback)


def test_autoencoder_off_warns_once_and_logs_nothing():
    model = tiny_model(decoder_update_interval=0)
    capture = capturing(model)
    callback = ReconstructionImageCallback(every_n_updates=4)
    with pytest.warns(UserWarning, match="decoder_update_interval") as warned:
        model.learn(32, callback=callback)
    assert len([w for w in warned if "ReconstructionImageCallback" in str(w.message)]) == 1
    assert capture.images == [] and callback.n_logged == 0


def test_training_is_the_same_with_and_without_the_callback():
    # SB3 seeds the global generators at construction: build and train one model after the other
    plain = tiny_model()
    plain.learn(40)
    watched = tiny_model()
    capture = capturing(watched)
    watched.learn(40, callback=ReconstructionImageCallback(every_n_updates=5, resample=True))
    assert len(capture.images) == 4
    for (name, a), b in zip(plain.policy.state_dict().items(), watched.policy.state_dict().values(), strict=True):
        assert th.equal(a, b), name


@pytest.mark.parametrize("kwargs", [dict(every_n_updates=0), dict(n_images=0)])
def test_invalid_settings_are_refused(kwargs):
    with pytest.raises(ValueError, match=r"every_n_updates|n_images"):
        ReconstructionImageCallback(**kwargs)


def test_tensorboard_event_file_holds_the_image(tmp_path):
    pytest.importorskip("tensorboard")
    from stable_baselines3.common.logger import configure
    from tensorboard.backend.event_processing.event_accumulator import IMAGES, EventAccumulator

    model = tiny_model()
    model.set_logger(configure(str(tmp_path), ["tensorboard"]))
    model.learn(28, callback=ReconstructionImageCallback(every_n_updates=10))
    model.logger.close()
    events = EventAccumulator(str(tmp_path), size_guidance={IMAGES: 0})
    events.Reload()
    assert "train/reconstructions" in events.Tags()[IMAGES]
    image = events.Images("train/reconstructions")[0]
    assert (image.height, image.width) == (2 * SIDE + 2, 4 * SIDE + 3 * 2)


def test_state_models_are_refused_with_the_alternative():
    import gymnasium as gym

    from sb3_sacae import SACAE

    model = SACAE(
        "MlpPolicy",
        gym.make("Pendulum-v1"),
        buffer_size=100,
        learning_starts=10,
        batch_size=8,
        policy_kwargs=dict(features_dim=8, net_arch=[16]),
        device=TEST_DEVICE,
    )
    with pytest.raises(ValueError, match="train/ae_loss"):
        model.learn(12, callback=ReconstructionImageCallback(every_n_updates=1))
