"""User settings (last folders, chosen pack, window layout) as JSON in the config folder.

Read leniently (a damaged file is set aside and defaults are used), written atomically.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from .paths import config_dir
from .storage import atomic_write_json, damaged_backup_name, remove_leftover_temporaries

log = logging.getLogger(__name__)


class Settings:
    """A small persistent key-value store."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or config_dir() / "settings.json"
        self._data: dict[str, Any] = {}
        #: Where an unreadable settings file was set aside this time (for telling the user).
        self.damaged_backup: Path | None = None
        remove_leftover_temporaries(self.path)  # from a save that was killed half-way
        if self.path.exists():
            try:
                data = json.loads(self.path.read_text(encoding="utf-8"))
                if not isinstance(data, dict):
                    raise ValueError("not a table of settings")  # noqa: TRY004 (a bad file, not a bug)
                self._data = data
            except (OSError, ValueError, RecursionError):  # ValueError: bad JSON or UTF-8 too
                self.damaged_backup = self._set_aside()

    def _set_aside(self) -> Path:
        """Move the damaged file out of the way under a name no earlier backup has (each is kept), and
        return where it is now; where it cannot be moved (a read-only folder) it stays where it is."""
        backup = damaged_backup_name(self.path)
        try:
            self.path.replace(backup)
        except OSError as exc:
            log.warning("settings file %s is damaged and cannot be moved (%s); using defaults", self.path, exc)
            return self.path
        log.warning("settings file %s is damaged; kept as %s, using defaults", self.path, backup)
        return backup

    def get(self, key: str, default: Any = None, kind: type | None = None) -> Any:
        """The stored value, or ``default`` when there is none or it is not of the expected type.

        The type expected is ``kind``, else the default's. A hand-edited or foreign settings
        file (``"tab": "x"``) must not stop the app from starting.
        """
        value = self._data.get(key, default)
        expected = kind or (type(default) if default is not None else None)
        if value is None or expected is None:
            return value
        if not isinstance(value, expected) or (isinstance(value, bool) and expected is not bool):
            log.warning("setting %r has an unexpected value %r; using %r", key, value, default)
            return default
        return value

    def set(self, key: str, value: Any) -> None:
        self._data[key] = value

    def save(self) -> None:
        atomic_write_json(self.path, self._data)
