"""Inference settings: bf16 only where native and checked, the allocator tuned once, fp32 by default here."""

from __future__ import annotations

import pytest
import torch

from hqnn_desktop.core import runtime

PASSED = {"precision_check": {"bf16": {"agreement": 0.998, "max_macro_f1_delta": 0.001}}}
FAILED = {"precision_check": {"bf16": {"agreement": 0.990, "max_macro_f1_delta": 0.001}}}


@pytest.mark.parametrize("card, native, expected", [
    ({}, True, "fp32"),            # never checked: fp32 even on a bf16 processor
    (FAILED, True, "fp32"),        # checked and failed
    (PASSED, False, "fp32"),       # checked, but the processor would emulate bf16
    (PASSED, True, "bf16"),
])
def test_auto_precision_needs_native_bf16_and_a_passed_check(card, native, expected, monkeypatch):
    monkeypatch.delenv("HQNN_PRECISION", raising=False)
    monkeypatch.setattr(runtime, "native_bf16", lambda device: native)
    assert runtime.choose_precision(card, torch.device("cpu")) == expected


def test_precision_can_be_forced_and_bad_names_are_refused(monkeypatch):
    monkeypatch.setenv("HQNN_PRECISION", "fp32")
    monkeypatch.setattr(runtime, "native_bf16", lambda device: True)
    assert runtime.choose_precision(PASSED, torch.device("cpu")) == "fp32"
    assert runtime.choose_precision({}, torch.device("cpu"), "bf16") == "bf16"
    with pytest.raises(ValueError, match="fp32"):
        runtime.choose_precision({}, torch.device("cpu"), "half")


def test_allocator_is_tuned_once_on_glibc(monkeypatch):
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    first = runtime.tune_allocator()
    assert runtime.tune_allocator() is first
    import platform

    if platform.libc_ver()[0] == "glibc":
        assert first is True
