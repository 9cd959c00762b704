"""Verification of pre-classified cells: the state of one review, its undo history and its file.

The laboratory workflow of CellaVision-type analysers: the models pre-classify
every cell, a technologist accepts or reclassifies each one, and the verified
differential count is the result. A :class:`Review` holds the pre-classification
of one folder (one smear), the verified label of every cell decided so far, and
an undo/redo history whose steps can touch many cells at once (accepting a whole
class group is one step).

Every decision is written at once, atomically, to one JSON file per folder and
pack in ``data_dir()/reviews/`` (named by a hash of the folder's absolute path
and the pack's name), so closing the app or a crash loses nothing and reopening
the folder restores every decision. When another window (or another copy of the
app) has written the same file meanwhile, a save applies only this window's new
step on top of what the file holds, so neither window drops the other's work.
Reviewing the same folder with another pack is another review in another file:
the cells verified under the first pack stay on disk untouched. The file also
keeps the predictions, so a saved review can be reopened and counted without
classifying the images again. Free of Qt.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .inputs import ImageResult, Window
from .paths import data_dir
from .results import image_flags
from .storage import atomic_write_text, damaged_backup_name, exclusive
from .suggest import review_priority

FORMAT = "hqnn-review/1"

log = logging.getLogger(__name__)


class ReviewError(ValueError):
    """A review that cannot be started or read, explained for the user."""


class NewerReviewError(ReviewError):
    """A review file written by a newer version of the app: left exactly as it is."""


@dataclass
class Cell:
    """One usable image as the models pre-classified it."""

    path: str
    pred: dict[str, int]
    conf: dict[str, float]
    #: how much verifying this cell would help: higher first (see :mod:`core.suggest`)
    priority: float = 0.0
    flags: list[str] = field(default_factory=list)
    #: for packs that centre on the stained cell: where the models looked (``ImageResult.window``)
    window: Window | None = None


@dataclass(frozen=True)
class Change:
    """One cell's verified label before and after a step (None: not verified)."""

    path: str
    before: str | None
    after: str | None


def reviews_dir() -> Path:
    return data_dir() / "reviews"


def review_file(folder: str | os.PathLike, pack: str) -> Path:
    """The review file of a folder under a pack: one per (absolute folder path, pack name), so
    that reviewing the folder with another pack never touches the decisions made under this one."""
    key = hashlib.sha256(os.fsencode(os.path.abspath(folder)) + b"\0" + os.fsencode(pack)).hexdigest()[:16]
    return reviews_dir() / f"{key}.json"


def folder_only_review_file(folder: str | os.PathLike) -> Path:
    """Where earlier versions kept a folder's review, whatever the pack (read, never written anew)."""
    key = hashlib.sha256(os.fsencode(os.path.abspath(folder))).hexdigest()[:16]
    return reviews_dir() / f"{key}.json"


def _adopt_folder_only_file(folder: str, pack: str, labels: list[str], file: Path) -> None:
    """Move an earlier version's review of ``folder`` to ``file`` when it belongs to ``pack``.

    It belongs to the pack recorded inside it; a file that records none belongs to
    the pack whose classes it has. A file of another pack stays where it is (it is
    still listed among the saved reviews, and moves when that pack reviews the
    folder); a damaged one is left alone.
    """
    old = folder_only_review_file(folder)
    if not old.exists():
        return
    try:
        data = read_review_file(old)
    except ReviewError:
        return
    owner = data.get("pack") or (pack if data.get("labels") == labels else None)
    if owner == pack:
        old.replace(file)


def common_folder(paths: Iterable[str]) -> str:
    """The folder that holds all ``paths`` (the smear a review belongs to)."""
    folders = [os.path.dirname(os.path.abspath(p)) for p in paths]
    if not folders:
        raise ReviewError("There are no images to review.")
    return os.path.commonpath(folders)


