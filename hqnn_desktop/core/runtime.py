"""Process-level settings that decide how fast inference runs: the allocator and the precision.

Measured on this project's 2-core test machine (``make bench``): with glibc's
default thresholds about a third of inference CPU time was system time spent
handing activation buffers back to the kernel and faulting them in again on the
next batch. Raising the mmap and trim thresholds keeps those buffers in the
heap, which is what :func:`tune_allocator` does once per process.

bfloat16 autocast is used only where the processor computes it natively (on
other CPUs it is emulated, about ten times slower here) and only for packs whose
card records a passed bf16 check (``scripts/check_precision.py``): the same
predictions as fp32 on at least 99.5 % of validation images and macro-F1 within
0.002.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

import torch

#: glibc ``mallopt`` parameters (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
#: Buffers up to this size stay in the heap instead of being mapped and unmapped per batch.
ALLOCATOR_THRESHOLD = 1 << 30

#: Thresholds a pack's bf16 check must meet (issue: speed and robustness).
BF16_MIN_AGREEMENT = 0.995
BF16_MAX_F1_DELTA = 0.002

_tuned: bool | None = None


def tune_allocator() -> bool:
    """Raise glibc's mmap and trim thresholds once; False where the C library is not glibc.

    Honours ``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_TRIM_THRESHOLD_`` if the user
    set them (then nothing is changed).
    """
    global _tuned
    if _tuned is not None:
        return _tuned
    _tuned = False
    if not sys.platform.startswith("linux") or "MALLOC_MMAP_THRESHOLD_" in os.environ \
            or "MALLOC_TRIM_THRESHOLD_" in os.environ:
        return _tuned
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others have no mallopt
        return _tuned
    _tuned = bool(mallopt(_M_MMAP_THRESHOLD, ALLOCATOR_THRESHOLD)) and bool(
        mallopt(_M_TRIM_THRESHOLD, ALLOCATOR_THRESHOLD))
    return _tuned


def native_bf16(device: torch.device) -> bool:
    """True when ``device`` computes bfloat16 in hardware (CUDA with bf16, or CPUs with AVX512-BF16/AMX)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    return False


def bf16_check_passed(card: dict) -> bool:
    """Whether the pack's recorded bf16 check met the agreement and macro-F1 thresholds."""
    check = card.get("precision_check", {}).get("bf16", {})
    return bool(check) and check.get("agreement", 0.0) >= BF16_MIN_AGREEMENT and \
        check.get("max_macro_f1_delta", 1.0) <= BF16_MAX_F1_DELTA


def choose_precision(card: dict, device: torch.device, requested: str = "auto") -> str:
    """``"bf16"`` or ``"fp32"`` for a pack on a device.

    ``auto`` (the default, or ``$HQNN_PRECISION``) takes bf16 only where it is
    native and the pack passed its check; ``fp32``/``bf16`` force a choice
    (bf16 is still refused where the device cannot compute it at all).
    """
    requested = os.environ.get("HQNN_PRECISION", requested) if requested == "auto" else requested
    if requested not in ("auto", "fp32", "bf16"):
        raise ValueError(f"Unknown precision {requested!r}; choose auto, fp32 or bf16.")
    if requested == "fp32" or device.type not in ("cpu", "cuda"):
        return "fp32"
    if requested == "bf16":
        return "bf16"
    return "bf16" if native_bf16(device) and bf16_check_passed(card) else "fp32"
