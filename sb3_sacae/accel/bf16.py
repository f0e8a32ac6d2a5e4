"""
Whether a device has bfloat16 kernels for ``bf16_autocast``'s convolutions.

``bf16_autocast=True`` computes the same values on every device, but its speed depends on the hardware. On a CPU for
which oneDNN has no bfloat16 kernels (on x86, those need AVX-512 BW/VL/DQ or AVX-NE-CONVERT) torch runs bfloat16
convolutions on a reference fallback, measured many times slower than float32 on an AVX2 machine (the performance
page); GPUs before NVIDIA's Ampere have no native bfloat16 and only emulate it. :func:`bf16_kernels_available` says
which case a device is in; ``SACAE.learn()`` warns when ``bf16_autocast`` trains images where it is not.
"""

import torch as th


def bf16_kernels_available(device: th.device | str) -> bool:
    """Whether ``device`` runs bfloat16 convolutions on native kernels (oneDNN's on the CPU, native bfloat16 on CUDA)."""
    device = th.device(device)
    if device.type == "cpu":
        try:
            return bool(th.ops.mkldnn._is_mkldnn_bf16_supported())  # oneDNN's own check of the CPU's flags
        except (AttributeError, RuntimeError):  # a torch build without oneDNN
            return False
    if device.type == "cuda":
        # this device's compute capability (is_bf16_supported() asks about the current device, whichever the model is on)
        return bool(th.version.hip) or th.cuda.get_device_properties(device).major >= 8
    return True


def bf16_fallback_warning(device: th.device | str) -> str:
    """The warning for ``bf16_autocast=True`` on a device without bfloat16 kernels: why it is slow, and the fix."""
    device = th.device(device)
    if device.type == "cpu":
        why = (
            f"oneDNN has no bfloat16 kernels for this CPU (torch capability {th.backends.cpu.get_cpu_capability()}), "
            "so the bfloat16 convolutions run on torch's fallback, which can be many times slower than float32"
        )
    else:
        why = f"{device} has no native bfloat16 (NVIDIA GPUs have it from Ampere on) and only emulates it"
    return (
        f"bf16_autocast=True: {why}; the values are the same either way. Train with bf16_autocast=False on this "
        "machine (a saved model: SACAE.load(path, bf16_autocast=False))."
    )
