"""
Speed pieces that exist only to be fast on some hardware, kept apart from the algorithm.

- :func:`tune_malloc`: an explicit, process-wide opt-in. It fixes glibc's mmap threshold and keeps freed heap for
  reuse, so the update's large temporaries are recycled instead of being mapped and page-faulted afresh on every
  gradient step. Nothing in the package calls it: building or loading a model never changes process-wide settings.
"""

from sb3_sacae.accel.malloc import tune_malloc

__all__ = ["tune_malloc"]
