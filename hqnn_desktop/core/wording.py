"""Wording shared by the window, the command line and the core's messages."""

from __future__ import annotations


def counted(n: int, noun: str) -> str:
    """``n`` and the noun, singular for one ("1 layer", "2 layers"): "1 layers" reads as a slip."""
    return f"{n} {noun}{'' if n == 1 else 's'}"
