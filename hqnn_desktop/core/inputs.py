"""What goes into and comes out of the batch engine: image paths found, per-image results.

Free of torch so the GUI can use it before the models are loaded.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .imageio import is_image_name
from .walk import picture_identity, walk_files

#: Where a pack's cell window lies in a picture: left, top, right, bottom as fractions of its size.
Window = tuple[float, float, float, float]


@dataclass
class ImageResult:
    """Per-image outcome: probabilities per model, or the reason the file was not usable."""

    path: str
    error: str | None = None
    proba: dict[str, np.ndarray] = field(default_factory=dict)
    features: np.ndarray | None = None
    codes: dict[str, np.ndarray] = field(default_factory=dict)
    embeddings: dict[str, np.ndarray] = field(default_factory=dict)
    #: True when the image is unlike the pack's training data (None: the pack cannot tell).
    unlike_training: bool | None = None
    #: The picture has no colour while the pack learnt from colour pictures (then also unlike them).
    no_colour: bool = False
    #: For packs that centre on the stained cell: the part of the picture the models saw; None: all of it.
    window: Window | None = None
    #: How many pictures the file holds (pages, frames); only the first is classified.
    frames: int = 1


def iter_image_paths(inputs: Iterable[str | os.PathLike], already: Iterable[str] = (),
                     skipped: list[str] | None = None,
                     twice: list[tuple[str, str]] | None = None) -> Iterator[str]:
    """Expand files and folders (recursively, sorted) into the image paths to classify.

    Files named explicitly are always returned (a non-image then gets an error
    row); inside folders only image-like names are taken (HEIC, SVG, microscope
    files and other formats that cannot be read too, so they get an error row
    rather than vanishing), hidden and system files and folders are skipped (:mod:`core.walk`), and
    symbolic-link loops are not followed twice. A file
    reached twice (named twice, inside a folder also given, or through a link, symbolic or hard) is returned once,
    under the first path given, so it gets one row per model and not two. A
    subfolder that cannot be opened is returned itself, so that it gets an
    error row instead of silently contributing nothing. Files reached by the paths in
    ``already`` (images classified before, such as those the window shows) are left out.
    Files in the folders passed over for their names (not hidden or system ones) are added to ``skipped``,
    so that the caller can say so; so are the files reached twice, as ``(path, first path)`` in
    ``twice``: a picture that vanished from the results without a word looks lost.
    """
    earlier = {picture_identity(p) for p in already}
    first: dict[object, str] = {}
    for path in _expand(inputs, skipped):
        key = picture_identity(path)
        if key in earlier:
            continue
        if key in first:
            if twice is not None:
                twice.append((path, first[key]))
            continue
        first[key] = path
        yield path


def _expand(inputs: Iterable[str | os.PathLike], skipped: list[str] | None) -> Iterator[str]:
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            yield from _walk_folder(p, skipped)
        else:
            yield str(item)


def _walk_folder(root: Path, skipped: list[str] | None) -> Iterator[str]:
    for path, readable in walk_files(root):
        if not readable or is_image_name(Path(path), unreadable_too=True):
            yield path  # a folder that cannot be opened gets its error row
        elif skipped is not None:
            skipped.append(path)