def _window(value: object) -> Window | None:
    """A saved cell window, or None when absent or not four fractions (it only changes a thumbnail)."""
    if (isinstance(value, list) and len(value) == 4 and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 1 for v in value)
            and value[0] < value[2] and value[1] < value[3]):
        return (float(value[0]), float(value[1]), float(value[2]), float(value[3]))
    return None


def cell_from_result(result: ImageResult, labels: list[str]) -> Cell:
    """A :class:`Cell` from an engine result (which must be usable), under its absolute path
    so that decisions are found again however the folder is opened next time."""
    flags = image_flags(result, labels)
    return Cell(path=os.path.abspath(result.path),
                pred={k: int(p.argmax()) for k, p in result.proba.items()},
                conf={k: round(float(p.max()), 4) for k, p in result.proba.items()},
                priority=round(review_priority(result.proba, result.unlike_training), 4),
                flags=flags, window=result.window)


def _first_of_each_file(results: Iterable[ImageResult]) -> Iterable[ImageResult]:
    """``results`` without repeats of a file (by absolute path), in order."""
    seen = set()
    for r in results:
        path = os.path.abspath(r.path)
        if path not in seen:
            seen.add(path)
            yield r


class Review:
    """The cells of one folder, their verified labels, and undo/redo; saved on every change."""

    def __init__(self, folder: str, labels: list[str], models: tuple[str, ...], pack: str,
                 cells: list[Cell], unusable: list[str] | None = None,
                 decisions: dict[str, str] | None = None, file: Path | None = None) -> None:
        self.folder = os.path.abspath(folder)
        self.labels = list(labels)
        self.models = tuple(models)
        self.pack = pack
        self.cells = sorted(cells, key=lambda c: (-c.priority, c.path))
        self.by_path = {c.path: c for c in self.cells}
        self.unusable = list(unusable or [])
        decisions = decisions or {}
        self.decisions: dict[str, str] = {p: lab for p, lab in decisions.items() if lab in self.labels}
        #: decisions naming a class this pack does not have (a pack replaced by one of the same
        #: name): not shown or counted, but written back (under a new decision of the same cell,
        #: which wins) so that they are never lost
        self.other_decisions = {p: lab for p, lab in decisions.items() if lab not in self.labels}
        self.file = file or review_file(self.folder, pack)
        #: decisions another window wrote to the file that saves took in, until the view takes them
        self.outside_changes: list[Change] = []
        #: this window's steps not yet written: cell -> label (None: not verified any more)
        self._pending: dict[str, str | None] = {}
        #: why this window's last decisions are not on disk (a full disk, a folder made read-only),
        #: in words for the reviewer; None when every decision is saved
        self.unsaved: str | None = None
        #: the file as this window last wrote or read it; any other version was written elsewhere
        self._seen = _signature(self.file)
        self._cells_json: str | None = None
        self._predictions: dict[str, np.ndarray] = {}
        self._undo: list[list[Change]] = []
        self._redo: list[list[Change]] = []

    # ------------------------------------------------------------------ creating and reading
    @classmethod
    def from_results(cls, results: Iterable[ImageResult], labels: list[str], models: tuple[str, ...],
                     pack: str, folder: str | None = None) -> Review:
        """Start (or resume) the review of classified images: decisions already saved for
        this folder and pack are restored (a damaged file is set aside, never overwritten).

        An image listed twice is one cell: the first result of each file counts.
        """
        results = list(_first_of_each_file(results))
        folder = folder or common_folder(r.path for r in results)
        cells = [cell_from_result(r, labels) for r in results if not r.error and r.proba]
        if not cells:
            raise ReviewError("None of these images could be classified, so there is nothing to review.")
        missing = [m for m in models if m not in cells[0].pred]
        if missing:
            raise ReviewError(f"These results have no predictions of {', '.join(missing)}.")
        file = review_file(folder, pack)
        if not file.exists():
            _adopt_folder_only_file(os.path.abspath(folder), pack, list(labels), file)
        decisions = {}
        if file.exists():
            try:
                decisions = read_review_file(file).get("decisions", {})
            except NewerReviewError:
                raise
            except ReviewError:
                _set_aside_damaged(file)
        review = cls(folder, labels, models, pack, cells, [os.path.abspath(r.path) for r in results if r.error],
                     decisions, file)
        review.save()
        return review

    @classmethod
    def load(cls, file: str | os.PathLike) -> Review:
        """Reopen a saved review from its file alone (no classification needed)."""
        data = read_review_file(Path(file))
        try:
            cells = [Cell(c["path"], dict(c["pred"]), dict(c["conf"]), float(c.get("priority", 0.0)),
                          list(c.get("flags", [])), _window(c.get("window"))) for c in data["cells"]]
            return cls(data["folder"], data["labels"], tuple(data["models"]), data.get("pack", ""), cells,
                       data.get("unusable", []), data.get("decisions", {}), Path(file))
        except (KeyError, TypeError, ValueError) as exc:
            raise ReviewError(f"The review file {file} is damaged ({exc}).") from exc

    def save(self) -> None:
        """Write the whole review atomically (called after every change).

        Compact ASCII JSON: quick to rewrite on every key press, and file names that
        are not valid UTF-8 (possible on Linux) survive as escapes. The cells never
        change, so their JSON is made once and only the rest is encoded each time
        (a 10,000-cell review would otherwise spend most of each key press here).
        """
        with exclusive(self.file):  # another app copy must not write between our read and our write
            self._merge_and_write()

    def _merge_and_write(self) -> None:
        self.outside_changes += self._take_in_outside_decisions()
        if self._cells_json is None:
            self._cells_json = json.dumps([{"path": c.path, "pred": c.pred, "conf": c.conf,
                                            "priority": c.priority, "flags": c.flags,
                                            **({"window": list(c.window)} if c.window else {})}
                                           for c in self.cells])
        rest = json.dumps({
            "format": FORMAT, "folder": self.folder, "pack": self.pack, "labels": self.labels,
            "models": list(self.models),
            "updated": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            "unusable": self.unusable,
            "decisions": {**self.other_decisions, **self.decisions},
        })
        atomic_write_text(self.file, f'{rest[:-1]}, "cells": {self._cells_json}}}\n')
        self._pending.clear()
        self._seen = _signature(self.file)

    def retry_save(self) -> bool:
        """Write what a failed save left in memory (before the window closes or shows another
        review); True when every decision is on disk."""
        if self.unsaved is None:
            return True
        try:
            self.save()
        except OSError as exc:
            log.warning("review %s still not saved: %s", self.file, exc)
            return False
        self.unsaved = None
        return True

    def take_outside_changes(self) -> list[Change]:
        """The cells whose decision came from another window since the last call (the view
        redraws them and says so)."""
        changes, self.outside_changes = self.outside_changes, []
        return changes

    def _take_in_outside_decisions(self) -> list[Change]:
        """Adopt the decisions in the file that another window wrote since this one last saw it,
        keeping this window's unsaved step on top; returns what changed here."""
        if _signature(self.file) in (self._seen, None):
            return []
        try:
            data = read_review_file(self.file)
        except ReviewError:
            _set_aside_damaged(self.file)
            return []
        if os.path.abspath(data.get("folder", "")) != self.folder or data.get("pack", "") != self.pack:
            return []
        merged = {p: lab for p, lab in data.get("decisions", {}).items() if isinstance(lab, str)}
        for path, label in self._pending.items():
            if label is None:
                merged.pop(path, None)
            else:
                merged[path] = label
        before = self.decisions
        self.decisions = {p: lab for p, lab in merged.items() if lab in self.labels}
        self.other_decisions = {p: lab for p, lab in merged.items() if lab not in self.labels}
        return [Change(p, before.get(p), self.decisions.get(p)) for p in sorted(set(before) | set(self.decisions))
                if p in self.by_path and before.get(p) != self.decisions.get(p)]

    # ------------------------------------------------------------------ reading the state
    def predictions(self, model: str) -> np.ndarray:
        """Class index ``model`` gave each cell, in the order of :attr:`cells` (made once)."""
        if model not in self._predictions:
            self._predictions[model] = np.array([c.pred[model] for c in self.cells], dtype=int)
        return self._predictions[model]

    def predicted_label(self, path: str, model: str) -> str:
        return self.labels[self.by_path[path].pred[model]]

    def verified(self, path: str) -> str | None:
        """The reviewer's label for a cell, or None while it is not verified."""
        return self.decisions.get(path)

    def current_label(self, path: str, model: str) -> str:
        """Verified label if any, else ``model``'s prediction: the group the cell is shown in."""
        return self.decisions.get(path) or self.predicted_label(path, model)

    def groups(self, model: str) -> dict[str, list[Cell]]:
        """Cells per class (every class present, maybe empty), cells to check first."""
        out: dict[str, list[Cell]] = {label: [] for label in self.labels}
        for cell in self.cells:
            out[self.current_label(cell.path, model)].append(cell)
        return out

    def verified_cells(self) -> list[tuple[Cell, str]]:
        """(cell, verified label) for every verified cell of this review."""
        return [(c, self.decisions[c.path]) for c in self.cells if c.path in self.decisions]

    @property
    def n_verified(self) -> int:
        return sum(1 for c in self.cells if c.path in self.decisions)

    def missing_pictures(self) -> list[str]:
        """The cells whose picture is no longer where it was (moved, renamed or deleted), looked up
        on the disk now: a report or a corrections file leaves them out rather than show or train on
        nothing, while the review keeps their decisions (they count again once the pictures are back)."""
        return [c.path for c in self.cells if not os.path.exists(c.path)]

    # ------------------------------------------------------------------ deciding
    def decide(self, paths: Iterable[str], label: str) -> list[Change]:
        """Verify ``paths`` as ``label`` (one undoable step); returns what changed."""
        if label not in self.labels:
            raise ReviewError(f"'{label}' is not a class of this model. Classes: {', '.join(self.labels)}.")
        return self._step([Change(p, self.decisions.get(p), label) for p in paths
                           if self.decisions.get(p) != label])

    def accept(self, paths: Iterable[str], model: str) -> list[Change]:
        """Verify ``paths`` as the class they are shown in (one undoable step)."""
        return self._step([Change(p, self.decisions.get(p), self.current_label(p, model)) for p in paths
                           if p not in self.decisions])

    def clear(self, paths: Iterable[str]) -> list[Change]:
        """Mark ``paths`` as not verified again (one undoable step)."""
        return self._step([Change(p, self.decisions[p], None) for p in paths if p in self.decisions])

    def can_undo(self) -> bool:
        return bool(self._undo)

    def can_redo(self) -> bool:
        return bool(self._redo)

    def undo(self) -> list[Change]:
        """Take back the last step; returns its changes (empty when there is nothing to undo)."""
        if not self._undo:
            return []
        step = self._undo.pop()
        self._set((c.path, c.before) for c in step)
        self._redo.append(step)
        return step

    def redo(self) -> list[Change]:
        if not self._redo:
            return []
        step = self._redo.pop()
        self._set((c.path, c.after) for c in step)
        self._undo.append(step)
        return step

    def _step(self, changes: list[Change]) -> list[Change]:
        unknown = [c.path for c in changes if c.path not in self.by_path]
        if unknown:
            raise ReviewError(f"{unknown[0]} is not part of this review.")
        if changes:
            self._set((c.path, c.after) for c in changes)
            self._undo.append(changes)
            self._redo.clear()
        return changes

    def _set(self, items: Iterable[tuple[str, str | None]]) -> None:
        for path, label in items:
            if label is None:
                self.decisions.pop(path, None)
            else:
                self.decisions[path] = label
            self._pending[path] = label
        try:
            self.save()
        except OSError as exc:  # the decision stays here and goes to disk with the next one that saves
            log.warning("review %s not saved: %s", self.file, exc)
            self.unsaved = (f"Your latest decisions could not be saved ({exc.strerror or exc}). They are kept "
                            "in this window and saved with your next decision, or when you close the review, "
                            "once the disk accepts it.")
        else:
            self.unsaved = None


