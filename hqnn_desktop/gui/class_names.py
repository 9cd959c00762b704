"""Class names as plot axes show them."""

from __future__ import annotations

#: Up to this many classes, axes show whole names; beyond, neighbouring names run together.
WHOLE_NAMES_UP_TO = 4


def axis_names(labels: list[str]) -> list[str]:
    """Whole names for a few classes, their first three letters for more (PBC: bas, eos, ery, ig, ...)."""
    return list(labels) if len(labels) <= WHOLE_NAMES_UP_TO else [lab[:3] for lab in labels]
