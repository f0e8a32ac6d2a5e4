"""
What the autoencoder sees: TensorBoard images of observations next to their SAC-AE reconstructions.

SAC-AE's decoder reconstructs 5-bit pixels shifted to [-0.5, 0.5) (Yarats et al. 2019, section 6;
:func:`sb3_sacae.reconstruction.reconstruction_target`). A blurry or grey reconstruction of the moving parts of the
scene is the first sign that the encoder has not learned the state; these images show it at a glance.
"""

import warnings

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import DISABLED, CSVOutputFormat, HumanOutputFormat, Image, JSONOutputFormat, KVWriter

from sb3_sacae.buffers import detect_frame_stack

# Text outputs cannot show images (stdout raises, JSON and CSV would write empty rows): the images skip them
TEXT_FORMATS = (HumanOutputFormat, JSONOutputFormat, CSVOutputFormat)
EXCLUDED_FORMATS = ("stdout", "log", "json", "csv")


def infer_channels_per_frame(n_channels: int, frame_stack: int | None = None) -> int:
    """
    Channels of one frame in a stack of ``n_channels``: ``n_channels / frame_stack`` when the stack size is known,
    else 3 (RGB) when ``n_channels`` is a multiple of 3, else 1 (grayscale).
    """
    if frame_stack is not None and frame_stack > 0 and n_channels % frame_stack == 0:
        return n_channels // frame_stack
    return 3 if n_channels % 3 == 0 else 1


def reconstruction_to_pixels(reconstructions: np.ndarray) -> np.ndarray:
    """
    Decoder outputs, in the [-0.5, 0.5) units of the 5-bit target, back to uint8 pixels in [0, 255].

    The target of a pixel ``x`` is ``(floor(x / 8) + u) / 32 - 0.5`` with ``u`` uniform in [0, 1), so
    ``(target + 0.5) * 256`` is ``x`` up to the 3 dropped bits; values outside the range are clipped.
    """
    return np.clip((np.asarray(reconstructions, dtype=np.float32) + 0.5) * 256.0, 0.0, 255.0).astype(np.uint8)


def last_frame_rgb(images: np.ndarray, channels_per_frame: int) -> np.ndarray:
    """
    The last frame of each channel-first stack ``(N, C, H, W)`` as ``(N, H, W, 3)``: its first three channels as
    RGB, or its first channel repeated for grayscale frames (fewer than 3 channels per frame).
    """
    if images.ndim != 4:
        raise ValueError(f"expected a batch of channel-first images (N, C, H, W), got shape {images.shape}")
    n_channels = images.shape[1]
    if not 1 <= channels_per_frame <= n_channels or n_channels % channels_per_frame != 0:
        raise ValueError(
            f"channels_per_frame={channels_per_frame} does not divide the {n_channels} channels of the observations: "
            "pass the channels of one frame (3 for RGB, 1 for grayscale)"
        )
    frame = images[:, n_channels - channels_per_frame :]
    frame = frame[:, :3] if channels_per_frame >= 3 else np.repeat(frame[:, :1], 3, axis=1)
    return np.ascontiguousarray(np.moveaxis(frame, 1, -1))


def reconstruction_grid(
    observations: np.ndarray, reconstructions: np.ndarray, channels_per_frame: int = 3, padding: int = 2
) -> np.ndarray:
    """
    One uint8 ``(H, W, 3)`` image: the last frame of each observation in the top row, its reconstruction below.

    :param observations: raw pixels ``(N, C, H, W)`` in [0, 255] (channel-first, as the policy sees them)
    :param reconstructions: decoder outputs ``(N, C, H, W)`` in [-0.5, 0.5) units
    :param channels_per_frame: channels of one frame of the stack (3: RGB, 1: grayscale)
    :param padding: white pixels between the panels
    :return: an image of shape ``(2 * H + padding, N * W + (N - 1) * padding, 3)``
    """
    observations, reconstructions = np.asarray(observations), np.asarray(reconstructions)
    if observations.shape != reconstructions.shape:
        raise ValueError(
            f"observations {observations.shape} and reconstructions {reconstructions.shape} must have the same shape"
        )
    inputs = last_frame_rgb(np.clip(observations, 0, 255).astype(np.uint8), channels_per_frame)
    outputs = last_frame_rgb(reconstruction_to_pixels(reconstructions), channels_per_frame)
    n_images, height, width, _ = inputs.shape
    grid = np.full((2 * height + padding, n_images * width + (n_images - 1) * padding, 3), 255, dtype=np.uint8)
    for index in range(n_images):
        left = index * (width + padding)
        grid[:height, left : left + width] = inputs[index]
        grid[height + padding :, left : left + width] = outputs[index]
    return grid


def reconstruct(model: BaseAlgorithm, observations: np.ndarray | th.Tensor) -> np.ndarray:
    """
    Decoder outputs for raw observations (policy's channel-first layout), through the critic's encoder as in
    training: float32 ``(N, C, H, W)`` in the [-0.5, 0.5) units of the reconstruction target.
    """
    decoder = getattr(model.policy, "decoder", None)
    if decoder is None:
        raise ValueError(
            "this model has no decoder: the autoencoder is off (decoder_update_interval=0) or the model is not SACAE"
        )
    observations = th.as_tensor(observations, device=model.device)
    with th.no_grad():
        latent = model.critic.features_extractor(observations)  # type: ignore[attr-defined]  # BaseAlgorithm types no critic; the callback runs on SACAE models only
        return decoder(latent).float().contiguous().cpu().numpy()


