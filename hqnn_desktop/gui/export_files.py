"""Files the window exports (tables, plots, reports): a name checked and completed first, then
written atomically, each failure an :class:`ExportError` in words, never a half-written file."""

from __future__ import annotations

import os
from pathlib import Path

from ..core.paths import write_failure
from ..core.storage import atomic_write_bytes


class ExportError(Exception):
    """An export that cannot be done, explained for the user (no file was written)."""


def _check_place(path: str, what: str) -> None:
    """Refuse, in words, a name that is a folder or lies inside a file (the system's own
    reasons, "file exists" or "not a directory", would puzzle)."""
    if os.path.isdir(path):
        raise ExportError(f"{what} could not be written: {path} is a folder; choose a file name.")
    above = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(above):  # False, never an error, for a folder that cannot be read
        above = os.path.dirname(above)
    if not os.path.isdir(above):
        raise ExportError(f"{what} could not be written to {path}: {above} is a file, not a folder.")


def export_target(path: str, suffixes: tuple[str, ...], what: str) -> str:
    """``path`` if its suffix is one of ``suffixes``; with the first added when it has none,
    since the save dialog does not add it everywhere; otherwise an :class:`ExportError`."""
    _check_place(path, what)
    suffix = Path(path).suffix.lower()
    if suffix in suffixes:
        return path
    if not suffix:
        return path + suffixes[0]
    names = " or ".join(s.lstrip(".").upper() for s in suffixes)
    ends = " or ".join(suffixes)
    raise ExportError(f"{what} can be saved as {names} only: choose a name ending in {ends}.")


def write_files(contents: dict[str, bytes], what: str) -> None:
    """Write each file atomically, after checking that none is a folder: a failed export leaves
    no half-written file, and the user's message names the file, not a temporary one."""
    for path in contents:
        _check_place(path, what)
    for path, data in contents.items():
        try:
            atomic_write_bytes(path, data)
        except OSError as exc:
            raise ExportError(write_failure(what, path, exc)) from exc
