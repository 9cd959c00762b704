"""Orientation averaging: classify each picture also turned and mirrored, and average.

A cell under the microscope has no up or down, so a picture turned by a quarter turn or mirrored
shows the same cell; a model trained with random rotations is still not exactly indifferent to
them. Averaging its probabilities over the 4 quarter turns, or over those and their mirror images
(8), removes what is left of that and costs one backbone pass per orientation. Whether a pack uses
it is decided on its validation images (by ``train``, or ``training/compare_tta.py`` for the bundled
packs) and recorded in its card; the engine follows the card unless told otherwise.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

#: How many orientations may be averaged: as it is; the quarter turns; those and their mirror images.
CHOICES = (1, 4, 8)
#: Each orientation as (quarter turns anticlockwise, mirrored), the picture as it is first.
ORIENTATIONS = tuple((k, mirrored) for mirrored in (False, True) for k in range(4))
#: What each count beyond one looks at, in words.
SEEN = {4: "the picture's 4 quarter turns", 8: "the picture's 4 quarter turns and their mirror images"}
#: The smallest gain in mean validation macro-F1 over one orientation that pays for the extra passes.
MIN_GAIN = 0.002
RULE = f"the best mean validation macro-F1 over the models, if at least {MIN_GAIN} above one orientation"


def choose(scores: dict[str, dict[str, float]]) -> int:
    """The count whose mean validation macro-F1 over the models is best (the smaller on a tie), if it
    gains :data:`MIN_GAIN` over one orientation; else 1. ``scores``: count (as text) -> model -> F1."""
    mean = {int(count): sum(per_model.values()) / len(per_model) for count, per_model in scores.items()}
    best = max(mean, key=lambda c: (mean[c], -c))
    return best if mean[best] - mean[1] >= MIN_GAIN else 1


def describe(count: int) -> str:
    """The orientations in words, for listings and the model card."""
    return "each picture as it is" if count == 1 else f"averaged over {SEEN[count]}"


def card_orientations(card: dict) -> int:
    """How many orientations the pack's card asks for (1 when it says nothing)."""
    entry = card.get("orientations")
    return int(entry["count"]) if isinstance(entry, dict) and entry.get("count") in CHOICES else 1


def averaged_scores(card: dict) -> dict[str, float]:
    """Each model's validation macro-F1 with the card's orientations averaged, as recorded when they
    were chosen; empty for a pack that averages none, or whose card does not give them."""
    count = card_orientations(card)
    scores = card["orientations"].get("validation_macro_f1", {}) if count > 1 else {}
    per_model = scores.get(str(count)) if isinstance(scores, dict) else None
    if not isinstance(per_model, dict):
        return {}
    return {m: v for m, v in per_model.items() if isinstance(v, int | float) and not isinstance(v, bool)}


def check_count(count: object) -> None:
    """ValueError in words unless ``count`` is one of :data:`CHOICES`."""
    if count not in CHOICES or isinstance(count, bool):
        raise ValueError(f"Orientations must be one of {', '.join(map(str, CHOICES))}, not {count}.")


def card_orientations_problem(card: dict) -> str | None:
    """What is wrong with the card's orientation entry, or None (absent is fine: 1)."""
    entry = card.get("orientations")
    if entry is None:
        return None
    if not isinstance(entry, dict) or isinstance(entry.get("count"), bool) or entry.get("count") not in CHOICES:
        return f"its orientation averaging is not one of {', '.join(map(str, CHOICES))} orientations"
    return None


def views(batch: np.ndarray, count: int) -> Iterator[np.ndarray]:
    """The first ``count`` orientations of a square NHWC batch, the batch as it is first."""
    check_count(count)
    yield batch
    for k, mirrored in ORIENTATIONS[1:count]:
        turned = np.rot90(batch, k, axes=(1, 2))
        yield np.ascontiguousarray(turned[:, :, ::-1] if mirrored else turned)
