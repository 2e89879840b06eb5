"""Where and in which precision the network runs: device choice, autocast, memory layout.

The statistics and losses always run in float32; only the backbone's convolutions run under
autocast. By default bfloat16 is used where it was measured to be faster (``benchmarks/README.md``,
precision): on x86 CPUs with AMX or AVX512-BF16, while the Gram matrices, formed in float32 from
the bf16 activations, stay accurate. On CUDA GPUs the default is float32: there a run is bound by
kernel launches and small operations rather than by tensor-core arithmetic, and bf16 was not faster.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Literal

import torch
from torch import nn

Precision = Literal["auto", "fp32", "bf16", "fp16"]
PRECISIONS: dict[str, torch.dtype | None] = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


class InsufficientMemoryError(MemoryError, ValueError):
    """A run would need more memory than the device has; the message suggests a size that fits."""


def available_bytes(device: torch.device | str) -> int | None:
    """Free memory of ``device`` in bytes, or None when it cannot be told.

    CUDA: ``torch.cuda.mem_get_info``. CPU: ``MemAvailable`` of /proc/meminfo (Linux), else
    psutil if installed, else free physical pages from ``os.sysconf``.
    """
    device = torch.device(device)
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    if device.type != "cpu":
        return None
    try:
        with open("/proc/meminfo") as file:
            for line in file:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        import psutil  # optional
        return int(psutil.virtual_memory().available)
    except (ImportError, OSError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """``"auto"`` or None -> CUDA when available, else the CPU; other values are checked."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as error:
        raise ValueError(f"Unknown device {device!r}; use 'auto', 'cpu' or 'cuda'.") from error
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={str(device)!r} was asked for but no CUDA GPU is available; use device='cpu' or "
                         "'auto'.")
    if resolved.type == "cuda" and resolved.index is not None and resolved.index >= torch.cuda.device_count():
        raise ValueError(f"device={str(device)!r}: there are only {torch.cuda.device_count()} CUDA GPUs (numbered from "
                         "0); use 'cuda' or 'auto'.")
    if resolved.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device={str(device)!r}: Apple's MPS is not available here; use device='cpu' or 'auto'.")
    return resolved


@functools.lru_cache(maxsize=1)
def cpu_has_fast_bf16() -> bool:
    """True when the CPU multiplies bf16 matrices natively (Intel AMX or AVX512-BF16)."""
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:  # not Linux: no cheap way to ask, stay in fp32
        return False
    return ("amx_bf16" in flags or "avx512_bf16" in flags) and torch.backends.mkldnn.is_available()


def autocast_dtype(device: torch.device, precision: Precision = "auto") -> torch.dtype | None:
    """The dtype the backbone runs in under autocast, or None for plain float32.

    ``auto`` picks what was measured to be faster on the device (``benchmarks/README.md``): bf16
    on CPUs with native bf16, fp32 on CUDA GPUs and everywhere else. fp16 is only offered on CUDA
    (on the CPU it is emulated and slower than fp32).
    """
    if precision == "auto":
        return torch.bfloat16 if device.type == "cpu" and cpu_has_fast_bf16() else None
    if precision not in PRECISIONS:
        raise ValueError(f"Unknown precision {precision!r}; choose one of 'auto', {', '.join(map(repr, PRECISIONS))}.")
    if precision == "fp16" and device.type != "cuda":
        raise ValueError("precision='fp16' needs a CUDA GPU; on the CPU use 'bf16' or 'fp32'.")
    return PRECISIONS[precision]


def prepare_for_speed(backbone: nn.Module) -> None:
    """Channels-last weights (faster convolutions on CPU and on tensor-core GPUs).

    The weights keep their values; only their memory layout changes. cuDNN's autotuner
    (``torch.backends.cudnn.benchmark``) is left as the user set it (off by default): it tries
    algorithms with workspaces of tens of GiB for a small gain per evaluation
    (``benchmarks/gpu_memory.py``; the numbers in ``benchmarks/README.md``).
    """
    backbone.to(memory_format=torch.channels_last)
