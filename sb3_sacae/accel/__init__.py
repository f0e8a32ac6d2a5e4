"""
Speed pieces that exist only to be fast on some hardware, kept apart from the algorithm: the only place in the package
that reaches private torch APIs or process-wide settings.

Each piece is a drop-in for a plain torch layer or function (same parameters, state-dict keys and math, up to float32
summation order), with a selector that says where it applies; every other device takes the plain path.
``SACAE(fast_kernels=False)`` takes the plain path everywhere (``tests/accel/test_fast_kernels_off.py`` checks that the
whole update then computes what the fast one computes). What each piece buys:

- :class:`~sb3_sacae.accel.onednn.OneDNNLinear` (``policy_kwargs=dict(onednn_linear=...)``): the float32 matmuls of
  the actor and critic MLPs on oneDNN instead of the BLAS library, for CPUs where the BLAS library is slow for these
  shapes. :func:`~sb3_sacae.accel.onednn.onednn_linear_applies`: the CPU, on torch builds with oneDNN.
- :class:`~sb3_sacae.accel.deconv.DeconvLayer`: the decoder's transposed-convolution backward as regular
  convolutions, which oneDNN computes faster. :func:`~sb3_sacae.accel.deconv.deconv_backward_applies`: the CPU.
- :mod:`~sb3_sacae.accel.flat_order` (``policy_kwargs=dict(channels_last=...)``): convs and transposed convs in NHWC
  memory layout, where oneDNN's kernels are faster, without a layout copy between the convs and the Linear layers
  (the Linear layers next to them keep one dimension in the trunk's flattening order; files always hold the (C, H, W)
  order). Chosen when the policy is built; it runs on any device.
- :func:`~sb3_sacae.accel.reconstruction.reconstruction_loss`: the reconstruction loss a cache-sized slice of the batch
  at a time, with no large float32 temporary per step.
  :func:`~sb3_sacae.accel.reconstruction.sliced_loss_applies`: the CPU.
- :func:`~sb3_sacae.accel.norms.norms`: the gradients' norms of the finite-gradient check in one fused call instead
  of one per parameter tensor. :func:`~sb3_sacae.accel.norms.foreach_norm_applies`: the CPU and CUDA.
- :class:`~sb3_sacae.accel.device_frames.DeviceFrames` (``FrameStackReplayBuffer(frames_on_device=...)``): a copy of
  the replay buffer's frames in the GPU's memory, so that sampled stacks are gathered there instead of on one CPU
  core and copied over; the rest of each batch is sent from pinned host memory without waiting for the GPU
  (:func:`~sb3_sacae.accel.device_frames.to_device`). :func:`~sb3_sacae.accel.device_frames.device_frames_apply`:
  CUDA devices with room for it.
- :mod:`~sb3_sacae.accel.sync_free`: the update's finite checks kept on the device, skipping a failed optimizer step
  there, and read once per ``train()`` call instead of before every step (each host read stalls a GPU's queue).
  :func:`~sb3_sacae.accel.sync_free.deferred_checks_apply`: CUDA, with fused optimizers.
- :func:`~sb3_sacae.accel.bf16.bf16_kernels_available`: not a kernel but a check, whether a device has the bfloat16
  kernels that make ``bf16_autocast`` fast (SACAE warns where it has not: the fallback is many times slower).
- :func:`tune_malloc`: an explicit, process-wide opt-in. It fixes glibc's mmap threshold and keeps freed heap for
  reuse, so the update's large temporaries are recycled instead of being mapped and page-faulted afresh on every
  gradient step. Nothing in the package calls it: building or loading a model never changes process-wide settings.

The dequantisation noise of the reconstruction target (8 bits per pixel, 8 pixels per 64-bit draw of torch's
generator, :func:`~sb3_sacae.reconstruction.uniform_bytes`) is cheaper than a float per pixel too, but it defines the
random stream the target is drawn from, so it is part of the algorithm, the same on every path and device.
"""

from sb3_sacae.accel.malloc import tune_malloc

__all__ = ["tune_malloc"]
