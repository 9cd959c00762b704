"""What the one-page review report says (the GUI paints it): pack summary, thumbnails, notice.

Kept apart from the painting so the content is plain data, testable without Qt.
"""

from __future__ import annotations

from .kinds import MODEL_TITLES
from .review import Review

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


def report_thumbnails(review: Review, model: str, per_class: int = 4) -> dict[str, list[str]]:
    """A handful of images per class: verified cells first, then the surest pre-classified ones."""
    out = {}
    for label, cells in review.groups(model).items():
        verified = [c for c in cells if review.verified(c.path)]
        others = sorted((c for c in cells if not review.verified(c.path)), key=lambda c: c.priority)
        out[label] = [c.path for c in (verified + others)[:per_class]]
    return out
