"""Result rows shared by the CLI's CSV and the GUI's table and export.

Columns: ``path, model, label, confidence, error`` then ``p_<label>`` per class,
one row per image and model.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable
from pathlib import Path

from .imageio import frames_note
from .inputs import ImageResult
from .storage import atomic_path
from .wording import counted

#: HQNN confidence under which an image is flagged for a closer look.
LOW_CONFIDENCE = 0.6

#: How CSV text is encoded: UTF-8, with file names that are not valid UTF-8 (possible on
#: Linux) written as visible escapes instead of stopping the whole export.
CSV_ENCODING = {"encoding": "utf-8", "errors": "backslashreplace"}


def not_pictures_note(passed_over: list[str], retry: str) -> str:
    """The files of the given folders left out for their names, said once ('' when none): the user
    learns a notes file or a scan in an unknown format was not silently counted as nothing.
    ``retry`` says how to have one tried anyway ("name a file on its own", "drop a file on its own")."""
    if not passed_over:
        return ""
    n = len(passed_over)
    return (f"{n} file{'s' if n > 1 else ''} in the folders {'were' if n > 1 else 'was'} not classified because "
            f"{'their names are' if n > 1 else 'its name is'} not a picture's (for example "
            f"{Path(passed_over[0]).name}); {retry} to classify it anyway.")


def twice_note(twice: list[tuple[str, str]]) -> str:
    """The files reached a second time (through a link, or inside a folder also given), said once
    ('' when none): each was classified once, under the first name found, and the user learns why
    the other name has no row."""
    if not twice:
        return ""
    again, first = next(((a, f) for a, f in twice if Path(a).name != Path(f).name), twice[0])
    example = (f"{Path(again).name} is the same file as {Path(first).name}" if Path(again).name != Path(first).name
               else f"for example {Path(first).name}")
    n = len({first for _, first in twice})
    return (f"{counted(n, 'picture')} {'were' if n > 1 else 'was'} reached more than once (through a link, or "
            f"named again) and classified once, under the first name found ({example}).")


def several_pictures_note(results: Iterable[ImageResult]) -> str:
    """The files that hold several pictures (TIFF stacks, animated GIFs), of which only the first
    was classified, said once ('' when none): a z-stack or time series is not one cell picture."""
    several = [r for r in results if r.frames > 1 and not r.error]
    if not several:
        return ""
    n, first = len(several), several[0]
    return (f"{n} file{'s' if n > 1 else ''} {'hold' if n > 1 else 'holds'} several pictures (pages or frames); "
            f"only the first of each was classified (for example {Path(first.path).name}: {first.frames} "
            "pictures). Save the picture you mean on its own to classify it.")


def csv_header(labels: list[str], flags: bool = False) -> list[str]:
    """The columns of a results CSV; with ``flags``, a last column of the image's flags."""
    return ["path", "model", "label", "confidence", "error"] + [f"p_{label}" for label in labels] + (
        ["flags"] if flags else [])


def result_rows(result: ImageResult, models: Iterable[str], labels: list[str], flags: bool = False) -> list[list]:
    """CSV rows of one image: one per model, with the error repeated when the file was unusable;
    with ``flags``, the image's flags (:func:`image_flags`, joined by "; ") on each of its rows."""
    said = ["; ".join(image_flags(result, labels))] if flags else []
    rows = []
    for kind in models:
        if result.error:
            rows.append([result.path, kind, "", "", result.error] + [""] * len(labels) + said)
        else:
            p = result.proba[kind]
            k = int(p.argmax())
            rows.append([result.path, kind, labels[k], f"{p[k]:.6f}", ""] + [f"{v:.6f}" for v in p] + said)
    return rows


def csv_text(rows: Iterable[list]) -> str:
    """Rows as CSV text ending in a newline, to be written in one call.

    Writing all rows of an image at once (instead of letting a file buffer
    flush at arbitrary byte counts) means a killed run leaves only complete rows.
    """
    buf = io.StringIO()
    csv.writer(buf).writerows(rows)
    return buf.getvalue()


def write_csv(path: str | os.PathLike, results: Iterable[ImageResult], models: Iterable[str],
              labels: list[str]) -> Path:
    """Write a complete CSV atomically (the GUI's export: with the flags the window shows)."""
    models = list(models)
    with atomic_path(path) as tmp, open(tmp, "w", newline="", **CSV_ENCODING) as fh:
        writer = csv.writer(fh)
        writer.writerow(csv_header(labels, flags=True))
        for r in results:
            writer.writerows(result_rows(r, models, labels, flags=True))
    return Path(path)


def predicted(result: ImageResult, kind: str, labels: list[str]) -> tuple[str, float] | None:
    """(label, confidence) of one model, or None for an unusable image."""
    if result.error or kind not in result.proba:
        return None
    p = result.proba[kind]
    k = int(p.argmax())
    return labels[k], float(p[k])


def disagreement(result: ImageResult, labels: list[str]) -> bool:
    """True when the models do not all predict the same class."""
    found = {predicted(result, k, labels)[0] for k in result.proba}
    return len(found) > 1


def low_confidence(result: ImageResult, labels: list[str], threshold: float = LOW_CONFIDENCE) -> bool:
    """True when any model's top probability is under ``threshold``."""
    return any(float(p.max()) < threshold for p in result.proba.values())


def unlike_training(result: ImageResult) -> bool:
    """True when the pack flags the image as unlike its training data."""
    return bool(result.unlike_training)


def image_flags(result: ImageResult, labels: list[str]) -> list[str]:
    """What to check about a usable image, in words: the models disagree, one is unsure, the picture
    is unlike the pack's training data, the file holds several pictures. The window's Flags column,
    the review's and the CSV's."""
    if result.error:
        return []
    flags = []
    if disagreement(result, labels):
        flags.append("models disagree")
    if low_confidence(result, labels):
        flags.append("low confidence")
    if unlike := unlike_training_flag(result):
        flags.append(unlike)
    if several := frames_note(result.frames):
        flags.append(several)
    return flags


def unlike_training_flag(result: ImageResult) -> str:
    """The flag's words, with the reason when it is known ('' when not flagged)."""
    if result.no_colour:
        return "unlike training data (no colour)"
    return "unlike training data" if unlike_training(result) else ""


def no_colour_note(results: Iterable[ImageResult]) -> str:
    """The pictures without colour given to a pack that learnt from colour ones, said once ('' when
    none): the models tell stains apart by colour, so their answers on these are guesses."""
    grey = [r for r in results if r.no_colour and not r.error]
    if not grey:
        return ""
    n = len(grey)
    return (f"{counted(n, 'picture')} {'have' if n > 1 else 'has'} no colour (for example {Path(grey[0].path).name}); "
            "the models learnt to tell stains apart by colour, so their answers on "
            f"{'these' if n > 1 else 'it'} are unreliable.")
