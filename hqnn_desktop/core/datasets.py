"""Labelled image folders: one subfolder per class, any format Pillow reads.

Also manifests: a CSV file of ``path,label`` rows pointing at images where they
are (the corrections of a review), usable alone or added to a folder. Also the
validation split of a single folder, optionally grouped by a
file-name pattern so that images derived from the same source (the same smear
field in Blood Cell Images) never fall on both sides.
"""

from __future__ import annotations

import csv
import errno
import hashlib
import os
import re
import unicodedata
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .cell_crop import CellCrop
from .imageio import ImageError, is_image_name, load_model_input
from .walk import is_system_name, picture_identity, walk_files


class DatasetError(ValueError):
    """A dataset folder that cannot be used, explained for the user."""


@dataclass
class LabelledFiles:
    """Image paths with integer labels into ``labels`` (lower-case class names)."""

    paths: list[Path]
    targets: list[int]
    labels: list[str]
    skipped: list[tuple[Path, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.paths)

    def subset(self, index: Sequence[int]) -> LabelledFiles:
        return LabelledFiles([self.paths[i] for i in index], [self.targets[i] for i in index],
                             list(self.labels))

    def class_counts(self) -> dict[str, int]:
        counts = np.bincount(np.asarray(self.targets, dtype=int), minlength=len(self.labels))
        return {label: int(c) for label, c in zip(self.labels, counts)}

    def plus(self, other: LabelledFiles) -> LabelledFiles:
        """Both sets of images together, each picture once; ``other`` must use the same classes in the
        same order. A picture of ``other`` that this set holds too (the same file, however reached) is
        left out, in ``skipped`` with the reason: counted twice it would weigh double, and with two
        classes it would teach both. This set's class wins, so callers put corrections first: they
        are the user's later word on pictures of the folder they correct."""
        if other.labels != self.labels:
            raise DatasetError("The two datasets do not have the same classes: "
                               f"{', '.join(self.labels)} / {', '.join(other.labels)}.")
        mine = {picture_identity(p): i for i, p in enumerate(self.paths)}
        paths, targets, skipped = list(self.paths), list(self.targets), self.skipped + other.skipped
        for path, target in zip(other.paths, other.targets):
            i = mine.get(picture_identity(path))
            if i is None:
                paths.append(path)
                targets.append(target)
            else:
                mine_label, other_label = self.labels[self.targets[i]], self.labels[target]
                skipped.append((path, "in both lists: trained once" + (
                    "" if mine_label == other_label else f", as {mine_label} (not {other_label})")))
        return LabelledFiles(paths, targets, list(self.labels), skipped)


#: Whose classes a labelled folder is checked against, when it is a pack's: the words messages use.
THE_MODEL = "the model"


def training_reference(source: str | Path) -> str:
    """The words naming a training folder (or list) whose classes a validation set is checked
    against: telling the user their folders are "not classes of the model" would send them
    looking at a pack when the mismatch is with their own training images."""
    kind = "list" if Path(source).is_file() else "folder"
    return f"the training {kind} {source}"


def _canonical_forms(name: str) -> set[str]:
    """A class name as a person may have typed it for the same class: case, spaces, underscores and
    hyphens ignored, with and without a trailing plural 's' or 'es' ("Basophils", "band_cell")."""
    plain = re.sub(r"[\s_-]+", "", name).lower()
    forms = {plain}
    for ending in ("es", "s"):
        if plain.endswith(ending) and len(plain) > len(ending):
            forms.add(plain[:-len(ending)])
    return forms


def _one_typo_apart(a: str, b: str) -> bool:
    """True when ``a`` becomes ``b`` by one letter changed, added or removed, or two neighbours swapped."""
    if len(a) == len(b):
        diff = [i for i, (x, y) in enumerate(zip(a, b)) if x != y]
        swapped = len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]]
        return len(diff) <= 1 or swapped
    short, long = sorted((a, b), key=len)
    return len(long) == len(short) + 1 and any(long[:i] + long[i + 1:] == short for i in range(len(long)))


#: Names shorter than this get no typo suggestion: among short names one typo often makes another word.
TYPO_MIN_LETTERS = 6


