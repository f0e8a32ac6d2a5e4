"""
Whether a device has bfloat16 kernels for ``bf16_autocast``'s convolutions.

``bf16_autocast=True`` computes the same values on every device, but its speed depends on the hardware: on a CPU
without oneDNN's bfloat16 kernels (they need AVX-512 BW, VL and DQ, or AVX-NE-CONVERT) torch runs bfloat16
convolutions on a reference fallback, many times slower than float32, and GPUs before NVIDIA's Ampere only emulate
bfloat16. :func:`bf16_kernels_available` says which case a device is in; SACAE warns when ``bf16_autocast`` is asked
for where it is not.
"""

import torch as th


def bf16_kernels_available(device: th.device | str) -> bool:
    """Whether ``device`` runs bfloat16 convolutions on native kernels (oneDNN's on the CPU, tensor cores on CUDA)."""
    device = th.device(device)
    if device.type == "cpu":
        try:
            return bool(th.ops.mkldnn._is_mkldnn_bf16_supported())  # the CPU flags oneDNN's bfloat16 kernels need
        except (AttributeError, RuntimeError):  # a torch build without oneDNN
            return False
    if device.type == "cuda":
        return bool(th.cuda.is_bf16_supported(including_emulation=False))
    return True


def bf16_fallback_warning(device: th.device | str) -> str:
    """The warning for ``bf16_autocast=True`` on a device without bfloat16 kernels: why it is slow, and the fix."""
    device = th.device(device)
    if device.type == "cpu":
        why = (
            f"this CPU (torch capability {th.backends.cpu.get_cpu_capability()}) has no oneDNN bfloat16 kernels, "
            "which need AVX-512 BW/VL/DQ or AVX-NE-CONVERT, so the bfloat16 convolutions run on torch's fallback"
        )
    else:
        why = f"{device} only emulates bfloat16 (native bfloat16 needs an NVIDIA Ampere GPU or newer)"
    return (
        f"bf16_autocast=True: {why}, many times slower than float32 (the same values either way). Pass "
        "bf16_autocast=False on this machine."
    )
