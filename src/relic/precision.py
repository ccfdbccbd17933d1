"""Compute precision of inference: bf16 where the device runs it natively, fp32 elsewhere.

bf16 autocast is ~5x faster than fp32 on a CPU with AVX-512 (BF16) or AMX, and on bf16 GPUs. On a CPU
without them (AVX2 only: most laptops) bf16 matmuls are emulated and run several times *slower* than fp32
(measured: docs/benchmarks.md). ``"auto"`` picks per device:

* CUDA: bf16 if :func:`torch.cuda.is_bf16_supported`;
* CPU: bf16 if oneDNN has bf16 kernels for this CPU (``torch.ops.mkldnn._is_mkldnn_bf16_supported``:
  AVX-512 BW/VL/DQ on x86, BF16 on Arm), else fp32 (when that probe is missing: bf16 only on ``AVX512``
  per :func:`torch.backends.cpu.get_cpu_capability`);
* any other device: fp32.
"""

from __future__ import annotations

from typing import Literal

import torch

PRECISIONS = ("auto", "bf16", "fp32")


def bf16_is_fast(device: str | torch.device = "cpu") -> bool:
    """Whether ``device`` has native bf16 matmul kernels (see the module docstring)."""
    device = torch.device(device)
    if device.type == "cuda":
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    if device.type != "cpu":
        return False
    return cpu_bf16_kernels()


def cpu_bf16_kernels() -> bool:
    """oneDNN's own check for bf16 kernels on this CPU (fallback: the ATen CPU capability is AVX-512)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return torch.backends.cpu.get_cpu_capability().startswith("AVX512")


def resolve_precision(precision: str, device: str | torch.device = "cpu") -> Literal["bf16", "fp32"]:
    """``"bf16"`` / ``"fp32"`` as given; ``"auto"``: bf16 when :func:`bf16_is_fast` on ``device``, else fp32."""
    if precision == "auto":
        return "bf16" if bf16_is_fast(device) else "fp32"
    if precision in ("bf16", "fp32"):
        return precision  # type: ignore[return-value]
    raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
