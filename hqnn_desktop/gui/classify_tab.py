"""Classify tab: images in, predictions of the three models side by side, never blocking."""

from __future__ import annotations

import html
import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QItemSelectionModel, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QImage, QPainter, QPen, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from ..core.inputs import ImageResult, Window, iter_image_paths
from ..core.kinds import MODEL_TITLES
from ..core.results import no_colour_note, not_pictures_note, several_pictures_note, twice_note
from .class_names import axis_names
from .results_model import THUMB, ResultsFilter, ResultsModel
from .thumbnails import ThumbnailCache
from .wording import BAR_MARK, colour_key, counted
from .workers import start_worker

if TYPE_CHECKING:
    from ..core.predict import Engine

#: Longest side of the large picture of the selected image (decoded at this size, in the background).
PREVIEW = 720
IDLE_TEXT = "Drop images or folders here, or use File > Open."
MODEL_COLORS = {"hqnn": (90, 60, 200), "classical": (30, 150, 110), "baseline": (150, 150, 150)}


def saliency_overlay(pack, path: str, kind: str) -> tuple[np.ndarray, str]:
    """Worker function: the model input with its Grad-CAM heat map blended in (RGB uint8)."""
    from ..core.saliency import grad_cam

    image = pack.model_input(path)
    cam, k = grad_cam(pack, image, kind)
    if not cam.max() > 0:
        raise ValueError("this model's score does not change locally for this image (its encoding is "
                         "saturated), so there is nothing to show")
    heat = pg.colormap.get("inferno").map(cam, mode="byte")[..., :3].astype(np.float32)
    alpha = 0.6 * cam[..., None]
    blended = (image.astype(np.float32) * (1 - alpha) + heat * alpha).clip(0, 255).astype(np.uint8)
    return np.ascontiguousarray(blended), pack.labels[k]


def classify_stream(engine: Engine, inputs: list[str], stop: threading.Event, shown: tuple[str, ...] = ()):
    """Generator run in a worker thread: yields (results chunk, done, total, passed over, twice).

    Images already ``shown`` in the table (a folder dropped again) are not classified twice.
    The files of the folders left out for their names, and the files reached twice, come once,
    in the first item, so that the window can say so as the command line does.
    """
    passed_over: list[str] = []
    twice: list[tuple[str, str]] = []
    paths = list(iter_image_paths(inputs, already=shown, skipped=passed_over, twice=twice))
    total, done, chunk, last = len(paths), 0, [], time.monotonic()
    yield [], 0, total, tuple(passed_over), tuple(twice)
    for result in engine.classify(paths, cancelled=stop.is_set):
        chunk.append(result)
        done += 1
        if len(chunk) >= 64 or time.monotonic() - last > 0.2:
            yield chunk, done, total, (), ()
            chunk, last = [], time.monotonic()
    yield chunk, done, total, (), ()


class ProbabilityPlot(pg.PlotWidget):
    """Per-class probability bars of the three models side by side.

    The key of the colours is the plot's title, above the bars: a legend inside the plot covered
    the bars of whichever class it sat over, and needed the y axis stretched to 1.3.
    """

    #: the top of the y axis: a bar of 100 % ends just below it, not on the frame
    Y_TOP = 1.02

    def __init__(self) -> None:
        super().__init__()
        self.setBackground(None)
        self.setMinimumHeight(180)
        self.setYRange(0, self.Y_TOP, padding=0)
        self.setMouseEnabled(False, False)
        self.bars: list[pg.BarGraphItem] = []

    def show_result(self, result: ImageResult | None, labels: list[str], models: tuple[str, ...]) -> None:
        for b in self.bars:
            self.removeItem(b)
        self.bars = []
        if result is None or result.error:
            self.setTitle(None)
            return
        width = 0.8 / max(1, len(models))
        for i, kind in enumerate(models):
            x = np.arange(len(labels)) - 0.4 + width * (i + 0.5)
            bar = pg.BarGraphItem(x=x, height=result.proba[kind], width=width,
                                  brush=pg.mkBrush(*MODEL_COLORS[kind]), name=MODEL_TITLES[kind])
            self.addItem(bar)
            self.bars.append(bar)
        self.getAxis("bottom").setTicks([list(enumerate(axis_names(labels)))])
        self.setTitle(colour_key(((MODEL_TITLES[k], MODEL_COLORS[k]) for k in models), BAR_MARK))
        self.setYRange(0, self.Y_TOP, padding=0)


