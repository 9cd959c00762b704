"""Where settings, user data (packs, job records, reviews) and logs live (platformdirs).

``$HQNN_CONFIG_DIR``, ``$HQNN_DATA_DIR`` and ``$HQNN_LOG_DIR`` override them, which
is how tests and portable installs keep everything in one place.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

APP = "hqnn-desktop"


def _dir(env: str, default) -> Path:
    value = os.environ.get(env)
    path = Path(value) if value else Path(default(APP, appauthor=False))
    path.mkdir(parents=True, exist_ok=True)
    return path


def config_dir() -> Path:
    from platformdirs import user_config_dir

    return _dir("HQNN_CONFIG_DIR", user_config_dir)


def data_dir() -> Path:
    from platformdirs import user_data_dir

    return _dir("HQNN_DATA_DIR", user_data_dir)


def log_dir() -> Path:
    from platformdirs import user_log_dir

    return _dir("HQNN_LOG_DIR", user_log_dir)


def unwritable_reason(path: str | os.PathLike) -> str | None:
    """Why ``path`` could not be created (None when it can): checked before a long run writes it, so
    that hours of work are not lost at the end. Missing folders on the way count as creatable."""
    folder = Path(path).parent
    while not os.path.lexists(folder) and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        return f"{folder} is a file, not a folder"
    if not os.access(folder, os.W_OK | os.X_OK):
        read_only = hasattr(os, "statvfs") and bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
        return f"{folder} is on a read-only disk" if read_only else f"you have no permission to write in {folder}"
    try:  # the permission bits can say yes where the disk says no (system folders, a full quota)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        return f"{folder} does not take new files ({exc.strerror or exc})"
    return None


def write_failure(what: str, path: str | os.PathLike, exc: OSError) -> str:
    """``what`` could not be written to ``path``, in words: why the place takes no files when that is
    the cause (the system's own errno can be baffling, "no such file" for a system folder), else the
    system's reason, and never the name of the temporary file the write went through."""
    reason = unwritable_reason(path) or exc.strerror or str(exc)
    return f"{what} could not be written to {path}: {reason}."
