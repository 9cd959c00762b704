"""Which cells to verify first: the ones whose verification tells the reviewer and the models most.

Uncertainty sampling, as in active learning: a cell scores high when the models
hesitate (small margin between their two best classes), when they disagree with
one another, and when the pack flags it as unlike its training data. These are
the cells most likely to be misclassified, so checking them first corrects the
count fastest, and, fed back as corrections, they teach the heads the most.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .review import Cell, Review

#: weights of the three signals; each signal lies in [0, 1]
WEIGHTS = {"margin": 1.0, "disagreement": 1.5, "unlike": 0.5}


def margin(p: np.ndarray) -> float:
    """Top probability minus the runner-up: near 0 when the model hesitates between two classes."""
    top = np.sort(np.asarray(p, float))[-2:]
    return float(top[-1] - top[0]) if len(top) == 2 else 1.0


def review_priority(proba: dict[str, np.ndarray], unlike: bool | None) -> float:
    """How much verifying one cell would help (0 = models sure and unanimous, about 3 at most)."""
    if not proba:
        return 0.0
    hesitation = 1.0 - float(np.mean([margin(p) for p in proba.values()]))
    votes = Counter(int(np.argmax(p)) for p in proba.values())
    dissent = 1.0 - max(votes.values()) / len(proba)
    dissent = dissent / (1.0 - 1.0 / len(proba)) if len(proba) > 1 else 0.0
    return (WEIGHTS["margin"] * hesitation + WEIGHTS["disagreement"] * dissent
            + WEIGHTS["unlike"] * float(bool(unlike)))


def suggest_next(review: Review, n: int = 1) -> list[Cell]:
    """The ``n`` not yet verified cells whose verification would help most."""
    todo = [c for c in review.cells if review.verified(c.path) is None]
    return sorted(todo, key=lambda c: (-c.priority, c.path))[:n]
