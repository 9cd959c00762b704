"""What the one-page review report says (the GUI paints it): counts, pack summary, thumbnails, notice.

Kept apart from the painting so the content is plain data, testable without Qt.
Pictures no longer where they were when the report is made (moved, renamed or
deleted) are left out of it and numbered apart, so that it neither counts nor
leaves a blank for what it cannot show.
"""

from __future__ import annotations

from collections.abc import Collection

from .differential import Differential
from .kinds import MODEL_TITLES
from .review import Review, no_longer_there

NOTICE = "Research use only — not for diagnosis."


def card_summary_lines(card: dict | None) -> list[str]:
    """A few plain lines about the pack: what it is, its data, its models and validation figures."""
    if not card:
        return ["The model card of this pack is not available."]
    data = card.get("data", {})
    lines = [f"Pack: {card.get('title', card.get('name', ''))} ({card.get('name', '')})",
             f"Data: {data.get('source') or data.get('description', 'not stated')}",
             (f"Backbone {card.get('backbone', '?')} at {card.get('input_size', '?')} px; "
              f"circuit {card.get('n_qubits', '?')} qubits x {card.get('layers', '?')} layers")]
    models = card.get("metrics", {}).get("validation", {}).get("models", {})
    if models:
        lines.append("Validation macro-F1: " + ", ".join(
            f"{MODEL_TITLES.get(k, k)} {v.get('macro_f1', 0):.3f}" for k, v in models.items()))
    used = card.get("training", {}).get("corrections") or []
    if used:
        lines.append("Fine-tuned on corrections: " + ", ".join(f"{u['count']} cells ({u['sha256'][:12]})"
                                                               for u in used))
    lines.append(f"Intended use: {card.get('intended_use', 'research only')}")
    return lines


def summary_lines(diff: Differential, model: str) -> list[str]:
    """The lines under the report's title: what was counted and, on a line of its own, how many
    pictures are no longer there (a count that shrank without a word would mislead)."""
    counts = (f"{diff.n_cells} cell{'' if diff.n_cells == 1 else 's'}, {diff.n_verified} verified, "
              f"{diff.n_unusable} image{'' if diff.n_unusable == 1 else 's'} not usable · pre-classified by the "
              f"pack {diff.pack}; thumbnails grouped by {MODEL_TITLES[model]}")
    lines = [counts]
    if diff.n_missing:
        lines.append(f"{no_longer_there(diff.n_missing)} and {'is' if diff.n_missing == 1 else 'are'} "
                     "left out of this report.")
    return lines


def report_thumbnails(review: Review, model: str, per_class: int = 4,
                      missing: Collection[str] = ()) -> dict[str, list[str]]:
    """A handful of images per class: verified cells first, then the surest pre-classified ones;
    none of those in ``missing`` (no longer where they were), which would only leave blanks."""
    out = {}
    for label, group in review.groups(model).items():
        cells = [c for c in group if c.path not in missing]
        verified = [c for c in cells if review.verified(c.path)]
        others = sorted((c for c in cells if not review.verified(c.path)), key=lambda c: c.priority)
        out[label] = [c.path for c in (verified + others)[:per_class]]
    return out