def no_longer_there(n: int, what: str = "picture") -> str:
    """'3 pictures are no longer where they were (moved, renamed or deleted)': how the review's
    reports and exports name pictures gone since they were classified, in a biologist's words."""
    one = n == 1
    return (f"{n} {what}{'' if one else 's'} {'is' if one else 'are'} no longer where "
            f"{'it was' if one else 'they were'} (moved, renamed or deleted)")


def _set_aside_damaged(file: Path) -> None:
    """Keep a damaged review file under its own backup name; the review goes on without it."""
    backup = damaged_backup_name(file)
    log.warning("review file %s is damaged; kept as %s", file, backup)
    file.replace(backup)


def _signature(file: Path) -> tuple[int, int, int] | None:
    """Which version of a file this is: every atomic write makes a new file (inode), so two
    writes never look alike even within one clock tick. None: there is no file."""
    try:
        st = file.stat()
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


def _is_newer_format(value: object) -> bool:
    """``hqnn-review/N`` with N above this version's."""
    prefix, _, version = FORMAT.partition("/")
    if not isinstance(value, str) or not value.startswith(prefix + "/"):
        return False
    number = value.removeprefix(prefix + "/")
    return number.isdigit() and int(number) > int(version)


def read_review_file(file: Path) -> dict:
    """The JSON of a review file, checked enough to be used."""
    try:
        data = json.loads(Path(file).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReviewError(f"The review file {file} cannot be read ({exc}).") from exc
    if isinstance(data, dict) and _is_newer_format(data.get("format")):
        raise NewerReviewError(
            f"This review was saved by a newer version of hqnn-desktop ({data['format']}). Update "
            f"hqnn-desktop to go on with it; its file is left as it is ({file}).")
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ReviewError(f"{file} is not a review file of this version of hqnn-desktop.")
    kinds = {"folder": str, "labels": list, "models": list, "cells": list, "pack": str, "updated": str,
             "unusable": list, "decisions": dict}
    wrong = [key for key, kind in kinds.items() if key in data and not isinstance(data[key], kind)]
    if wrong or not all(isinstance(c, dict) and isinstance(c.get("path"), str) for c in data.get("cells", [])):
        raise ReviewError(f"The review file {file} is damaged ({', '.join(wrong) or 'cells'} of the wrong kind).")
    return data


@dataclass(frozen=True)
class SavedReview:
    """A review on disk, described for a list: folder, pack, progress, last change."""

    file: Path
    folder: str
    pack: str
    n_cells: int
    n_verified: int
    updated: str


def list_reviews() -> list[SavedReview]:
    """Saved reviews, most recently changed first; unreadable files are skipped."""
    found = []
    folder = reviews_dir()
    for file in folder.glob("*.json") if folder.is_dir() else []:
        try:
            data = read_review_file(file)
            paths, labels = {c["path"] for c in data["cells"]}, set(data["labels"])
            found.append(SavedReview(file, data["folder"], data.get("pack", ""), len(paths),
                                     sum(1 for p, lab in data.get("decisions", {}).items()
                                         if p in paths and lab in labels),
                                     data.get("updated", "")))
        except (ReviewError, KeyError, TypeError, ValueError):
            continue  # one damaged file must not hide the others (it says what is wrong when opened)
    return sorted(found, key=lambda r: r.updated, reverse=True)


def other_pack_reviews(review: Review) -> list[SavedReview]:
    """Saved reviews of the same folder under other packs: kept apart, worth pointing out."""
    return [r for r in list_reviews() if r.folder == review.folder and r.file != review.file]
