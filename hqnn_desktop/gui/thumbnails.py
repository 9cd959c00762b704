"""Thumbnails decoded off the GUI thread, cached, and announced when ready.

Decoding even a small JPEG takes milliseconds; doing it inside a view's paint
(as a naive model does) stalls the window for a tenth of a second whenever a
screenful of new rows appears during a batch. Here views ask :meth:`get`, get
``None`` at first, and repaint when :attr:`ThumbnailCache.loaded` fires.
"""

from __future__ import annotations

from collections import OrderedDict

from PySide6.QtCore import QObject, QRect, QRunnable, QSize, Qt, QThreadPool, Signal
from PySide6.QtGui import QImage, QImageIOHandler, QImageReader, QPixmap

from ..core.imageio import ImageError, exif_orientation, load_rgb
from ..core.inputs import Window

#: Unstarted requests beyond this are dropped (the view asks again for what is still visible).
MAX_PENDING = 256


def read_thumbnail_image(path: str, size: int, window: Window | None = None) -> QImage:
    """A small picture of an image, decoded at reduced size (EXIF orientation applied); null if unreadable.

    With a pack's cell ``window``, only that part, decoded large enough to fill ``size``: a
    gallery of whole smear fields then shows the cells the models classified.
    Safe in any thread (QImage, unlike QPixmap, is not tied to the GUI thread).
    """
    reader = QImageReader(path)
    reader.setAutoTransform(True)
    full = reader.size()
    target = size if window is None else round(size / max(1e-3, min(window[2] - window[0], window[3] - window[1])))
    if _qt_reads_it_otherwise(reader) or (reader.transformation() == QImageIOHandler.TransformationNone
                                          and exif_orientation(path) != 1):
        # Qt ignores the orientation tag of PNG and WebP files, and reads pictures of more than 8 bits
        # (12-bit cameras, half-floats, colour planes) otherwise than the models or not at all
        image = _upright_by_pillow(path, target)
    else:
        if full.isValid():
            scaled = full.scaled(QSize(target, target), Qt.KeepAspectRatio)
            if scaled.width() < full.width():  # never decoded larger than stored
                reader.setScaledSize(scaled)
        image = reader.read()
    if window is None or image.isNull():
        return image
    w, h = image.width(), image.height()
    left, top, right, bottom = window
    return image.copy(QRect(round(left * w), round(top * h), max(1, round((right - left) * w)),
                            max(1, round((bottom - top) * h))))


#: Qt formats of pictures of more than 8 bits per sample.
_DEEP_QT_FORMATS = (QImage.Format_Grayscale16, QImage.Format_RGBX64, QImage.Format_RGBA64,
                    QImage.Format_RGBA64_Premultiplied, QImage.Format_RGBX16FPx4, QImage.Format_RGBA16FPx4,
                    QImage.Format_RGBX32FPx4, QImage.Format_RGBA32FPx4)


def _qt_reads_it_otherwise(reader: QImageReader) -> bool:
    """Whether Qt's picture of the file may differ from the models': a TIFF (Qt's reader knows
    fewer variants), a picture of more than 8 bits, or one Qt cannot read at all."""
    return reader.format() == b"tiff" or not reader.canRead() or reader.imageFormat() in _DEEP_QT_FORMATS


def _upright_by_pillow(path: str, target: int) -> QImage:
    """The picture decoded as the models decode it (EXIF orientation applied), at most ``target``
    pixels on its longer side; null if unreadable."""
    try:
        im = load_rgb(path)
    except ImageError:
        return QImage()
    im.thumbnail((target, target))
    return QImage(im.tobytes(), im.width, im.height, 3 * im.width, QImage.Format_RGB888).copy()


def read_thumbnail(path: str, size: int, window: Window | None = None) -> QPixmap:
    """Synchronous version for one-off pictures (reports); empty pixmap if unreadable."""
    image = read_thumbnail_image(path, size, window)
    return QPixmap.fromImage(image) if not image.isNull() else QPixmap()


class _Signals(QObject):
    decoded = Signal(object, QImage)


class _Decode(QRunnable):
    def __init__(self, key: tuple[str, Window | None], size: int, signals: _Signals) -> None:
        super().__init__()
        self.key, self.size, self.signals = key, size, signals

    def run(self) -> None:
        self.signals.decoded.emit(self.key, read_thumbnail_image(self.key[0], self.size, self.key[1]))


class ThumbnailCache(QObject):
    """Least-recently-used cache of thumbnails of one size, filled by one background thread."""

    loaded = Signal(str)

    def __init__(self, size: int, capacity: int = 3000, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.size, self.capacity = size, capacity
        self._cache: OrderedDict[tuple[str, Window | None], QPixmap] = OrderedDict()
        self._pending: set[tuple[str, Window | None]] = set()
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)
        self._signals = _Signals(self)
        self._signals.decoded.connect(self._decoded)

    def get(self, path: str, window: Window | None = None) -> QPixmap | None:
        """The thumbnail (of a pack's cell ``window`` only, when given) if it is ready (an empty
        pixmap for unreadable files), else None and a request."""
        key = (path, window)
        pix = self._cache.get(key)
        if pix is not None:
            self._cache.move_to_end(key)
            return pix
        if key not in self._pending:
            if len(self._pending) >= MAX_PENDING:
                self._pool.clear()
                self._pending.clear()
            self._pending.add(key)
            self._pool.start(_Decode(key, self.size, self._signals))
        return None

    def clear(self) -> None:
        self._pool.clear()
        self._pending.clear()
        self._cache.clear()

    def wait(self, msecs: int = 5000) -> bool:
        """Wait for decodes in flight (tests, closing)."""
        return self._pool.waitForDone(msecs)

    def _decoded(self, key: tuple[str, Window | None], image: QImage) -> None:
        self._pending.discard(key)
        self._cache[key] = QPixmap.fromImage(image) if not image.isNull() else QPixmap()
        if len(self._cache) > self.capacity:
            self._cache.popitem(last=False)
        self.loaded.emit(key[0])