class ClassifyTab(QWidget):
    """Table of results with filters, a detail panel, progress, Cancel and export."""

    status = Signal(str)
    error = Signal(str, str)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.engine: Engine | None = None
        self.worker = None
        self._stop = threading.Event()
        self._queued: list[str] = []
        self._queued_dropped = 0  # items dropped during a batch that Cancel then dropped too, to be said
        self._batch_total = 0  # images the running batch found (none new: said, as nothing else changes)
        #: Every file and folder the user gave, in order: classified again when the pack changes.
        self._inputs: list[str] = []
        #: files of the given folders left out for their names, said when the batch ends
        self._passed_over: dict[str, None] = {}
        self._twice: dict[tuple[str, str], None] = {}
        self._started = 0.0

        self.model = ResultsModel(self)
        self.proxy = ResultsFilter(self)
        self.proxy.setSourceModel(self.model)
        self.table = QTableView()
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(0, Qt.AscendingOrder)  # input order (Qt's default indicator is descending)
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SingleSelection)
        self.table.verticalHeader().setDefaultSectionSize(THUMB + 4)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.Interactive)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.selectionModel().currentRowChanged.connect(self._show_current)

        self.class_filter = QComboBox()
        self.class_filter.setSizeAdjustPolicy(QComboBox.AdjustToContents)
        self.class_filter.setToolTip("Show only images predicted as this class by any model")
        self.flag_filter = QComboBox()
        self.flag_filter.addItems(["All images", "models disagree", "low confidence", "unlike training data",
                                   "unusable"])
        self.flag_filter.setToolTip("Show only flagged images")
        for combo in (self.class_filter, self.flag_filter):
            combo.currentIndexChanged.connect(self._apply_filter)

        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.progress_label = QLabel(IDLE_TEXT)
        self.progress_label.setWordWrap(True)  # the note on files passed over is long: wrapped, not widening the window
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop classifying (Esc); results so far are kept")
        self.cancel_button.setShortcut("Esc")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.clear_button = QPushButton("Clear")
        self.clear_button.setToolTip("Empty the list (the image files are not touched)")
        self.clear_button.clicked.connect(self.clear)

        self.preview = QLabel()
        self.preview.setAlignment(Qt.AlignCenter)
        self.preview.setMinimumSize(260, 260)
        self.previews = ThumbnailCache(PREVIEW, capacity=64, parent=self)
        self.previews.loaded.connect(self._preview_loaded)
        self.detail = QLabel()
        self.detail.setWordWrap(True)
        self.detail.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.plot = ProbabilityPlot()
        self.saliency_box = QCheckBox("Saliency (Grad-CAM) of")
        self.saliency_box.setToolTip("Overlay where in the image the chosen model's prediction comes from")
        self.saliency_model = QComboBox()
        self.saliency_box.toggled.connect(self._show_current)
        self.saliency_model.currentIndexChanged.connect(self._show_current)
        self._saliency_worker = None
        self._saliency_for: tuple | None = None
        self._overlay_for: tuple | None = None  # the (path, model) whose overlay the preview shows

        filters = QHBoxLayout()
        filters.addWidget(QLabel("Class:"))
        filters.addWidget(self.class_filter)
        filters.addWidget(QLabel("Show:"))
        filters.addWidget(self.flag_filter)
        filters.addStretch(1)
        left = QWidget()
        lv = QVBoxLayout(left)
        lv.setContentsMargins(0, 0, 0, 0)
        lv.addLayout(filters)
        lv.addWidget(self.table)
        right = QWidget()
        rv = QVBoxLayout(right)
        rv.setContentsMargins(0, 0, 0, 0)
        rv.addWidget(self.preview, 3)
        sal = QHBoxLayout()
        sal.addWidget(self.saliency_box)
        sal.addWidget(self.saliency_model)
        sal.addStretch(1)
        rv.addLayout(sal)
        rv.addWidget(self.detail)
        rv.addWidget(self.plot, 2)
        split = self.splitter = QSplitter()
        split.addWidget(left)
        split.addWidget(right)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        split.setSizes([720, 480])  # the three models' columns and the flags visible at the first start
        bottom = QHBoxLayout()
        bottom.addWidget(self.progress_label, 1)
        bottom.addWidget(self.progress, 1)
        bottom.addWidget(self.cancel_button)
        bottom.addWidget(self.clear_button)
        layout = QVBoxLayout(self)
        layout.addWidget(split, 1)
        layout.addLayout(bottom)

    # ------------------------------------------------------------------ engine and inputs
    def set_engine(self, engine: Engine | None) -> None:
        """Use a newly loaded pack (``None`` while one loads).

        Results of the previous pack are cleared (they would be read as this pack's), and
        the images they were for are classified again as soon as the new pack is ready.
        """
        self.cancel()
        self._queued.clear()  # they are in _inputs, added again below
        self._queued_dropped = 0
        self.engine = engine
        self._reset_results()
        labels = engine.pack.labels if engine else []
        self.saliency_model.blockSignals(True)
        self.saliency_model.clear()
        for kind in (engine.models if engine else ()):
            self.saliency_model.addItem(MODEL_TITLES[kind], kind)
        self.saliency_model.blockSignals(False)
        self.class_filter.blockSignals(True)
        self.class_filter.clear()
        self.class_filter.addItems(["All classes"] + labels)
        self.class_filter.blockSignals(False)
        self.table.setColumnWidth(0, THUMB + 8)
        self.table.setColumnWidth(1, 170)
        for col in range(2, 2 + len(self.model.models)):
            self.table.setColumnWidth(col, 125)  # "eosinophil  99%"
        self.table.setWordWrap(False)
        if engine and self._inputs:
            self.add_paths(list(self._inputs))

    def clear(self) -> None:
        """Stop classifying and empty the list; the pack stays loaded."""
        self.cancel()
        self._queued_dropped = 0  # emptied on purpose: nothing to report
        self._inputs.clear()
        for combo in (self.class_filter, self.flag_filter):
            combo.setCurrentIndex(0)
        self._reset_results()
        self.progress_label.setText(IDLE_TEXT)

    def _reset_results(self) -> None:
        self.model.reset(self.engine.pack.labels if self.engine else [], self.engine.models if self.engine else ())
        self._passed_over.clear()
        self._twice.clear()
        self.progress.reset()
        self.progress_label.setText("" if self._inputs else IDLE_TEXT)
        self._show_current()

    def add_paths(self, paths: list[str]) -> None:
        """Classify files and folders in the background (queued until a pack is loaded)."""
        paths = [str(p) for p in paths if p]
        if not paths:
            return
        self._inputs.extend(p for p in dict.fromkeys(paths) if p not in self._inputs)
        if self.engine is None or self.busy():
            self._queued.extend(paths)
            if self.engine is None:
                self.status.emit("Models are loading; the images will be classified as soon as they are ready.")
            return
        self._stop = threading.Event()
        self._started = time.monotonic()
        self._batch_total = 0
        self.cancel_button.setEnabled(True)
        self.progress.setRange(0, 0)
        self.progress_label.setText("Looking for images…")
        self.status.emit("Classifying…")
        shown = tuple(r.path for r in self.model.results)
        self.worker = start_worker(classify_stream, self.engine, paths, self._stop, shown, yielded=self._on_chunk,
                                   errored=self._on_error, finished=self._on_finished)

    def busy(self) -> bool:
        return self.worker is not None

    def cancel(self) -> None:
        if self.worker is not None:
            self._stop.set()
            self._queued_dropped += len(self._queued)  # pressed twice: the first count stays
            self._queued.clear()
            self.progress_label.setText("Cancelling…")

    def wait(self, timeout: float = 30.0) -> None:
        """Block until the current batch is finished (used when closing the window)."""
        from PySide6.QtCore import QCoreApplication

        end = time.monotonic() + timeout
        while self.worker is not None and time.monotonic() < end:
            QCoreApplication.processEvents()
            time.sleep(0.01)

    # ------------------------------------------------------------------ worker callbacks
    def _on_chunk(self, item) -> None:
        if self._stop.is_set():  # results still in flight after Cancel, Clear or a pack change
            return
        chunk, done, total, passed_over, twice = item
        self._batch_total = total
        self._passed_over.update(dict.fromkeys(passed_over))
        self._twice.update(dict.fromkeys(twice))
        self.model.append(chunk)
        self.progress.setRange(0, max(1, total))
        self.progress.setValue(done)
        elapsed = time.monotonic() - self._started
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = (total - done) / rate if rate > 0 else 0.0
        waiting = (f" · then {counted(len(self._queued), 'more item')} dropped meanwhile" if self._queued else "")
        self.progress_label.setText(f"{done} of {total} images · {rate:.1f}/s · about {eta:.0f} s left{waiting}"
                                    if done < total else f"{done} images classified{waiting}")

    def _on_error(self, exc: Exception) -> None:
        self.error.emit("Classification stopped because of an unexpected problem.", repr(exc))

    def _on_finished(self) -> None:
        cancelled = self._stop.is_set()
        self.worker = None
        self.cancel_button.setEnabled(False)
        n = len(self.model.results)
        bad = sum(1 for r in self.model.results if r.error)
        flagged = sum(1 for r in self.model.results if not r.error and self.model.flags_of(r))
        self.progress.setRange(0, 1)
        self.progress.setValue(1)
        if not n:
            self.progress_label.setText(IDLE_TEXT if cancelled else
                                        "No pictures found there: images are recognised by names ending in .jpg, "
                                        ".png, .tif and the like; a file dropped on its own is always tried.")
        else:
            listed = {os.path.normcase(os.path.abspath(r.path)) for r in self.model.results}
            passed_over = [p for p in self._passed_over  # a file passed over, then dropped on its own
                           if os.path.normcase(os.path.abspath(p)) not in listed]
            nothing_new = [] if self._batch_total or cancelled else [
                ("Nothing new was found in what was just dropped: its pictures are already in the list, or it "
                 "holds none.")]
            notes = [note for note in (*nothing_new, several_pictures_note(self.model.results),
                                       no_colour_note(self.model.results),
                                       not_pictures_note(passed_over, "drop a file on its own"),
                                       twice_note(list(self._twice)))
                     if note]
            counts = f"{counted(n, 'image')}, {bad} not usable" + (f", {flagged} flagged" if flagged else "")
            self.progress_label.setText(" ".join([f"{'Cancelled: ' if cancelled else ''}{counts}.", *notes]))
        if cancelled and self._queued_dropped:
            self.progress_label.setText(
                f"{self.progress_label.text() if n else 'Cancelled.'} {counted(self._queued_dropped, 'item')} dropped "
                f"during the batch {'was' if self._queued_dropped == 1 else 'were'} not classified either; drop "
                f"{'it' if self._queued_dropped == 1 else 'them'} again to classify {'it' if self._queued_dropped == 1 else 'them'}.")
        self._queued_dropped = 0
        if self.table.currentIndex().row() < 0 and self.proxy.rowCount():
            # the first image in detail once the batch is done (drawing it mid-batch stalls the window)
            self.table.selectionModel().setCurrentIndex(self.proxy.index(0, 0),
                                                        QItemSelectionModel.ClearAndSelect | QItemSelectionModel.Rows)
        self.status.emit("Ready")
        if self._queued:  # only what was added after a cancel is still queued
            queued, self._queued = self._queued, []
            self.add_paths(queued)

    # ------------------------------------------------------------------ saliency
    def _show_preview(self, path: str) -> None:
        """The selected image, large; decoded in the background (a camera photo takes a while)."""
        pixmap = self.previews.get(path)
        if pixmap is None:
            self.preview.setText("Loading the picture…")
        elif pixmap.isNull():
            self.preview.setText("(no preview)")
        else:
            result = self.current_result()
            window = result.window if result is not None and result.path == path else None
            self._set_preview(pixmap, window)

    def _preview_loaded(self, path: str) -> None:
        """The picture arrived: shown unless the saliency overlay of this image is already there
        (an unusable image, or one whose map failed, shows its picture rather than waiting)."""
        r = self.current_result()
        if r is not None and r.path == path and self._overlay_for != (path, self.saliency_model.currentData()):
            self._show_preview(path)

    def _set_preview(self, pixmap: QPixmap, window: Window | None = None) -> None:
        """Show ``pixmap`` fitted to the preview; with the pack's cell window, framed where the models
        looked (a field with several white cells: the user sees which one was classified)."""
        shown = pixmap.scaled(self.preview.size(), Qt.KeepAspectRatio, Qt.SmoothTransformation)
        if window is not None:
            left, top, right, bottom = window
            w, h = shown.width(), shown.height()
            painter = QPainter(shown)
            pen = QPen(QColor(255, 200, 0))
            pen.setWidth(max(2, round(min(w, h) / 150)))
            painter.setPen(pen)
            painter.drawRect(QRectF(left * w, top * h, (right - left) * w, (bottom - top) * h)
                             .adjusted(1, 1, -1, -1))
            painter.end()
        self.preview.setPixmap(shown)

    def _start_saliency(self, path: str, kind: str) -> None:
        if self._saliency_worker is not None:
            self._saliency_pending = (path, kind)
            return
        self._saliency_pending = None
        self._saliency_for = (path, kind)
        self._saliency_worker = start_worker(
            saliency_overlay, self.engine.pack, path, kind, returned=self._saliency_done,
            errored=lambda e: self.status.emit(f"No saliency map: {e}"), finished=self._saliency_finished)

    def _saliency_done(self, result) -> None:
        rgb, label = result
        current = self.current_result()
        if current is None or not self.saliency_box.isChecked() or self._saliency_for != (
                current.path, self.saliency_model.currentData()):
            return
        h, w, _ = rgb.shape
        image = QImage(rgb.data, w, h, 3 * w, QImage.Format_RGB888).copy()
        self._set_preview(QPixmap.fromImage(image))
        self._overlay_for = self._saliency_for
        self.status.emit(f"Saliency of {MODEL_TITLES[self._saliency_for[1]]} for the class {label}")

    def _saliency_finished(self) -> None:
        self._saliency_worker = None
        pending = getattr(self, "_saliency_pending", None)
        if pending is not None:
            self._start_saliency(*pending)

    # ------------------------------------------------------------------ presentation
    def _apply_filter(self) -> None:
        cls = self.class_filter.currentText() if self.class_filter.currentIndex() > 0 else None
        flag = self.flag_filter.currentText() if self.flag_filter.currentIndex() > 0 else None
        self.proxy.set_filter(cls, flag)

    def current_result(self) -> ImageResult | None:
        idx = self.table.currentIndex()
        if not idx.isValid():
            return None
        return self.model.results[self.proxy.mapToSource(idx).row()]

    def _show_current(self, *_) -> None:
        self._overlay_for = None
        r = self.current_result()
        if r is None:
            self.preview.clear()
            self.detail.clear()
            self.plot.show_result(None, [], ())
            return
        self._show_preview(r.path)
        if self.saliency_box.isChecked() and not r.error and self.engine is not None:
            self._start_saliency(r.path, self.saliency_model.currentData())
        name = html.escape(Path(r.path).name)  # any characters may be in a file name
        if r.error:
            self.detail.setText(f"<b>{name}</b><br>{html.escape(r.error)}")
            self.status.emit("")  # a saliency message of the row before no longer applies
        else:
            parts = []
            for kind in self.model.models:
                p = r.proba[kind]
                k = int(p.argmax())
                parts.append(f"{MODEL_TITLES[kind]}: <b>{self.model.labels[k]}</b> ({p[k]:.1%})")
            if r.window is not None:
                parts.append("<span style='color:#777'>The models saw the framed cell.</span>")
            flags = self.model.flags_of(r)
            self.detail.setText(f"<b>{name}</b><br>" + "<br>".join(parts)
                                + (f"<br><span style='color:#c87800'>{', '.join(flags)}</span>" if flags else ""))
        self.plot.show_result(r, self.model.labels, self.model.models)