def near_class(name: str, labels: Sequence[str]) -> str | None:
    """The one class ``name`` was surely meant to be, or None.

    Only near-identical names count (case, separators, a plural, or one typo in a name of
    :data:`TYPO_MIN_LETTERS` letters or more): a looser "did you mean" would pair different cell
    types (basophil and eosinophil share most of their letters), and a biologist following it
    would put cells under the wrong label.
    """
    mine = _canonical_forms(name)
    found = [label for label in labels
             if any(a == b or (min(len(a), len(b)) >= TYPO_MIN_LETTERS and _one_typo_apart(a, b))
                    for a in mine for b in _canonical_forms(label))]
    return found[0] if len(found) == 1 else None


def _unknown_folders_message(root: Path, unknown: Sequence[str], labels: Sequence[str], reference: str) -> str:
    """Which folders name no class, each with the class it surely meant, if any; names quoted, as a
    trailing space is otherwise invisible."""
    named = []
    for name in unknown:
        meant = near_class(name, labels)
        named.append(f"'{name}'" + (f" (meant '{meant}'?)" if meant else ""))
    return (f"These folders in {root} are not classes of {reference}: {', '.join(named)}. "
            f"The classes of {reference} are: {', '.join(labels)}.")


def _holds_pictures(folder: Path) -> bool:
    """True when a picture's name is anywhere under ``folder`` (or it cannot be opened to tell)."""
    return any(not readable or is_image_name(Path(path), unreadable_too=True) for path, readable in walk_files(folder))


#: Windows' error for a link that cannot be resolved (a loop); elsewhere it is errno.ELOOP.
_WINDOWS_CANT_RESOLVE = 1921


def _loops(link: Path) -> bool:
    """True for a link that leads round in a circle (``a -> b``, ``b -> a``), unlike one to nowhere."""
    try:
        link.stat()
    except OSError as exc:
        return exc.errno == errno.ELOOP or getattr(exc, "winerror", None) == _WINDOWS_CANT_RESOLVE
    return False


def _links_up(root: Path, entries: Sequence[Path]) -> dict[Path, str]:
    """The links among ``entries`` that lead back to ``root`` or above it, or round in a circle, with
    why: followed, they would hold the whole dataset (or nothing) and count as a class of their own."""
    inside = os.path.join(os.path.realpath(root), "")
    passed = {}
    for d in (e for e in entries if e.is_symlink()):
        if _loops(d):
            passed[d] = "a link that leads round in a circle, not a class"
        elif inside.startswith(os.path.join(os.path.realpath(d), "")):
            passed[d] = "a link back to the dataset folder or a folder above it, not a class"
    return passed


#: Why a picture reached from two class folders (through links) is left out.
TWO_CLASSES = "in two class folders (through a link), so its class is unclear: left out of both"
#: Why a picture a list gives two classes is left out.
LISTED_TWICE = "listed with two classes, so its class is unclear: left out"


def class_name(name: str) -> str:
    """How a class is named for matching: lower case, its accents written one way (a Mac writes
    "é" as two characters where Linux and Windows write one, and the two look identical)."""
    return unicodedata.normalize("NFC", name).lower()


def not_a_picture_reason(path: Path) -> str:
    """Why a file in a class folder is passed over: a picture in a format read nowhere here
    (HEIC from a phone, a microscope's own file) says what to do about it."""
    if is_image_name(path, unreadable_too=True):
        return (f"a {path.suffix.lower()} picture, a format that cannot be read here: export it as TIFF, PNG or "
                "JPEG first")
    return "not a picture's file name"


def one_class_each(paths: Sequence[Path], targets: Sequence[int], unclear: str
                   ) -> tuple[list[Path], list[int], list[tuple[Path, str]]]:
    """Every picture once: one reached again with the same class is kept where it was first
    found, one given two classes is left out everywhere (its class is anyone's guess; ``unclear``
    says why). Links, symbolic and hard, are seen through (:func:`core.walk.picture_identity`).
    Returns the paths, targets and what was left out, with the reason."""
    first: dict = {}
    kept_paths: list[Path] = []
    kept_targets: list[int] = []
    skipped: list[tuple[Path, str]] = []
    unclear_at: set[int] = set()
    for path, target in zip(paths, targets):
        at = first.setdefault(picture_identity(path), len(kept_paths))
        if at == len(kept_paths):
            kept_paths.append(path)
            kept_targets.append(target)
        elif kept_targets[at] == target:
            skipped.append((path, f"the same picture as {kept_paths[at]}"))
        else:
            unclear_at.add(at)
            skipped.append((path, unclear))
    skipped += [(kept_paths[i], unclear) for i in sorted(unclear_at)]
    keep = [i for i in range(len(kept_paths)) if i not in unclear_at]
    return [kept_paths[i] for i in keep], [kept_targets[i] for i in keep], skipped


