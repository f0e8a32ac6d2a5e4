"""Replay memory that stores each frame of frame-stacked observations once.

A stack of ``k`` frames shares ``k - 1`` frames with the stack before it, so SB3's
``ReplayBuffer`` (which stores ``obs`` and ``next_obs`` whole) keeps every frame up to ``2k``
times. ``FrameStackReplayBuffer`` keeps a ring of single frames and, per transition, the ring
positions of the ``k`` frames of ``obs`` and of ``next_obs``; stacks are rebuilt at sampling time.
"""

import math
import warnings
from typing import Any, cast

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import BaseBuffer, ReplayBuffer
from stable_baselines3.common.preprocessing import is_image_space, is_image_space_channels_first
from stable_baselines3.common.type_aliases import ReplayBufferSamples
from stable_baselines3.common.vec_env import VecEnv, VecFrameStack, VecNormalize, unwrap_vec_wrapper
from stable_baselines3.common.vec_env.base_vec_env import VecEnvIndices

from sb3_sacae.accel.device_frames import DeviceFrames, check_device_fits, device_frames_apply, to_device
from sb3_sacae.io.limits import available_memory

__all__ = [
    "FRAME_SHARING_OPTION",
    "FrameStackReplayBuffer",
    "available_memory",
    "check_memory_fits",
    "detect_frame_stack",
    "sb3_bytes_per_transition",
]


FRAME_SHARING_OPTION = (
    "for frame-stacked pixel observations sb3_sacae.buffers.FrameStackReplayBuffer(frame_stack=k), "
    "which stores each frame once (about 21.5 kB per transition for 3 stacked 84x84 RGB frames)"
)


def check_memory_fits(
    nbytes: int,
    bytes_per_transition: float,
    what: str,
    allow_oversize: bool = False,
    other_options: tuple[str, ...] = (FRAME_SHARING_OPTION,),
) -> None:
    """
    Refuse a replay buffer that cannot fit in the memory available now.

    :param nbytes: Bytes the buffer's arrays take once filled
    :param bytes_per_transition: ``nbytes`` divided by the number of transitions it holds
    :param what: How the error names the buffer, e.g. ``"ReplayBuffer(buffer_size=1_000_000)"``
    :param allow_oversize: Only warn instead of raising (the arrays are allocated lazily, so the
        failure, if any, comes when the buffer fills)
    :param other_options: Ways out listed between "a smaller buffer_size" and ``allow_oversize``
        (default: the frame-sharing buffer)
    :raises MemoryError: When ``nbytes`` exceeds the available memory and ``allow_oversize`` is False
    """
    available = available_memory()
    if available is None or nbytes <= available:
        return
    options = [
        f"a smaller buffer_size (about {int(available // bytes_per_transition):,} transitions fit now)",
        *other_options,
        "allow_oversize=True to allocate anyway",
    ]
    message = (
        f"{what} needs {nbytes / 2**30:.2f} GiB ({nbytes:,} bytes, {bytes_per_transition:,.0f} bytes per transition) "
        f"but only {available / 2**30:.2f} GiB ({available:,} bytes) are available. Options: {'; '.join(options)}."
    )
    if not allow_oversize:
        raise MemoryError(message)
    warnings.warn(message, stacklevel=3)


def vec_env_attr(env: VecEnv, name: str, indices: VecEnvIndices = None) -> list[Any] | None:
    """
    The attribute ``name`` of the envs (through their wrappers), all of them or the one at ``indices``; None unless
    every env has it. Asked with ``has_attr`` first: a ``SubprocVecEnv`` worker asked ``get_attr`` for an attribute
    its env lacks dies instead of raising the ``AttributeError`` here.
    """
    return env.get_attr(name, indices) if env.has_attr(name) else None


def detect_frame_stack(env: VecEnv | None) -> int | None:
    """Frames stacked per observation: VecFrameStack's n_stack, else the envs' ``frame_stack`` attribute."""
    if env is None:
        return None
    vec_stack = unwrap_vec_wrapper(env, VecFrameStack)
    if vec_stack is not None:
        return int(vec_stack.stacked_obs.n_stack)
    stacks = set(vec_env_attr(env, "frame_stack") or [])
    return int(stacks.pop()) if len(stacks) == 1 else None


