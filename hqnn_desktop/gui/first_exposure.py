"""Run start-up work only once the window is on screen.

Anything started before the first paint competes with it: loading the packs imports
torch in a worker thread, and that import holds Python's interpreter lock for most of
a second, so the window appeared ~0.9 s later when loading began right after ``show()``.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QWidget

#: If the window system never reports the window as exposed (minimised start, unusual
#: platforms), the work starts anyway after this delay.
FALLBACK_MS = 1500


class _ExposureWatch(QObject):
    def __init__(self, widget: QWidget, callback: Callable[[], None], fallback_ms: int) -> None:
        handle = widget.windowHandle()
        super().__init__(handle)
        self._handle = handle
        self._callback: Callable[[], None] | None = callback
        handle.installEventFilter(self)
        QTimer.singleShot(fallback_ms, self, self._fire)

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Expose and self._handle.isExposed():
            # The first paint happens while this event is handled; the work starts just after.
            QTimer.singleShot(0, self, self._fire)
        return False

    def _fire(self) -> None:
        if self._callback is None:
            return
        callback, self._callback = self._callback, None
        self._handle.removeEventFilter(self)
        callback()


def after_first_exposure(widget: QWidget, callback: Callable[[], None], fallback_ms: int = FALLBACK_MS) -> None:
    """Call ``callback`` once, just after ``widget``'s window is first painted on screen.

    ``widget`` must have been shown (its native window exists).
    """
    _ExposureWatch(widget, callback, fallback_ms)
