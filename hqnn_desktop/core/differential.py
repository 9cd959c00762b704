"""The differential count of one review: counts per class, pre-classified beside verified, and agreement.

Pre-classification counts cover every usable cell of the folder; verified counts,
agreement and Cohen's kappa cover the cells verified so far (all of them once the
review is finished). Per class, for each model:

* ``kept``: of the verified cells the model put in this class, the share the
  reviewer left there (the model's precision for that class);
* ``found``: of the cells the reviewer verified as this class, the share the
  model had put there (its sensitivity).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .metrics import cohen_kappa, confusion_matrix
from .review import Review
from .storage import atomic_path


@dataclass
class ClassCount:
    """One line of the differential."""

    label: str
    verified: int
    pre: dict[str, int]
    kept: dict[str, float | None]
    found: dict[str, float | None]


@dataclass
class Differential:
    """Counts per class and agreement per model of one review."""

    folder: str
    pack: str
    models: tuple[str, ...]
    rows: list[ClassCount]
    n_cells: int
    n_verified: int
    n_unusable: int
    agreement: dict[str, float | None]
    kappa: dict[str, float | None]
    #: cells left out because their picture is no longer where it was (see :meth:`Review.missing_pictures`)
    n_missing: int = 0

    def verified_pct(self, row: ClassCount) -> float | None:
        return 100.0 * row.verified / self.n_verified if self.n_verified else None

    def pre_pct(self, row: ClassCount, model: str) -> float | None:
        return 100.0 * row.pre[model] / self.n_cells if self.n_cells else None


def _share(num: int, den: int) -> float | None:
    return num / den if den else None


def differential(review: Review, missing: Collection[str] = ()) -> Differential:
    """Count a review: pre-classified per model, verified, agreement and kappa.

    The cells in ``missing`` (pictures no longer where they were) are not counted, only numbered
    apart in ``n_missing``: a report must not count what it can no longer show, nor pass them off
    as usable. Their decisions stay in the review.
    """
    n = len(review.labels)
    index = {label: i for i, label in enumerate(review.labels)}
    present = np.array([c.path not in missing for c in review.cells], dtype=bool)
    verified = [(c, label) for c, label in review.verified_cells() if c.path not in missing]
    truth = np.array([index[label] for _, label in verified], dtype=int)
    truth_counts = np.bincount(truth, minlength=n)
    pre_counts, matrices, agreement, kappa = {}, {}, {}, {}
    for m in review.models:
        pre_counts[m] = np.bincount(review.predictions(m)[present], minlength=n)
        pred = np.array([c.pred[m] for c, _ in verified], dtype=int)
        matrices[m] = confusion_matrix(truth, pred, n)
        agreement[m] = float((pred == truth).mean()) if len(truth) else None
        kappa[m] = cohen_kappa(truth, pred, n)
    rows = []
    for k, label in enumerate(review.labels):
        rows.append(ClassCount(
            label=label, verified=int(truth_counts[k]),
            pre={m: int(pre_counts[m][k]) for m in review.models},
            kept={m: _share(int(matrices[m][k, k]), int(matrices[m][:, k].sum())) for m in review.models},
            found={m: _share(int(matrices[m][k, k]), int(matrices[m][k].sum())) for m in review.models}))
    return Differential(review.folder, review.pack, review.models, rows, int(present.sum()), len(verified),
                        len(review.unusable), agreement, kappa, len(review.cells) - int(present.sum()))


def _fmt(value: float | None, digits: int = 4) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def write_differential_csv(path: str | os.PathLike, diff: Differential) -> Path:
    """One line per class and a final ``all`` line; kappa only on the ``all`` line (it is not per class)."""
    header = ["class", "verified_n", "verified_pct"]
    for m in diff.models:
        header += [f"{m}_n", f"{m}_pct", f"{m}_kept", f"{m}_found", f"{m}_kappa"]
    lines = []
    for row in diff.rows:
        line = [row.label, row.verified, _fmt(diff.verified_pct(row), 2)]
        for m in diff.models:
            line += [row.pre[m], _fmt(diff.pre_pct(row, m), 2), _fmt(row.kept[m]), _fmt(row.found[m]), ""]
        lines.append(line)
    total = ["all", diff.n_verified, "100.00" if diff.n_verified else ""]
    for m in diff.models:
        total += [diff.n_cells, "100.00" if diff.n_cells else "", _fmt(diff.agreement[m]),
                  _fmt(diff.agreement[m]), _fmt(diff.kappa[m])]
    lines.append(total)
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(lines)
    return Path(path)
