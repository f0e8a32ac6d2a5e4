"""
Sampling on the device: a copy of :class:`~sb3_sacae.buffers.FrameStackReplayBuffer`'s frame ring in the GPU's
memory, so that a batch's observation stacks are gathered there.

On the host, every gradient step gathers ``2 * batch_size`` stacks from the ring (16 MiB for a batch of 128 stacks
of 3 84x84 RGB frames) and copies them to the GPU: a memory-bound gather on one CPU core and a transfer the update
waits for. With the ring on the GPU, the host sends only the stacks' frame indices (``2 * batch_size * k`` integers)
and the gather runs at the GPU's memory bandwidth. Each frame is written to both copies as it is stored (one frame
per agent step), so the copy never lags; the host ring stays the buffer's own state (what ``save_replay_buffer``
writes), and the copy is rebuilt from it whenever the ring array is replaced (``load_replay_buffer``).

The sampled stacks are the same bytes either way. :func:`device_frames_apply`: CUDA devices, while the ring fits in
half of the GPU's free memory.

What still crosses from the host (each stored frame, each batch's frame indices, actions, rewards and dones) goes
through pinned host memory without waiting for the GPU (:func:`to_device`): a copy from ordinary (pageable) memory
makes the CPU wait until the GPU has finished all the work queued before it, four times per batch.
"""

import numpy as np
import torch as th

# The share of the GPU's free memory the copy may take: the rest stays for the networks, their activations and
# the optimizers
_FREE_MEMORY_SHARE = 0.5


def _free_bytes(device: th.device | str) -> int | None:
    """The free memory of a CUDA device; None for any other device."""
    device = th.device(device)
    if device.type != "cuda" or not th.cuda.is_available():
        return None
    return th.cuda.mem_get_info(device)[0]


def device_frames_apply(device: th.device | str, nbytes: int) -> bool:
    """Whether a ring of ``nbytes`` is copied to ``device`` by default: a CUDA device with room to spare."""
    free = _free_bytes(device)
    return free is not None and nbytes <= _FREE_MEMORY_SHARE * free


def check_device_fits(device: th.device | str, nbytes: int) -> None:
    """Refuse a copy of ``nbytes`` that a CUDA device has no free memory for (other devices are not checked)."""
    free = _free_bytes(device)
    if free is not None and nbytes > free:
        raise MemoryError(
            f"frames_on_device=True needs {nbytes / 2**30:.2f} GiB on {device} for the replay buffer's frames, but only "
            f"{free / 2**30:.2f} GiB are free there: pass frames_on_device=False (sampling on the host) or a smaller "
            "buffer_size"
        )


def _staged(array: np.ndarray, device: th.device | str) -> th.Tensor:
    """A host tensor with ``array``'s values to copy to ``device`` from: in pinned memory for a CUDA device."""
    tensor = th.from_numpy(np.require(array, requirements=["C", "W"]))  # torch wants writable memory
    return tensor.pin_memory() if th.device(device).type == "cuda" else tensor


def to_device(array: np.ndarray, device: th.device | str) -> th.Tensor:
    """
    A copy of ``array`` on ``device``, made without waiting for the device: on CUDA staged through pinned host memory
    (torch's caching host allocator keeps each staging block until its copy has run, so ``array`` may change as soon
    as this returns); elsewhere a plain copy.
    """
    return _staged(array, device).to(device, copy=True, non_blocking=True)


class DeviceFrames:
    """
    A copy of a frame ring (a numpy array of frames along its first axis) in a torch device's memory.

    :param frames: The host ring, copied whole
    :param device: Where the copy lives
    """

    def __init__(self, frames: np.ndarray, device: th.device | str):
        self.source = frames  # the host array this copies: a new array (a loaded buffer) needs a new copy
        self.frames = th.from_numpy(frames).to(device, copy=True)

    def mirrors(self, frames: np.ndarray) -> bool:
        """Whether this is the copy of ``frames`` (the same array object, written through :meth:`write`)."""
        return self.source is frames

    def write(self, slot: int, frame: np.ndarray) -> None:
        """Store ``frame`` at ``slot``, as the host ring just did."""
        self.frames[slot].copy_(_staged(frame, self.frames.device), non_blocking=True)

    def gather(self, frame_idx: np.ndarray) -> th.Tensor:
        """The frames at ``frame_idx`` (any shape of indices), on the device."""
        return self.frames[to_device(frame_idx, self.frames.device)]
