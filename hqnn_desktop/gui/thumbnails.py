"""Thumbnails decoded off the GUI thread, cached, and announced when ready.

Decoding even a small JPEG takes milliseconds; doing it inside a view's paint
(as a naive model does) stalls the window for a tenth of a second whenever a
screenful of new rows appears during a batch. Here views ask :meth:`get`, get
``None`` at first, and repaint when :attr:`ThumbnailCache.loaded` fires.
"""

from __future__ import annotations

from collections import OrderedDict

from PySide6.QtCore import QObject, QRunnable, QSize, Qt, QThreadPool, Signal
from PySide6.QtGui import QImage, QImageReader, QPixmap

#: Unstarted requests beyond this are dropped (the view asks again for what is still visible).
MAX_PENDING = 256


def read_thumbnail_image(path: str, size: int) -> QImage:
    """A small picture of an image, decoded at reduced size (EXIF orientation applied); null if unreadable.

    Safe in any thread (QImage, unlike QPixmap, is not tied to the GUI thread).
    """
    reader = QImageReader(path)
    reader.setAutoTransform(True)
    full = reader.size()
    if full.isValid():
        reader.setScaledSize(full.scaled(QSize(size, size), Qt.KeepAspectRatio))
    return reader.read()


def read_thumbnail(path: str, size: int) -> QPixmap:
    """Synchronous version for one-off pictures (reports); empty pixmap if unreadable."""
    image = read_thumbnail_image(path, size)
    return QPixmap.fromImage(image) if not image.isNull() else QPixmap()


class _Signals(QObject):
    decoded = Signal(str, QImage)


class _Decode(QRunnable):
    def __init__(self, path: str, size: int, signals: _Signals) -> None:
        super().__init__()
        self.path, self.size, self.signals = path, size, signals

    def run(self) -> None:
        self.signals.decoded.emit(self.path, read_thumbnail_image(self.path, self.size))


class ThumbnailCache(QObject):
    """Least-recently-used cache of thumbnails of one size, filled by one background thread."""

    loaded = Signal(str)

    def __init__(self, size: int, capacity: int = 3000, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.size, self.capacity = size, capacity
        self._cache: OrderedDict[str, QPixmap] = OrderedDict()
        self._pending: set[str] = set()
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)
        self._signals = _Signals(self)
        self._signals.decoded.connect(self._decoded)

    def get(self, path: str) -> QPixmap | None:
        """The thumbnail if it is ready (an empty pixmap for unreadable files), else None and a request."""
        pix = self._cache.get(path)
        if pix is not None:
            self._cache.move_to_end(path)
            return pix
        if path not in self._pending:
            if len(self._pending) >= MAX_PENDING:
                self._pool.clear()
                self._pending.clear()
            self._pending.add(path)
            self._pool.start(_Decode(path, self.size, self._signals))
        return None

    def clear(self) -> None:
        self._pool.clear()
        self._pending.clear()
        self._cache.clear()

    def wait(self, msecs: int = 5000) -> bool:
        """Wait for decodes in flight (tests, closing)."""
        return self._pool.waitForDone(msecs)

    def _decoded(self, path: str, image: QImage) -> None:
        self._pending.discard(path)
        self._cache[path] = QPixmap.fromImage(image) if not image.isNull() else QPixmap()
        if len(self._cache) > self.capacity:
            self._cache.popitem(last=False)
        self.loaded.emit(path)
