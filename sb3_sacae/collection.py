"""
What SACAE adds to SB3's collection of experience: the replay buffer's choice and its memory check, environment
frames counted beside agent steps, and non-finite transitions refused before they reach the buffer.
"""

import math
import warnings
from typing import Any, cast

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.buffers import NStepReplayBuffer, ReplayBuffer
from stable_baselines3.common.callbacks import BaseCallback, ConvertCallback
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback

from sb3_sacae import guards
from sb3_sacae.buffers import (
    FrameStackReplayBuffer,
    check_memory_fits,
    detect_frame_stack,
    sb3_bytes_per_transition,
    vec_env_attr,
)
from sb3_sacae.io.errors import FileLimitError
from sb3_sacae.io.limits import MAX_ARRAY_BYTES
from sb3_sacae.network_loading import AlgorithmPart


class EnvFrameCounter(BaseCallback):
    """Adds each step's ``info["step_env_frames"]`` (from :class:`sb3_sacae.envs.ActionRepeat`) to ``model.env_frames``."""

    def _on_step(self) -> bool:
        model = cast(CollectionMixin, self.model)
        model._env_frames += sum(int(info.get("step_env_frames", 0)) for info in self.locals["infos"])
        return True


class CollectionMixin(AlgorithmPart):
    """
    Data collection for SACAE, placed before SB3's SAC in the method resolution order: frame-stacked image
    observations default to :class:`~sb3_sacae.buffers.FrameStackReplayBuffer`; a replay buffer that cannot fit in
    memory is refused when a user builds a model (``MemoryError`` unless ``allow_oversize``), and one that no machine
    can hold when a model is loaded (its file sets ``buffer_size``: :class:`~sb3_sacae.io.FileLimitError` naming
    ``load(path, buffer_size=N)``);
    :attr:`env_frames` counts environment frames; non-finite rewards and observations stop training with an error
    naming the agent step.
    """

    _env_frames: int = 0
    fast_kernels: bool = True
    _action_repeat: float | None = None
    # True when the user builds the model (MemoryError, allow_oversize honoured); False when it is loaded: the file's
    # buffer_size decides the buffer, built above the free memory with a warning, refused beyond any machine's
    _check_buffer_memory: bool = False

    def _setup_model(self) -> None:
        self._select_replay_buffer()
        user_buffer_kwargs = self.replay_buffer_kwargs
        checked = self._checked_buffer_kwargs()
        before = set(checked)
        self.replay_buffer_kwargs = checked
        try:
            with warnings.catch_warnings():
                if self.replay_buffer_class is FrameStackReplayBuffer:
                    # It takes n_steps itself (_checked_buffer_kwargs passes them): SB3 warns for any buffer class
                    warnings.filterwarnings("ignore", message=r"`n_steps=\d+` is ignored because a custom")
                super()._setup_model()
        except MemoryError as error:
            # SB3 builds the buffer first: with none yet, numpy could not allocate the buffer the file asks for
            if self._check_buffer_memory or getattr(self, "replay_buffer", None) is not None:
                raise
            raise FileLimitError(self._loaded_buffer_refusal(str(error))) from error
        finally:
            # What SB3 adds for the buffer it chooses (NStepReplayBuffer: n_steps and gamma) is a setting of the model,
            # saved with it; what the checks added (allow_oversize, a loaded model's frames_on_device) is not
            added = {key: value for key, value in self.replay_buffer_kwargs.items() if key not in before}
            self.replay_buffer_kwargs = {**user_buffer_kwargs, **added}
        self._action_repeat = self._read_action_repeat() or self._action_repeat

    def _select_replay_buffer(self) -> None:
        """
        Frame-stacked image observations default to the buffer that stores each frame once (with n-step returns for
        ``n_steps > 1``). SB3's n-step buffer, named by the user or saved with a model, is chosen again by SB3 (from
        ``n_steps`` and ``gamma``) rather than passed as a custom class: SB3 would warn that ``n_steps`` is ignored,
        and files that lack its arguments would get the buffer's defaults.
        """
        kwargs = self.replay_buffer_kwargs
        if (
            self.replay_buffer_class is NStepReplayBuffer
            and self.n_steps > 1
            and kwargs.get("n_steps", self.n_steps) == self.n_steps
            and kwargs.get("gamma", self.gamma) == self.gamma
        ):
            self.replay_buffer_class = None
            return  # named by the user or the file: SB3's n-step buffer, not the frame-sharing one
        if self.replay_buffer_class is not None or self.optimize_memory_usage:
            return
        frame_stack = detect_frame_stack(self.env)
        if frame_stack is not None and frame_stack > 1 and isinstance(self.observation_space, spaces.Box):
            self.replay_buffer_class = FrameStackReplayBuffer
            self.replay_buffer_kwargs = {"frame_stack": frame_stack, **self.replay_buffer_kwargs}

    # What a loaded model's refused replay buffer leaves the user to do
    _SMALLER_BUFFER = "load it with a smaller buffer: SACAE.load(path, buffer_size=N) (buffer_size=1 to predict only)"

    def _loaded_buffer_refusal(self, reason: str) -> str:
        """The refusal of a loaded model's replay buffer that numpy could not allocate, naming the load() argument."""
        return (
            f"Refusing the replay buffer of the loaded model (buffer_size={self.buffer_size:_}): {reason.rstrip('.')}; "
            f"{self._SMALLER_BUFFER}"
        )

    def _checked_buffer_kwargs(self) -> dict[str, Any]:
        """
        The replay buffer's kwargs, after refusing a buffer that cannot fit in memory when the user builds the model
        (unless ``allow_oversize``). A loaded model's buffer is built with a warning instead (the memory free now is
        not the machine's: a checkpoint must resume on a busy machine, and the pages are used as the buffer fills);
        what no machine can hold is refused: SB3's buffers above ``SB3_SACAE_MAX_ARRAY_BYTES`` here, any buffer
        numpy cannot allocate in ``_setup_model``, each a ``FileLimitError`` naming ``buffer_size``.
        """
        user_buffer_kwargs = self.replay_buffer_kwargs
        loaded = not self._check_buffer_memory
        allow_oversize = bool(user_buffer_kwargs.get("allow_oversize", False)) or loaded
        if self.replay_buffer_class is FrameStackReplayBuffer:
            if loaded:
                # at least one frame per transition: the bound that keeps numpy from being asked for the impossible
                frames = int(user_buffer_kwargs.get("frame_stack") or 1)
                frame_bytes = math.prod(self.observation_space.shape or ()) // max(frames, 1)
                frame_bytes *= np.dtype(self.observation_space.dtype).itemsize
                MAX_ARRAY_BYTES.check(
                    frame_bytes * self.buffer_size,  # a lower bound
                    f"the replay buffer of the loaded model, FrameStackReplayBuffer(buffer_size={self.buffer_size:_})",
                    self._SMALLER_BUFFER,
                )
            # n-step returns follow the model's n_steps and gamma, as SB3's buffer does (unless the user set them)
            n_step = {"n_steps": self.n_steps, "gamma": self.gamma} if self.n_steps > 1 else {}
            kwargs = {**n_step, **user_buffer_kwargs, "allow_oversize": allow_oversize}
            if not self.fast_kernels:
                kwargs["frames_on_device"] = False  # the plain path everywhere: sampling on the host
            elif not self._check_buffer_memory and kwargs.get("frames_on_device"):
                # A loaded model samples where this machine allows: True was a choice for the machine it was built on
                kwargs["frames_on_device"] = None
            return kwargs
        # SB3's buffers take no such argument: check their size here, before numpy allocates them
        per_transition = sb3_bytes_per_transition(self.observation_space, self.action_space, self.optimize_memory_usage)
        what = f"SB3's replay buffer (buffer_size={self.buffer_size:_})"
        nbytes = per_transition * self.buffer_size
        if loaded:
            MAX_ARRAY_BYTES.check(nbytes, f"the replay buffer of the loaded model, {what}", self._SMALLER_BUFFER)
        check_memory_fits(nbytes, per_transition, what, allow_oversize=allow_oversize)
        return {k: v for k, v in user_buffer_kwargs.items() if k != "allow_oversize"}

    def set_env(self, env: GymEnv, force_reset: bool = True) -> None:
        super().set_env(env, force_reset=force_reset)
        self._action_repeat = self._read_action_repeat()

    def _read_action_repeat(self) -> float | None:
        """Mean action repeat of the envs (None without an action-repeat wrapper), to count environment frames."""
        repeats = vec_env_attr(self.env, "action_repeat") if self.env is not None else None
        return float(np.mean(repeats)) if repeats is not None else None

    @property
    def env_frames(self) -> int:
        """
        Environment frames simulated so far (papers on DeepMind Control count these): the sum of
        ``info["step_env_frames"]`` reported by :class:`sb3_sacae.envs.ActionRepeat`, else agent steps
        times the envs' ``action_repeat`` attribute, else agent steps.
        """
        return self._env_frames or int(self.num_timesteps * (self._action_repeat or 1))

    def _init_callback(self, callback: MaybeCallback, progress_bar: bool = False) -> BaseCallback:
        # Count frames first: SB3 calls the user's callbacks before its own per-step bookkeeping
        if callback is None:
            callbacks: list[BaseCallback] = []
        elif isinstance(callback, list):
            callbacks = callback
        else:
            callbacks = [callback if isinstance(callback, BaseCallback) else ConvertCallback(callback)]
        return super()._init_callback([EnvFrameCounter(), *callbacks], progress_bar)

    def _setup_learn(
        self,
        total_timesteps: int,
        callback: MaybeCallback = None,
        reset_num_timesteps: bool = True,
        tb_log_name: str = "run",
        progress_bar: bool = False,
    ) -> tuple[int, BaseCallback]:
        if reset_num_timesteps:
            self._env_frames = 0
        return super()._setup_learn(total_timesteps, callback, reset_num_timesteps, tb_log_name, progress_bar)

    def _store_transition(
        self,
        replay_buffer: ReplayBuffer,
        buffer_action: np.ndarray,
        new_obs: Any,
        reward: np.ndarray,
        dones: np.ndarray,
        infos: list[dict[str, Any]],
    ) -> None:
        guards.check_transition(reward, new_obs, self.num_timesteps)
        super()._store_transition(replay_buffer, buffer_action, new_obs, reward, dones, infos)
