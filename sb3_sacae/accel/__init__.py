"""
Speed pieces that exist only to be fast on some hardware, kept apart from the algorithm.

- :func:`tune_malloc`: an explicit, process-wide opt-in. It fixes glibc's mmap threshold and keeps freed heap for
  reuse, so the update's large temporaries are recycled instead of being mapped and page-faulted afresh on every
  gradient step. Nothing in the package calls it: building or loading a model never changes process-wide settings.
- :class:`~sb3_sacae.accel.onednn.OneDNNLinear`: a drop-in ``nn.Linear`` whose float32 matmuls on CPU run on oneDNN
  instead of the BLAS library (the same math in another summation order), for CPUs where the BLAS library is slow
  for the MLPs' shapes. :func:`~sb3_sacae.accel.onednn.onednn_linear_applies` selects it per device: any device other
  than the CPU, and torch builds without oneDNN, take plain ``F.linear``. ``policy_kwargs=dict(onednn_linear=False)``
  turns it off.
- :class:`~sb3_sacae.accel.deconv.DeconvLayer`: a drop-in ``nn.ConvTranspose2d`` for the decoder whose backward runs
  as regular convolutions, which oneDNN computes faster than its transposed-convolution backward.
  :func:`~sb3_sacae.accel.deconv.deconv_backward_applies` selects it per device: other devices run the plain layer.
"""

from sb3_sacae.accel.malloc import tune_malloc

__all__ = ["tune_malloc"]
