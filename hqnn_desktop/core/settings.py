"""User settings (last folders, chosen pack, window layout) as JSON in the config folder.

Read leniently (a damaged file is set aside and defaults are used), written atomically.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from .paths import config_dir
from .storage import atomic_write_json, remove_leftover_temporaries

log = logging.getLogger(__name__)


class Settings:
    """A small persistent key-value store."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or config_dir() / "settings.json"
        self._data: dict[str, Any] = {}
        remove_leftover_temporaries(self.path)  # from a save that was killed half-way
        if self.path.exists():
            try:
                data = json.loads(self.path.read_text(encoding="utf-8"))
                self._data = data if isinstance(data, dict) else {}
            except (OSError, UnicodeDecodeError, json.JSONDecodeError):
                backup = self.path.with_suffix(".damaged.json")
                log.warning("settings file %s is damaged; kept as %s, using defaults", self.path, backup)
                self.path.replace(backup)

    def get(self, key: str, default: Any = None) -> Any:
        return self._data.get(key, default)

    def set(self, key: str, value: Any) -> None:
        self._data[key] = value

    def save(self) -> None:
        atomic_write_json(self.path, self._data)