class ReconstructionImageCallback(BaseCallback):
    """
    Every ``every_n_updates`` gradient updates, log to TensorBoard an image of a few observations (top row, last
    frame of each stack) above their reconstructions by the critic's encoder and the decoder (bottom row).

    The images are written straight to the logger's image-capable outputs (TensorBoard, or any custom
    :class:`~stable_baselines3.common.logger.KVWriter`) at step ``num_timesteps``, not through
    ``logger.record``, which would keep only the last image until the next ``log_interval`` dump.
    Text outputs (stdout, CSV, JSON) are skipped. With the autoencoder off (``decoder_update_interval=0``)
    the callback warns once and does nothing.

    Sampling from the replay buffer saves and restores numpy's global random state, so training is the same
    with and without the callback.

    :param every_n_updates: log every this many gradient updates (``model._n_updates``)
    :param n_images: observations per image
    :param tb_key: TensorBoard tag of the image
    :param observations: a fixed batch of raw observations to reconstruct, channel-first as the policy sees them
        or as the environment returns them (channel-last images are transposed); None samples the replay buffer
    :param resample: draw new observations from the replay buffer at every log; by default the first draw is kept,
        so the images show the same frames improving over training
    :param channels_per_frame: channels of one stacked frame (3: RGB, 1: grayscale); None infers it from the
        frame stack of the env or replay buffer, else 3 if the channel count is a multiple of 3, else 1
    :param verbose: Verbosity level: 0 for no output, 1 for a line per logged image
    """

    def __init__(
        self,
        every_n_updates: int = 1000,
        n_images: int = 4,
        tb_key: str = "train/reconstructions",
        observations: np.ndarray | None = None,
        resample: bool = False,
        channels_per_frame: int | None = None,
        verbose: int = 0,
    ):
        super().__init__(verbose)
        if int(every_n_updates) < 1:
            raise ValueError(f"every_n_updates must be a positive number of gradient updates, got {every_n_updates}")
        if int(n_images) < 1:
            raise ValueError(f"n_images must be at least 1, got {n_images}")
        self.every_n_updates = int(every_n_updates)
        self.n_images = int(n_images)
        self.tb_key = tb_key
        self.fixed_observations = None if observations is None else np.asarray(observations)
        self.resample = resample
        self.channels_per_frame = channels_per_frame
        self.enabled = True
        self.n_logged = 0
        self._next_log = self.every_n_updates
        # the raw observations (policy layout) shown in the last image
        self.observations: np.ndarray | None = None

    def _init_callback(self) -> None:
        if getattr(self.model.policy, "decoder", None) is None:
            warnings.warn(
                "ReconstructionImageCallback does nothing: the model has no decoder (SACAE with "
                "decoder_update_interval=0, or another algorithm); use decoder_update_interval >= 1 to see reconstructions",
                stacklevel=2,
            )
            self.enabled = False
            return
        space = self.model.observation_space
        if not (isinstance(space, spaces.Box) and len(space.shape) == 3):
            raise ValueError(
                f"ReconstructionImageCallback shows image reconstructions and needs a CnnPolicy model with image "
                f"observations, got {space}: for MlpPolicy / MultiInputPolicy models, watch train/ae_loss instead"
            )
        self.enabled = True
        shape: tuple[int, ...] = space.shape
        if self.fixed_observations is not None:
            self.observations = self._to_policy_layout(self.fixed_observations, shape)
        if self.channels_per_frame is None:
            frame_stack = getattr(getattr(self.model, "replay_buffer", None), "frame_stack", None) or detect_frame_stack(
                self.model.get_env()
            )
            self.channels_per_frame = infer_channels_per_frame(shape[0], frame_stack)
        # continue from the model's counter when learn() is called again
        self._next_log = (self.model._n_updates // self.every_n_updates + 1) * self.every_n_updates

    @staticmethod
    def _to_policy_layout(observations: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        if observations.shape[1:] == shape:
            return observations
        transposed = np.moveaxis(observations, -1, 1) if observations.ndim == 4 else observations
        if transposed.shape[1:] == shape:
            return np.ascontiguousarray(transposed)
        raise ValueError(
            f"observations of shape {observations.shape} do not match the policy's observation space {shape}: "
            f"pass a batch (N, *{shape}) or the environment's channel-last (N, H, W, C) images"
        )

    def _on_step(self) -> bool:
        if self.enabled and self.model._n_updates >= self._next_log:
            n_updates = self.model._n_updates
            self._next_log = (n_updates // self.every_n_updates + 1) * self.every_n_updates
            self.log_reconstructions()
        return True

    def _sample_observations(self) -> np.ndarray | None:
        buffer = self.model.replay_buffer  # type: ignore[attr-defined]  # BaseAlgorithm types no replay_buffer; off-policy models have one
        if buffer is None or buffer.size() == 0:
            return None
        # the diagnostics must not change which batches training draws next
        random_state = np.random.get_state()
        try:
            samples = buffer.sample(self.n_images)
        finally:
            np.random.set_state(random_state)
        return samples.observations.cpu().numpy()

    def log_reconstructions(self) -> np.ndarray | None:
        """Reconstruct the observations, write the image to the logger's outputs and return it (None if no data yet)."""
        if self.observations is None or (self.resample and self.fixed_observations is None):
            self.observations = self._sample_observations()
        if self.observations is None:
            return None
        grid = reconstruction_grid(self.observations, reconstruct(self.model, self.observations), self.channels_per_frame or 3)
        if self.logger.level != DISABLED:
            for output in self.logger.output_formats:
                if isinstance(output, KVWriter) and not isinstance(output, TEXT_FORMATS):
                    output.write({self.tb_key: Image(grid, "HWC")}, {self.tb_key: EXCLUDED_FORMATS}, self.num_timesteps)
        self.n_logged += 1
        if self.verbose >= 1:
            print(f"{self.tb_key}: reconstructions at {self.model._n_updates} updates, {self.num_timesteps} steps")
        return grid
