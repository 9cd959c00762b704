"""Corrections feed training: a review's verified cells as a manifest of labelled images.

The manifest lists every verified cell (``path,label``, images left where they
are): the reclassified ones teach the models their mistakes, the accepted ones
keep them from forgetting what they already did right. The Training tab reads it
as a dataset (alone or added to a folder), and :mod:`core.finetune` fine-tunes a
pack's heads on it. Light on purpose (no torch), so saving is instant.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

from .datasets import MANIFEST_COLUMNS, DatasetError
from .paths import data_dir
from .review import Review
from .storage import atomic_path


def corrections_dir() -> Path:
    return data_dir() / "corrections"


def default_manifest_path(review: Review) -> Path:
    """Where a review's corrections go unless the user chooses: next to the review file."""
    return corrections_dir() / f"{Path(review.folder).name or 'images'}-{review.file.stem}.csv"


def write_manifest(review: Review, path: str | os.PathLike | None = None) -> Path:
    """Write the verified cells of ``review`` as a ``path,label`` manifest (atomically).

    File names that are not valid UTF-8 are written byte for byte, so they still open.
    """
    verified = review.verified_cells()
    if not verified:
        raise DatasetError("No cell has been verified yet, so there are no corrections to save.")
    path = Path(path) if path else default_manifest_path(review)
    with (atomic_path(path) as tmp,
          open(tmp, "w", newline="", encoding="utf-8", errors="surrogateescape") as fh):
        writer = csv.writer(fh)
        writer.writerow(MANIFEST_COLUMNS)
        writer.writerows([cell.path, label] for cell, label in verified)
    return path