def scan_class_folders(root: str | Path, labels: Sequence[str] | None = None,
                       reference: str = THE_MODEL) -> LabelledFiles:
    """List the images of ``root/<class>/...`` (recursively inside each class).

    With ``labels`` (a pack's classes, or a training folder's), folders are matched
    case-insensitively and folders naming no known class are an error, which names
    ``reference`` as where the classes come from (:func:`training_reference`), unless they hold no
    picture (a notes or exports folder: passed over, in ``skipped``); without,
    the classes are the subfolder names in lower case, sorted. Links back up to ``root``
    (or above) are passed over, listed in ``skipped``.
    """
    root = Path(root)
    if root.exists() and not root.is_dir():
        raise DatasetError(f"{root} is a file; a labelled dataset is a folder with one subfolder per class "
                           "(for example basophil/, eosinophil/, ...) holding the images.")
    if not root.is_dir():
        raise DatasetError(f"The dataset folder does not exist: {root}")
    entries = sorted((d for d in root.iterdir() if not is_system_name(d.name)), key=lambda d: d.name.lower())
    links_up = _links_up(root, entries)
    class_dirs = [d for d in entries if d not in links_up and d.is_dir()]
    if not class_dirs:
        raise DatasetError(
            f"{root} has no class subfolders. A labelled dataset holds one folder per class "
            "(for example basophil/, eosinophil/, ...) with the images inside."
        )
    empty = []
    if labels is None:  # the classes are the folders that hold pictures
        empty = [d for d in class_dirs if not _holds_pictures(d)]
        class_dirs = [d for d in class_dirs if d not in empty]
        names = [class_name(d.name) for d in class_dirs]
        if len(set(names)) != len(names):
            raise DatasetError(f"{root} has class folders that differ only in upper/lower case.")
        labels = names
    labels = [class_name(label) for label in labels]
    index = {label: i for i, label in enumerate(labels)}
    strangers = [d for d in class_dirs if class_name(d.name) not in index]
    empty += [d for d in strangers if not _holds_pictures(d)]  # a notes or results folder: no class lost
    unknown = [d.name for d in strangers if d not in empty]
    if unknown:
        raise DatasetError(_unknown_folders_message(root, unknown, labels, reference))
    class_dirs = [d for d in class_dirs if d not in empty]
    found, targets = [], []
    skipped = list(links_up.items()) + [(d, "a folder without pictures, not a class") for d in empty]
    for d in class_dirs:
        for path, readable in walk_files(d, above=root, fenced=[c for c in class_dirs if c != d]):
            p = Path(path)
            if not readable:
                skipped.append((p, "a folder that cannot be opened"))
            elif not is_image_name(p):
                skipped.append((p, not_a_picture_reason(p)))
            else:
                found.append(p)
                targets.append(index[class_name(d.name)])
    paths, targets, twice = one_class_each(found, targets, TWO_CLASSES)
    skipped += twice
    if not paths:
        raise DatasetError(f"No images were found in the class folders of {root}.")
    return LabelledFiles(paths, targets, list(labels), skipped)


def check_classes_present(labels: Sequence[str], targets: Sequence[int], part: str) -> None:
    """Refuse training data with fewer than two classes, or a class with no image in ``part``.

    Such data still trains, and even scores a "perfect" validation (one class is
    always right), so the pack would look good and mean nothing.
    """
    if len(labels) < 2:
        raise DatasetError(f"Training needs at least two classes, but the dataset has "
                           f"{'only ' + labels[0] if labels else 'none'}: put the images of each class "
                           "in a subfolder named after it.")
    counts = np.bincount(np.asarray(targets, dtype=int), minlength=len(labels))
    empty = [label for label, count in zip(labels, counts) if count == 0]
    if empty:
        raise DatasetError(f"No usable image of {', '.join(empty)} is in the {part} images; add (readable) "
                           "images of every class, or choose the validation images with a validation folder.")


MANIFEST_COLUMNS = ("path", "label")