def sb3_bytes_per_transition(observation_space: spaces.Space, action_space: spaces.Space, optimize_memory_usage: bool) -> int:
    """Bytes SB3's ReplayBuffer/DictReplayBuffer use per transition: obs (twice unless optimized), action, 3 floats."""
    obs_spaces = observation_space.spaces.values() if isinstance(observation_space, spaces.Dict) else [observation_space]
    obs_bytes = sum(math.prod(space.shape or ()) * np.dtype(space.dtype).itemsize for space in obs_spaces)
    if isinstance(action_space, spaces.Discrete):
        action_bytes = np.dtype(action_space.dtype).itemsize  # one index, stored in the space's dtype
    else:
        action_bytes = math.prod(action_space.shape or ()) * 4  # float32
    return obs_bytes * (1 if optimize_memory_usage else 2) + action_bytes + 3 * 4


class FrameStackReplayBuffer(ReplayBuffer):
    """
    Replay buffer for frame-stacked observations that stores each frame once.

    Same contract as SB3's ``ReplayBuffer``: same ``add()`` / ``sample()`` arguments and, for the
    same transitions and the same numpy random state, the same ``ReplayBufferSamples``.
    Memory: about one frame per transition (21,168 bytes for 84x84 RGB) plus
    ``2 * frame_stack`` 4-byte frame indices, instead of ``2 * frame_stack`` frames.

    How stacks are shared, and why the result is always exact:

    - ``obs`` of an env is checked against that env's previous ``next_obs`` (the usual case
      within an episode) and reuses its frames when equal; ``next_obs`` is checked against
      ``obs`` shifted by one frame and then only adds its newest frame. Whatever fails a check
      (episode starts, ``terminal_observation`` from infos, wrappers that do not stack) is
      stored frame by frame, so a sampled stack is always bit-identical to the one added.
    - All-zero frames (the padding of ``VecFrameStack`` after a reset) point to one permanent
      zero frame; a frame equal to its predecessor in the stack is stored once.
    - Frames live in one ring shared by all envs, written in order. Each row of transitions
      records the oldest frame it references; rows whose frames were overwritten are never
      sampled. Episode starts cost one frame more than steps, which ``frame_margin`` pays for:
      with the default 1 %, episodes of 100 or more steps lose nothing; with shorter
      episodes the oldest transitions are dropped before SB3's ring would drop them.

    :param buffer_size: Max number of element in the buffer
    :param observation_space: Observation space (``Box``): channel-first ``(k*C, H, W)`` or
        channel-last ``(H, W, k*C)`` images (layout detected as SB3 does), or any ``Box`` stacked
        along its first axis
    :param action_space: Action space
    :param device: PyTorch device
    :param n_envs: Number of parallel environments
    :param optimize_memory_usage: Must be False: frames are always stored once here, and SB3's
        algorithms rewrite ``dones`` of a buffer that claims this option when training resumes
    :param handle_timeout_termination: Handle timeout termination (due to timelimit)
        separately and treat the task as infinite horizon task.
        https://github.com/DLR-RM/stable-baselines3/issues/284
    :param frame_stack: Number of frames ``k`` in each observation (``n_stack`` of
        ``VecFrameStack``); ``None`` treats each observation as one frame (half of SB3's memory)
    :param frame_margin: Frames stored beyond one per transition, as a fraction of the capacity
        (default 0.01; 1/L for episodes of L steps keeps every transition SB3 would keep)
    :param allow_oversize: Allocate even when the buffer cannot fit in the available memory
        (warns instead of raising ``MemoryError``)
    :param n_steps: Transitions summed into each sampled one (n-step returns, as SB3's ``NStepReplayBuffer``
        computes them at sampling: discounted rewards up to the first episode end, ``next_observations`` and
        ``dones`` of the last transition summed, and ``discounts`` gamma to the power of the transitions summed);
        1 (default): one-step transitions, without ``discounts``
    :param gamma: Discount factor of the n-step returns (only with ``n_steps > 1``)
    :param frames_on_device: Keep a copy of the frames in ``device``'s memory and gather sampled stacks there, and
        send the rest of each batch from pinned host memory without waiting for the device
        (:mod:`sb3_sacae.accel.device_frames`; the same samples). ``None`` (default): on a CUDA device, while the
        frames fit in half of its free memory. ``True`` refuses a GPU without room for them (``MemoryError``) unless
        ``allow_oversize``; on the CPU it keeps a second host copy, which only tests want. Sampling with a
        ``VecNormalize`` env always gathers on the host
    """

    # Where this process keeps the frames: not part of the buffer's state, nor of its files
    placement_attributes = ("frames_on_device", "_device_frames")
    # One-step transitions; an n-step buffer sets both on itself, and they are saved with its state
    n_steps: int = 1
    gamma: float = 0.99

    frames: np.ndarray
    obs_frame_idx: np.ndarray
    next_obs_frame_idx: np.ndarray
    row_oldest_frame: np.ndarray
    last_frame_idx: np.ndarray
    last_frame_seq: np.ndarray
    has_last: np.ndarray

    def __init__(
        self,
        buffer_size: int,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        device: th.device | str = "auto",
        n_envs: int = 1,
        optimize_memory_usage: bool = False,
        handle_timeout_termination: bool = True,
        frame_stack: int | None = None,
        frame_margin: float = 0.01,
        allow_oversize: bool = False,
        frames_on_device: bool | None = None,
        n_steps: int = 1,
        gamma: float = 0.99,
    ):
        box, k = _check_arguments(observation_space, optimize_memory_usage, frame_stack, frame_margin)
        _check_n_step_arguments(n_steps, gamma)
        # Not ReplayBuffer.__init__: it would allocate obs and next_obs arrays of the full size
        BaseBuffer.__init__(self, buffer_size, observation_space, action_space, device, n_envs=n_envs)
        self.buffer_size = max(buffer_size // n_envs, 1)
        self.optimize_memory_usage = False
        self.handle_timeout_termination = handle_timeout_termination
        self.frame_stack = k
        if n_steps > 1:
            self.n_steps, self.gamma = int(n_steps), float(gamma)
        self.stack_axis = _stack_axis(box, self.obs_shape, k)
        frame_shape = list(self.obs_shape)
        frame_shape[self.stack_axis] = self.obs_shape[self.stack_axis] // k
        self.frame_shape = tuple(frame_shape)

        n_transitions = self.buffer_size * self.n_envs
        # One call to add() writes at most 2k frames per env; a stack only reuses frames that survive it
        self.max_frames_per_add = 2 * k * self.n_envs
        self.n_frames = n_transitions + math.ceil(frame_margin * n_transitions) + 2 * self.max_frames_per_add
        # Frames whose seq (order of writing) is older than this many frames are never newly referenced
        self.reuse_horizon = self.n_frames - self.max_frames_per_add
        self.zero_frame_idx = self.n_frames  # one extra, never written, all-zero frame
        # Total frames written since the last reset; a frame's slot in the ring is seq % n_frames
        self.frame_count = 0

        layout = self._array_layout(box, action_space)
        nbytes = sum(math.prod(shape) * np.dtype(dtype).itemsize for shape, dtype in layout.values())
        check_memory_fits(
            nbytes,
            nbytes / n_transitions,
            f"FrameStackReplayBuffer(buffer_size={buffer_size:_}, n_envs={n_envs}, frame_stack={k})",
            allow_oversize,
            other_options=(),
        )
        # np.zeros maps pages lazily: memory is used as the buffer fills
        for name, (shape, dtype) in layout.items():
            setattr(self, name, np.zeros(shape, dtype=dtype))
        if frames_on_device is None:
            frames_on_device = device_frames_apply(self.device, self.frames.nbytes)
        elif frames_on_device and not allow_oversize:
            check_device_fits(self.device, self.frames.nbytes)
        self.frames_on_device = bool(frames_on_device)
        # Built at the first sample: not part of the buffer's state (save_replay_buffer writes the host frames)
        self._device_frames: DeviceFrames | None = None

    def __getstate__(self) -> dict[str, Any]:
        # A pickle (SB3's save_replay_buffer) holds the host frames only: the device copy is rebuilt where it is loaded
        return {**self.__dict__, "_device_frames": None}

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Buffers pickled before frames_on_device existed sample on the host
        self.__dict__.update({"frames_on_device": False, **state, "_device_frames": None})

    def _array_layout(self, observation_space: spaces.Box, action_space: spaces.Space) -> dict[str, tuple[tuple, Any]]:
        """Shape and dtype of every array the buffer holds, by attribute name."""
        k = self.frame_stack
        index_dtype = np.int32 if self.n_frames < np.iinfo(np.int32).max else np.int64
        per_row = (self.buffer_size, self.n_envs)
        return {
            "frames": ((self.n_frames + 1, *self.frame_shape), observation_space.dtype),
            "obs_frame_idx": ((*per_row, k), index_dtype),
            "next_obs_frame_idx": ((*per_row, k), index_dtype),
            # Smallest seq of any frame referenced by a row: the row is valid while that frame is in the ring
            "row_oldest_frame": ((self.buffer_size,), np.int64),
            "actions": ((*per_row, self.action_dim), self._maybe_cast_dtype(action_space.dtype)),
            "rewards": (per_row, np.float32),
            "dones": (per_row, np.float32),
            "timeouts": (per_row, np.float32),
            # Per env: frames of the last next_obs added, to share with the next obs
            "last_frame_idx": ((self.n_envs, k), index_dtype),
            "last_frame_seq": ((self.n_envs, k), np.int64),
            "has_last": ((self.n_envs,), np.bool_),
        }

    @property
    def nbytes(self) -> int:
        """Bytes of all arrays of the buffer on the host, once filled."""
        return sum(value.nbytes for value in vars(self).values() if isinstance(value, np.ndarray))

    def reset(self) -> None:
        super().reset()
        self.frame_count = 0
        self.has_last[:] = False

    def _split_frames(self, stack: np.ndarray) -> np.ndarray:
        """(n_envs, *obs_shape) -> (n_envs, k, *frame_shape), a view."""
        n = stack.shape[0]
        if self.stack_axis == 0:
            return stack.reshape(n, self.frame_stack, *self.frame_shape)
        split = stack.reshape(n, *self.obs_shape[:-1], self.frame_stack, self.frame_shape[-1])
        return np.moveaxis(split, -2, 1)

    def _join_frames(self, frame_idx: np.ndarray) -> np.ndarray:
        """Frame indices (batch, k) -> stacks (batch, *obs_shape), one gather."""
        frames = self.frames[frame_idx]
        if self.stack_axis != 0:
            frames = np.moveaxis(frames, 1, -2)
        return frames.reshape(len(frame_idx), *self.obs_shape)

    def to_torch(self, array: np.ndarray, copy: bool = True) -> th.Tensor:
        # With the frames on the device, a batch's other arrays are sent without waiting for it
        if self.frames_on_device:
            return to_device(array, self.device)
        return super().to_torch(array, copy)

    def _join_frames_th(self, frame_idx: np.ndarray) -> th.Tensor:
        """Frame indices (batch, k) -> stacks (batch, *obs_shape) on ``device``: gathered there with ``frames_on_device``."""
        if not self.frames_on_device:
            return th.as_tensor(self._join_frames(frame_idx), device=self.device)
        if self._device_frames is None or not self._device_frames.mirrors(self.frames):
            self._device_frames = DeviceFrames(self.frames, self.device)
        frames = self._device_frames.gather(frame_idx)
        if self.stack_axis != 0:
            frames = frames.movedim(1, -2)
        return frames.reshape(len(frame_idx), *self.obs_shape)

    def _reusable(self, seq: np.ndarray | int) -> bool:
        return bool(np.min(seq) >= self.frame_count - self.reuse_horizon)

    def _store_frame(self, frame: np.ndarray, candidate_idx: int, candidate_seq: int) -> tuple[int, int]:
        """Index and seq of ``frame``: the candidate when equal and recent, the zero frame, or a new slot."""
        if candidate_idx >= 0 and self._reusable(candidate_seq) and np.array_equal(frame, self.frames[candidate_idx]):
            return candidate_idx, candidate_seq
        seq = self.frame_count
        if not frame.any():
            # Ages like a frame written now, so that the rows' oldest frames stay in writing order
            return self.zero_frame_idx, seq
        self.frames[seq % self.n_frames] = frame
        if self._device_frames is not None:
            # the stored row, contiguous and in the ring's dtype, whatever the strides of the frame added
            self._device_frames.write(seq % self.n_frames, self.frames[seq % self.n_frames])
        self.frame_count += 1
        return seq % self.n_frames, seq

    def _store_stack(self, frames: np.ndarray, idx: np.ndarray, seq: np.ndarray) -> None:
        """Store the k ``frames`` of one stack into ``idx`` / ``seq``, sharing equal neighbours."""
        for i in range(self.frame_stack):
            candidate_idx, candidate_seq = (int(idx[i - 1]), int(seq[i - 1])) if i > 0 else (-1, -1)
            idx[i], seq[i] = self._store_frame(frames[i], candidate_idx, candidate_seq)

    def add(
        self,
        obs: np.ndarray,
        next_obs: np.ndarray,
        action: np.ndarray,
        reward: np.ndarray,
        done: np.ndarray,
        infos: list[dict[str, Any]],
    ) -> None:
        obs_frames = self._split_frames(self._as_stacks(obs, "obs"))
        next_frames = self._split_frames(self._as_stacks(next_obs, "next_obs"))
        k = self.frame_stack
        oldest = np.iinfo(np.int64).max
        for env_idx in range(self.n_envs):
            obs_idx = self.obs_frame_idx[self.pos, env_idx]
            next_idx = self.next_obs_frame_idx[self.pos, env_idx]
            obs_seq = np.empty(k, dtype=np.int64)
            next_seq = np.empty(k, dtype=np.int64)
            last_idx, last_seq = self.last_frame_idx[env_idx], self.last_frame_seq[env_idx]
            # Within an episode obs is this env's last next_obs
            if (
                self.has_last[env_idx]
                and self._reusable(last_seq)
                and all(np.array_equal(obs_frames[env_idx, i], self.frames[last_idx[i]]) for i in range(k))
            ):
                obs_idx[:] = last_idx
                obs_seq[:] = last_seq
            else:
                self._store_stack(obs_frames[env_idx], obs_idx, obs_seq)
            # next_obs is obs shifted by one frame, unless a wrapper stacks differently
            if np.array_equal(next_frames[env_idx, :-1], obs_frames[env_idx, 1:]):
                next_idx[:-1] = obs_idx[1:]
                next_seq[:-1] = obs_seq[1:]
                next_idx[-1], next_seq[-1] = self._store_frame(next_frames[env_idx, -1], int(obs_idx[-1]), int(obs_seq[-1]))
            else:
                self._store_stack(next_frames[env_idx], next_idx, next_seq)
            last_idx[:] = next_idx
            last_seq[:] = next_seq
            self.has_last[env_idx] = True
            oldest = min(oldest, int(obs_seq.min()), int(next_seq.min()))
        self.row_oldest_frame[self.pos] = oldest

        # Same as SB3's ReplayBuffer from here on
        action = action.reshape((self.n_envs, self.action_dim))
        self.actions[self.pos] = np.array(action)
        self.rewards[self.pos] = np.array(reward)
        self.dones[self.pos] = np.array(done)
        if self.handle_timeout_termination:
            self.timeouts[self.pos] = np.array([info.get("TimeLimit.truncated", False) for info in infos])
        self.pos += 1
        if self.pos == self.buffer_size:
            self.full = True
            self.pos = 0

    def _as_stacks(self, stacks: np.ndarray, name: str) -> np.ndarray:
        """
        ``stacks`` as ``(n_envs, *obs_shape)`` in the frames' dtype. Refused in any other shape, as SB3's
        ``ReplayBuffer`` refuses it: a reshape would store scrambled frames.
        """
        array = np.asarray(stacks)
        expected = (self.n_envs, *self.obs_shape)
        if array.shape == expected or (self.n_envs == 1 and array.shape == self.obs_shape):
            return array.reshape(expected).astype(self.frames.dtype, copy=False)
        hint = ""
        if sorted(array.shape[1:]) == sorted(self.obs_shape) and array.shape[1:] != self.obs_shape:
            # Typically VecNormalize inside the VecTransposeImage SB3 adds: SB3 stores VecNormalize's original
            # observations, which are not transposed
            hint = (
                ": the observations are not in the layout of the observation space; with VecNormalize around "
                "channel-last images, transpose them first: VecNormalize(VecTransposeImage(env))"
            )
        raise ValueError(f"FrameStackReplayBuffer.add(): {name} has shape {array.shape}, the buffer stores {expected}{hint}")

    def _row_is_valid(self, rows: np.ndarray | int) -> np.ndarray | bool:
        return self.row_oldest_frame[rows] >= self.frame_count - self.n_frames

    def n_valid(self) -> int:
        """
        :return: Number of transitions rows (newest first) whose frames are all still stored.
            Equals ``size()`` unless episode starts used up the ``frame_margin``.
        """
        size = self.size()
        oldest = self.pos if self.full else 0
        if size == 0 or self._row_is_valid(oldest):
            return size
        # Rows reference frames in writing order, so the valid rows are the newest ones:
        # find the oldest valid row by bisection over age (the newest row is always valid)
        low, high = 1, size - 1
        while low < high:
            middle = (low + high) // 2
            if self._row_is_valid((oldest + middle) % self.buffer_size):
                high = middle
            else:
                low = middle + 1
        return size - low

    def sample(self, batch_size: int, env: VecNormalize | None = None) -> ReplayBufferSamples:
        """
        Sample elements from the replay buffer, uniformly over the transitions still stored
        (the same draws as SB3's ``ReplayBuffer`` while no transition was dropped).

        :param batch_size: Number of element to sample
        :param env: associated gym VecEnv
            to normalize the observations/rewards when sampling
        :return:
        """
        n_valid = self.n_valid()
        if n_valid == self.size():
            return super().sample(batch_size=batch_size, env=env)
        batch_inds = (self.pos - n_valid + np.random.randint(0, n_valid, size=batch_size)) % self.buffer_size
        return self._get_samples(batch_inds, env=env)

    def _get_samples(self, batch_inds: np.ndarray, env: VecNormalize | None = None) -> ReplayBufferSamples:
        # Sample randomly the env idx
        env_indices = np.random.randint(0, high=self.n_envs, size=(len(batch_inds),))
        if not np.all(self._row_is_valid(batch_inds)):
            raise IndexError(
                "FrameStackReplayBuffer: these rows reference frames that were overwritten; "
                "draw indices with sample(), which only returns stored transitions"
            )
        if self.n_steps > 1:
            rewards, discounts, last_rows = self._n_step_returns(batch_inds, env_indices, env)
        else:
            rewards = self._normalize_reward(self.rewards[batch_inds, env_indices].reshape(-1, 1), env)
            discounts, last_rows = None, batch_inds
        # obs and next_obs stacks in one gather and one conversion to torch
        frame_idx = np.concatenate(
            (self.obs_frame_idx[batch_inds, env_indices], self.next_obs_frame_idx[last_rows, env_indices])
        )
        batch_size = len(batch_inds)
        if env is None:
            stacks_th = self._join_frames_th(frame_idx)
            observations, next_observations = stacks_th[:batch_size], stacks_th[batch_size:]
        else:
            stacks = self._join_frames(frame_idx)
            # SB3 types _normalize_obs for dict observations too; an array stack normalizes to an array
            normalized = cast(np.ndarray, self._normalize_obs(stacks, env))
            observations, next_observations = self.to_torch(normalized[:batch_size]), self.to_torch(normalized[batch_size:])
        return ReplayBufferSamples(
            observations=observations,
            actions=self.to_torch(self.actions[batch_inds, env_indices, :]),
            next_observations=next_observations,
            # Only use dones that are not due to timeouts
            dones=self.to_torch(
                (self.dones[last_rows, env_indices] * (1 - self.timeouts[last_rows, env_indices])).reshape(-1, 1)
            ),
            rewards=self.to_torch(rewards),
            discounts=None if discounts is None else self.to_torch(discounts),
        )

    def _n_step_returns(
        self, batch_inds: np.ndarray, env_indices: np.ndarray, env: VecNormalize | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """
        For each sampled row: its return over up to ``n_steps`` rows of its env, ending at the first row that ends an
        episode (terminated or truncated) or at the newest row (the next row is older, or not written yet); the
        discount of the bootstrap after it, gamma to the power of the rows summed; and the row it ends at, whose
        ``next_obs`` and ``done`` the transition takes. The same values as SB3's ``NStepReplayBuffer``.
        """
        rows = (batch_inds[:, None] + np.arange(self.n_steps)) % self.buffer_size  # (batch, n)
        envs = env_indices[:, None]
        ends = np.logical_or(self.dones[rows, envs], self.timeouts[rows, envs])
        ends |= rows == (self.pos - 1) % self.buffer_size
        last = np.where(ends.any(axis=1), ends.argmax(axis=1), self.n_steps - 1)
        summed = np.arange(self.n_steps).reshape(1, -1) <= last[:, None]
        discounts = self.gamma ** summed.sum(axis=1, keepdims=True).astype(np.float32)
        rewards = self._normalize_reward(self.rewards[rows, envs], env)
        returns = (rewards * self.gamma ** np.arange(self.n_steps, dtype=np.float32).reshape(1, -1) * summed).sum(
            axis=1, keepdims=True
        )
        return returns, discounts, (batch_inds + last) % self.buffer_size


def _check_arguments(
    observation_space: spaces.Space, optimize_memory_usage: bool, frame_stack: int | None, frame_margin: float
) -> tuple[spaces.Box, int]:
    """Refuse what FrameStackReplayBuffer cannot store, with the fix; return the space and the stacked frames."""
    if not isinstance(observation_space, spaces.Box):
        raise ValueError(
            f"FrameStackReplayBuffer needs a Box observation space, got {observation_space}: "
            "use stable_baselines3's ReplayBuffer or DictReplayBuffer"
        )
    if optimize_memory_usage:
        raise ValueError(
            "FrameStackReplayBuffer always stores each frame once: pass optimize_memory_usage=False "
            "(with True, SB3's learn() rewrites the buffer's dones when training resumes)"
        )
    k = 1 if frame_stack is None else int(frame_stack)
    if k < 1:
        raise ValueError(f"frame_stack must be a positive number of frames or None, got {frame_stack}")
    if frame_margin < 0:
        raise ValueError(f"frame_margin must be >= 0, got {frame_margin}")
    return observation_space, k


def _check_n_step_arguments(n_steps: int, gamma: float) -> None:
    """Refuse n-step settings that have no meaning, naming the valid range."""
    if isinstance(n_steps, bool) or not float(n_steps).is_integer() or n_steps < 1:
        raise ValueError(f"n_steps must be a whole number of transitions >= 1, got {n_steps!r}")
    if not 0.0 <= float(gamma) <= 1.0:
        raise ValueError(f"gamma must be in [0, 1], got {gamma!r}")


def _stack_axis(observation_space: spaces.Box, obs_shape: tuple[int, ...], k: int) -> int:
    """The axis frames are stacked along.

    The last axis for channel-last images (as SB3 decides), else the first. The axis only decides how much is
    shared (stacks are checked frame by frame), so an ambiguous shape falls back to the first axis when only that
    one splits into k frames.
    """
    channels_last = is_image_space(observation_space) and not is_image_space_channels_first(observation_space)
    axes = (len(obs_shape) - 1, 0) if channels_last else (0,)
    divisible = [axis for axis in axes if obs_shape[axis] % k == 0]
    if not divisible:
        raise ValueError(
            f"Observation shape {obs_shape} has {obs_shape[axes[0]]} channels on axis {axes[0]}, "
            f"not a multiple of frame_stack={k}: pass the n_stack of VecFrameStack as frame_stack"
        )
    return divisible[0]
