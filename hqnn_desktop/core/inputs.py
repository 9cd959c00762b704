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


def iter_image_paths(inputs: Iterable[str | os.PathLike]) -> Iterator[str]:
    """Expand files and folders (recursively, sorted) into the image paths to classify.

    Files named explicitly are always returned (a non-image then gets an error
    row); inside folders only image-like names are taken, hidden and system
    files are skipped, and symbolic-link loops are not followed twice.
    """
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            yield from _walk_folder(p)
        else:
            yield str(item)


def _walk_folder(root: Path) -> Iterator[str]:
    seen: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:
            dirnames[:] = []
            continue
        seen.add(real)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if is_image_name(path):
                yield str(path)