def read_manifest(manifest: str | Path, labels: Sequence[str] | None = None,
                  reference: str = THE_MODEL) -> LabelledFiles:
    """The images a manifest lists (CSV with a ``path,label`` header), left where they are.

    Relative paths are read from the manifest's folder; bytes that are not UTF-8 are
    kept as they are, as Linux file names allow. Missing files are listed in
    ``skipped`` rather than stopping the run. With ``labels`` (a pack's or a
    folder's classes, from ``reference``) a label outside them is an error; without,
    the classes are the labels found, sorted.
    """
    manifest = Path(manifest)
    try:  # (utf-8-sig: Excel's "CSV UTF-8" starts with an invisible byte-order mark)
        with open(manifest, newline="", encoding="utf-8-sig", errors="surrogateescape") as fh:
            reader = csv.DictReader(fh)
            reader.fieldnames = [(name or "").strip().lower() for name in reader.fieldnames or []]
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DatasetError(f"The list of labelled images {manifest} cannot be read ({exc}).") from exc
    if not rows or any(c not in rows[0] for c in MANIFEST_COLUMNS):
        raise DatasetError(f"{manifest} is not a list of labelled images: it needs the columns "
                           f"{', '.join(MANIFEST_COLUMNS)} and at least one row.")
    if {"model", "confidence"} <= rows[0].keys():
        raise DatasetError(f"{manifest} holds classification results (one row per picture and model, labels the "
                           "models predicted), not verified labels. Verify them in the Review tab and save the "
                           "corrections, or list each picture once with its true class (columns path,label).")
    found = sorted({class_name((r["label"] or "").strip()) for r in rows} - {""})
    labels = [class_name(label) for label in labels] if labels is not None else found
    unknown = [label for label in found if label not in labels]
    if unknown:
        raise DatasetError(f"{manifest} uses classes {reference} does not know: {', '.join(unknown)}. "
                           f"The classes of {reference} are: {', '.join(labels)}.")
    index = {label: i for i, label in enumerate(labels)}
    listed, targets, skipped = [], [], []
    for r in rows:
        label = class_name((r["label"] or "").strip())
        path = manifest.parent / (r["path"] or "")
        if not label or not r["path"]:
            skipped.append((path, "no path or no label on this line"))
        elif not path.is_file():
            skipped.append((path, "file not found"))
        else:
            listed.append(path)
            targets.append(index[label])
    paths, targets, twice = one_class_each(listed, targets, LISTED_TWICE)
    skipped += twice
    if not paths:
        raise DatasetError(f"None of the images listed in {manifest} could be found.")
    return LabelledFiles(paths, targets, list(labels), skipped)


def scan_dataset(source: str | Path, labels: Sequence[str] | None = None,
                 reference: str = THE_MODEL, role: str = "dataset") -> LabelledFiles:
    """A labelled dataset from a folder of class folders or from a manifest file; ``labels`` and
    ``reference`` as in :func:`scan_class_folders`; ``role`` names it in messages ("validation")."""
    path = Path(source)
    if not path.exists():
        kind = "list" if path.suffix.lower() == ".csv" else "folder"
        raise DatasetError(f"The {role} {kind} does not exist: {source}")
    if path.is_file() and is_image_name(path, unreadable_too=True):
        raise DatasetError(f"{source} is a picture; the {role} is a folder holding one subfolder per class with "
                           "the pictures inside (or a CSV list of labelled pictures, columns path,label).")
    if path.is_file():
        return read_manifest(source, labels, reference)
    return scan_class_folders(source, labels, reference)


def group_key(path: Path, pattern: str | None, root: Path | None) -> str:
    """The group a file belongs to: the first capture (or whole match) of ``pattern`` in its name, or
    else the file alone, named from ``root`` on so that the split does not change when the dataset's
    folder is moved or copied elsewhere."""
    m = re.search(pattern, path.name) if pattern else None
    if m is None:
        return Path(os.path.relpath(os.path.abspath(path), root)).as_posix() if root else str(path)
    return m.group(1) if m.groups() and m.group(1) is not None else m.group(0)  # (an optional group unmatched)


def shared_pictures(train: LabelledFiles, val: LabelledFiles) -> list[tuple[Path, Path]]:
    """Validation pictures that are also training pictures, however reached (the same folder
    under two names, a list naming the folder's files, links): (validation path, training path)."""
    trained = {picture_identity(p): p for p in train.paths}
    return [(p, trained[key]) for p in val.paths if (key := picture_identity(p)) in trained]


