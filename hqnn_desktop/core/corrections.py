"""Corrections feed training: a review's verified cells as a manifest of labelled images.

The manifest lists every verified cell (``path,label``, images left where they
are): the reclassified ones teach the models their mistakes, the accepted ones
keep them from forgetting what they already did right. A verified picture no
longer where it was (moved, renamed or deleted) is left out and the user told
how many; its decision stays in the review. The Training tab reads it
as a dataset (alone or added to a folder), and :mod:`core.finetune` fine-tunes a
pack's heads on it. Light on purpose (no torch), so saving is instant.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

from .datasets import MANIFEST_COLUMNS, DatasetError
from .paths import data_dir
from .review import Review, no_longer_there
from .storage import atomic_path


def corrections_dir() -> Path:
    return data_dir() / "corrections"


def default_manifest_path(review: Review) -> Path:
    """Where a review's corrections go unless the user chooses: next to the review file."""
    return corrections_dir() / f"{Path(review.folder).name or 'images'}-{review.file.stem}.csv"


def write_manifest(review: Review, path: str | os.PathLike | None = None,
                   left_out: list[str] | None = None) -> Path:
    """Write the verified cells of ``review`` as a ``path,label`` manifest (atomically).

    A verified picture no longer where it was is not listed (training would find nothing
    there) but goes to ``left_out``, for the user to be told; the review keeps its decision,
    so the next manifest lists it again once the picture is back. File names that are not
    valid UTF-8 are written byte for byte, so they still open.
    """
    verified = review.verified_cells()
    if not verified:
        raise DatasetError("No cell has been verified yet, so there are no corrections to save.")
    missing = set(review.missing_pictures())
    gone = [cell.path for cell, _ in verified if cell.path in missing]
    if len(gone) == len(verified):
        one = len(gone) == 1
        stays = "its decision stays" if one else "their decisions stay"
        raise DatasetError(f"{'The' if one else 'All'} {no_longer_there(len(gone), 'verified picture')}, so "
                           f"there are no corrections to save; {stays} in the review.")
    if left_out is not None:
        left_out.extend(gone)
    path = Path(path) if path else default_manifest_path(review)
    with (atomic_path(path) as tmp,
          open(tmp, "w", newline="", encoding="utf-8", errors="surrogateescape") as fh):
        writer = csv.writer(fh)
        writer.writerow(MANIFEST_COLUMNS)
        writer.writerows([cell.path, label] for cell, label in verified if cell.path not in missing)
    return path


def left_out_of_corrections(left_out: list[str]) -> str:
    """The sentence about the verified pictures :func:`write_manifest` left out ('' when none):
    a user who counts on them for fine-tuning should know, and know they are not lost."""
    if not left_out:
        return ""
    one = len(left_out) == 1
    stays = "its decision stays" if one else "their decisions stay"
    return (f"{no_longer_there(len(left_out), 'verified picture')}, for example {Path(left_out[0]).name}, and "
            f"{'is' if one else 'are'} left out of the corrections; {stays} in the review.")