def split_validation(files: LabelledFiles, fraction: float, seed: int,
                     group_pattern: str | None = None) -> tuple[LabelledFiles, LabelledFiles]:
    """Split off about ``fraction`` of the images for validation, whole groups at a time.

    Groups are assigned by a hash of (seed, group), so the split is deterministic,
    independent of file order, and stable when images are added. A class that the
    draw left entirely on one side (likely with a few images per class) gets its
    group nearest the cut moved across, when it has more than one group, so that
    every class can be trained and checked.
    """
    if not 0.0 < fraction < 1.0:
        raise DatasetError("The validation fraction must be between 0 and 1 (for example 0.15).")
    if group_pattern:
        try:
            re.compile(group_pattern)
        except re.error as exc:
            raise DatasetError(f"The grouping pattern is not a valid regular expression: {exc}") from exc
    try:
        root: Path | None = Path(os.path.commonpath([os.path.abspath(p.parent) for p in files.paths]))
    except ValueError:  # no common folder (pictures on two Windows drives)
        root = None
    groups = [group_key(p, group_pattern, root) for p in files.paths]
    if group_pattern:
        _check_grouping(files, groups, group_pattern)
    draw = {g: int.from_bytes(hashlib.sha256(f"{seed}:{g}".encode()).digest()[:8], "big") / 2**64
            for g in set(groups)}
    in_val = {g: u < fraction for g, u in draw.items()}
    for k in range(len(files.labels)):
        mine = sorted({g for g, t in zip(groups, files.targets) if t == k}, key=draw.get)
        if len(mine) < 2:
            continue
        if not any(in_val[g] for g in mine):
            in_val[mine[0]] = True
        elif all(in_val[g] for g in mine):
            in_val[mine[-1]] = False
    train_idx = [i for i, g in enumerate(groups) if not in_val[g]]
    val_idx = [i for i, g in enumerate(groups) if in_val[g]]
    sides = [{files.targets[i] for i in idx} for idx in (train_idx, val_idx)]
    one_sided = [k for k in range(len(files.labels)) if (k in sides[0]) != (k in sides[1])]
    if one_sided:
        k = one_sided[0]
        n = sum(1 for t in files.targets if t == k)
        held = "picture" if n == 1 else f"pictures, all in one group{' (' + group_pattern + ')' if group_pattern else ''}"
        raise DatasetError(f"{files.labels[k]} has only {n} {held}: too few to set some aside for validation. "
                           "Add pictures of it, or choose a validation folder.")
    if not train_idx or not val_idx:
        raise DatasetError("The validation split is empty on one side; use more images or another fraction.")
    return files.subset(train_idx), files.subset(val_idx)


def _check_grouping(files: LabelledFiles, groups: list[str], pattern: str) -> None:
    """Refuse a grouping pattern that cannot be what the user meant: one matching no file name, or one
    putting every image of a class in a single group (which cannot be split between the two sides)."""
    if not any(re.search(pattern, p.name) for p in files.paths):
        raise DatasetError(f"The grouping pattern {pattern} matches none of the file names (for example "
                           f"{files.paths[0].name}); check it, or leave it out to split image by image.")
    for k, label in enumerate(files.labels):
        mine = {g for g, t in zip(groups, files.targets) if t == k}
        n = sum(1 for t in files.targets if t == k)
        if n > 1 and len(mine) == 1:
            raise DatasetError(
                f"With the grouping pattern {pattern}, all {n} images of {label} fall in one group "
                f"({next(iter(mine))}), so they cannot be shared between training and validation. The part "
                "in brackets should name the smear or patient, as in ^g(\\d+)_ ; or give a validation folder.")


def load_images(paths: Sequence[Path], size: int, workers: int = 4,
                progress: Callable[[int, int], None] | None = None, crop: CellCrop | None = None
                ) -> tuple[np.ndarray, list[str | None]]:
    """Decode ``paths`` (cut to the cell window when ``crop`` is given) into a (N, size, size, 3)
    uint8 array; errors listed per image (or None)."""
    out = np.zeros((len(paths), size, size, 3), dtype=np.uint8)
    errors: list[str | None] = [None] * len(paths)

    def work(i: int) -> None:
        try:
            out[i] = load_model_input(paths[i], size, crop)
        except ImageError as exc:
            errors[i] = str(exc)

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for done, _ in enumerate(pool.map(work, range(len(paths))), start=1):
            if progress is not None and (done % 256 == 0 or done == len(paths)):
                progress(done, len(paths))
    return out, errors
