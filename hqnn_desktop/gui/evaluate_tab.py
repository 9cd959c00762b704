"""Evaluate tab: confusion matrices of the three models, per-class table, calibration; export."""

from __future__ import annotations

import csv
import gc
import io
import os
import threading
from pathlib import Path

import numpy as np
import pyqtgraph as pg
import shiboken6
from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QObject, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QImage, QPainter
from PySide6.QtSvg import QSvgGenerator
from PySide6.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from ..core.evaluate import (
    absent_classes_note,
    passed_over_note,
    per_class_defined,
    unlabelled_note,
)
from ..core.kinds import MODEL_TITLES
from ..core.orientations import card_orientations
from .classify_tab import MODEL_COLORS
from .confusion_plot import ConfusionPlot
from .embedding_view import EmbeddingView
from .export_files import ExportError, export_target, write_files
from .wording import DOT_MARK, colour_key
from .workers import start_worker

#: what the per-class table shows where a figure is undefined (an empty cell in the CSV)
UNDEFINED = "—"
#: PNG exports are drawn at this multiple of the on-screen size, sharp enough for print
PNG_SCALE = 2


class _Relay(QObject):
    """Carries the evaluation's progress (images done, images in all) to the GUI thread."""

    progress = Signal(int, int)


def run_evaluation(pack, folder: str, models: tuple[str, ...], stop: threading.Event, relay: _Relay):
    """Worker function: the report of ``hqnn-desktop evaluate`` for ``folder``."""
    from ..core.evaluate import evaluate_folder

    return evaluate_folder(pack, folder, models, progress=relay.progress.emit, cancelled=stop.is_set,
                           keep_latents=True)


def _paint_plot(plot: pg.PlotWidget, device) -> None:
    """Paint the plot as it is drawn on screen onto ``device``, filling it."""
    painter = QPainter(device)
    painter.setRenderHint(QPainter.Antialiasing)
    plot.scene().render(painter, QRectF(0, 0, device.width(), device.height()), plot.plotItem.sceneBoundingRect())
    painter.end()


def _settle(plot: pg.PlotWidget) -> None:
    """Make room for every axis label before painting to a file.

    pyqtgraph measures an axis's labels when it first paints it and leaves out those that do
    not fit yet; a scratch paint, then the layout done at once, gives the file every label,
    even for a plot not painted on screen yet.
    """
    _paint_plot(plot, QImage(_plot_size(plot), QImage.Format_ARGB32))
    plot.plotItem.layout.activate()


def _plot_size(plot: pg.PlotWidget) -> QSize:
    rect = plot.plotItem.sceneBoundingRect()
    return QSize(max(1, round(rect.width())), max(1, round(rect.height())))


def plot_svg(plot: pg.PlotWidget) -> bytes:
    """The plot as SVG, lines and text kept as vectors and text.

    Painted with QPainter on a QSvgGenerator: pyqtgraph's own SVG exporter fails on these plots.
    """
    _settle(plot)
    size = _plot_size(plot)
    buffer = QBuffer()
    buffer.open(QIODevice.WriteOnly)
    generator = QSvgGenerator()
    generator.setOutputDevice(buffer)
    generator.setSize(size)
    generator.setViewBox(QRectF(0, 0, size.width(), size.height()))
    generator.setTitle(plot.plotItem.titleLabel.text)
    _paint_plot(plot, generator)
    return bytes(buffer.data())


def plot_png(plot: pg.PlotWidget) -> bytes:
    """The plot as PNG on white (readable in any viewer or document), at :data:`PNG_SCALE`."""
    _settle(plot)
    image = QImage(_plot_size(plot) * PNG_SCALE, QImage.Format_ARGB32)
    image.fill(Qt.white)
    _paint_plot(plot, image)
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.WriteOnly)
    if not image.save(buffer, "PNG"):
        raise ExportError("The matrices could not be drawn as a picture.")
    return bytes(data)


def _draw_for_file(plot: ConfusionPlot, draw) -> bytes:
    """The matrix as a file at print size, whatever its size in the window.

    The copy is destroyed here, in the GUI thread, Qt side and Python side. Left to
    ``deleteLater`` and the cyclic collector, its Python side could be freed during a
    collection that happens to run in a worker thread; PySide then deletes the widget with
    that thread's Python lock held while the GUI thread waits on Qt's lock: the app hangs.
    """
    copy = plot.print_copy()
    try:
        return draw(copy)
    finally:
        copy.close()
        shiboken6.delete(copy)
        del copy
        gc.collect()


#: How far apart (in confidence) the models' reliability dots of one bin are drawn.
RELIABILITY_DODGE = 0.01


def reliability_dot_sizes(counts: tuple[int, ...], smallest: float = 4.0, largest: float = 18.0) -> list[float]:
    """Dot diameters whose area follows each bin's share of images.

    After calibration nearly every image sits in the top bin, and a bin of one or
    two images far from the diagonal would otherwise look as weighty as it.
    """
    most = max(counts) or 1
    return [smallest + (largest - smallest) * (n / most) ** 0.5 for n in counts]


class EvaluateTab(QWidget):
    """Shows a report: the pack's own validation results, or a folder the user evaluates."""

    error = Signal(str, str)
    status = Signal(str)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.pack = None
        self.report: dict | None = None
        #: what the shown report is ("Folder ...: 24 images, ..."), kept while another one runs
        self.report_source = ""
        self._folder = ""  # the folder being evaluated
        self.worker = None
        self._stop = threading.Event()
        self._stopped_by = ""
        self._relay = _Relay()
        self._relay.progress.connect(self._on_progress)
        self.source = QLabel("No results yet.")
        self.source.setWordWrap(True)
        self.evaluate_button = QPushButton("Evaluate a labelled folder…")
        self.evaluate_button.setToolTip("A folder with one subfolder per class, named like the pack's classes")
        self.evaluate_button.clicked.connect(self.choose_folder)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(lambda: self._stop.set())
        self.progress = QProgressBar()
        self.normalised = QCheckBox("Row-normalised")
        self.normalised.toggled.connect(self.refresh)
        self.export_table_button = QPushButton("Export table (CSV)…")
        self.export_table_button.clicked.connect(self.export_table)
        self.export_plots_button = QPushButton("Export matrices (PNG/SVG)…")
        self.export_plots_button.clicked.connect(self.export_plots)
        self.summary = QTableWidget(0, 5)
        self.summary.setHorizontalHeaderLabels(["model", "images", "accuracy", "macro-F1", "ECE"])
        self.summary.horizontalHeaderItem(3).setToolTip("Mean F1 of the classes that have images; a class "
                                                        "without any image is left out")
        self.per_class = QTableWidget(0, 0)
        for table in (self.summary, self.per_class):  # their first column names the row
            table.verticalHeader().hide()
        self.matrices = {k: ConfusionPlot() for k in MODEL_TITLES}
        # a short title: a long one holds the plot wider than a small window gives it, and cuts its right side off
        self.reliability = pg.PlotWidget(title="Reliability")
        self.reliability.setBackground(None)
        # the key under the plot, not in it: wherever it sat inside, it hid some pack's dots
        self.reliability_key = QLabel()
        self.reliability_key.setAlignment(Qt.AlignCenter)
        self.reliability.setRange(xRange=(0, 1), yRange=(0, 1), padding=0.05)
        self.reliability.setLabel("bottom", "confidence")
        self.reliability.setLabel("left", "share correct")
        self.embeddings = EmbeddingView()

        top = QHBoxLayout()
        for w in (self.evaluate_button, self.cancel_button, self.progress, self.normalised,
                  self.export_table_button, self.export_plots_button):
            top.addWidget(w)
        mats = QHBoxLayout()
        for plot in self.matrices.values():
            mats.addWidget(plot)
        tables = QHBoxLayout()
        tables.addWidget(self.summary, 2)
        tables.addWidget(self.per_class, 3)
        reliability = QWidget()
        column = QVBoxLayout(reliability)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.reliability, 1)
        column.addWidget(self.reliability_key)
        tables.addWidget(reliability, 2)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.source)
        self.views = QTabWidget()
        matrices_page = QWidget()
        mp = QVBoxLayout(matrices_page)
        mp.addLayout(mats, 3)
        mp.addLayout(tables, 2)
        self.views.addTab(matrices_page, "Confusion and per-class")
        self.views.addTab(self.embeddings, "Latent embeddings")
        layout.addWidget(self.views, 1)

    def set_pack(self, pack) -> None:
        """A pack was loaded: show its bundled validation results at once (an evaluation still running
        with the previous pack is stopped: its scores would be read as this pack's)."""
        if self.worker is not None and pack is not self.pack:
            self._stopped_by = f"the pack changed to {pack.name}" if pack is not None else "the pack changed"
            self._stop.set()
        self.pack = pack
        if pack is None:
            return
        val = pack.card.get("metrics", {}).get("validation", {})
        if val.get("models"):
            turns = card_orientations(pack.card)
            self.show_report({"labels": pack.labels, "models": val["models"]},
                             f"Validation results recorded in the pack {pack.name}: {val.get('split', '')}"
                             + (f" (each picture as it is; the pack averages {turns} orientations when it "
                                "classifies: Model card)" if turns > 1 else ""))

    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Labelled folder")
        if folder:
            self.evaluate(folder)

    def evaluate(self, folder: str) -> None:
        """Score the pack on a labelled folder in the background; the shown report stays until it is done."""
        if self.pack is None or self.worker is not None:
            return
        self._stop = threading.Event()
        self._stopped_by = ""  # why it was stopped when not by its Cancel button
        self._folder = folder
        self.progress.setRange(0, 0)
        self.cancel_button.setEnabled(True)
        self.evaluate_button.setEnabled(False)
        self.source.setText(f"Evaluating {folder}…{self._still_shown()}")
        models = tuple(self.pack.heads)
        self.worker = start_worker(
            run_evaluation, self.pack, folder, models, self._stop, self._relay, errored=self._on_error,
            finished=self._on_finished,
            returned=lambda r, pack=self.pack: self._evaluated(r, pack))

    def _still_shown(self) -> str:
        """The line naming what the tables and plots still show while, or after, another folder is
        evaluated: without it, a failed folder's header sat over the previous folder's figures."""
        return f"\nStill shown: {self.report_source}" if self.report else ""

    def _evaluated(self, report: dict, pack) -> None:
        if pack is not self.pack:  # finished just as another pack was chosen
            self._no_progress()
            return
        turns = report.get("orientations", 1)
        self.show_report(report, f"Folder {report['folder']} with the pack {pack.name}: {report['n_images']} "
                                 f"images, {report['n_unusable']} not usable"
                                 + (f"; probabilities averaged over {turns} orientations" if turns > 1 else ""))
        self.progress.setRange(0, 1)
        self.progress.setValue(1)

    def _no_progress(self) -> None:
        """An empty bar: a run that scored nothing must not read as 100 % done."""
        self.progress.setRange(0, 1)
        self.progress.reset()

    def _on_progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, total)
        self.progress.setValue(done)
        self.source.setText(f"Evaluating {self._folder}: {done} of {total} images…{self._still_shown()}")

    def _on_error(self, exc: Exception) -> None:
        from ..core.datasets import DatasetError
        from ..core.evaluate import EvaluationCancelled

        self._no_progress()
        if isinstance(exc, EvaluationCancelled):
            why = f"stopped because {self._stopped_by}" if self._stopped_by else "cancelled"
            said = (f"Evaluation of {self._folder} {why} after {exc.done} of {exc.total} images; nothing was "
                    "scored, since the images are read class by class and the first ones alone would give a "
                    "misleading picture.")
        elif isinstance(exc, DatasetError):
            said = str(exc)
        else:
            said = f"The evaluation of {self._folder} stopped; nothing was scored."
            self.error.emit("The evaluation stopped because of an unexpected problem.", repr(exc))
        self.source.setText(said + self._still_shown())

    def _on_finished(self) -> None:
        self.worker = None
        self.cancel_button.setEnabled(False)
        self.evaluate_button.setEnabled(True)

    def show_report(self, report: dict, source: str) -> None:
        """Show a report; ``source`` says what it is, and the header adds which classes had no image."""
        for note in (unlabelled_note(report), passed_over_note(report),
                     absent_classes_note(report, shown_as=UNDEFINED)):
            if note:
                source += f"\n{note}"
        self.report = report
        self.report_source = source
        self.source.setText(source)
        self.refresh()
        self.embeddings.set_latents(report.get("latents"), report["labels"])

    def refresh(self) -> None:
        r = self.report
        if not r:
            return
        labels, models = r["labels"], list(r["models"])
        self.summary.setRowCount(len(models))
        for i, m in enumerate(models):
            v = r["models"][m]
            for j, text in enumerate([MODEL_TITLES[m], str(v["n"]), f"{v['accuracy']:.4f}",
                                      f"{v['macro_f1']:.4f}", f"{v['ece']:.4f}"]):
                self.summary.setItem(i, j, QTableWidgetItem(text))
        headers = ["class"] + [f"{MODEL_TITLES[m]} {s}" for m in models for s in ("P", "R", "F1")]
        self.per_class.setColumnCount(len(headers))
        self.per_class.setHorizontalHeaderLabels(headers)
        self.per_class.setRowCount(len(labels))
        defined = {m: per_class_defined(r["models"][m], labels) for m in models}
        for i, lab in enumerate(labels):
            self.per_class.setItem(i, 0, QTableWidgetItem(lab))
            col = 1
            for m in models:
                for key in ("precision", "recall", "f1"):
                    value = defined[m][lab][key]
                    self.per_class.setItem(i, col, QTableWidgetItem(UNDEFINED if value is None else f"{value:.3f}"))
                    col += 1
        for table in (self.summary, self.per_class):
            table.resizeColumnsToContents()
        # the three models' scores are few: shown whole, the per-class table scrolls instead
        self.summary.setMinimumWidth(self.summary.horizontalHeader().length() + 2 * self.summary.frameWidth()
                                     + self.summary.verticalScrollBar().sizeHint().width())
        for kind, plot in self.matrices.items():
            plot.setVisible(kind in models)
            if kind in models:
                plot.show_matrix(MODEL_TITLES[kind], np.array(r["models"][kind]["confusion_matrix"]), labels,
                                 self.normalised.isChecked())
        self.reliability.clear()
        self.reliability.plot([0, 1], [0, 1], pen=pg.mkPen((120, 120, 120), style=pg.QtCore.Qt.DashLine))
        self.reliability_key.setText(colour_key(((MODEL_TITLES[m], MODEL_COLORS[m]) for m in models), DOT_MARK)
                                     + " · dot area: images")
        for i, m in enumerate(models):
            rel = r["models"][m].get("reliability")
            if rel:
                pts = [(c, a, n) for c, a, n in zip(rel["confidence"], rel["accuracy"], rel["count"])
                       if c is not None]
                if pts:
                    xs, ys, counts = zip(*pts)
                    # models that agree put their dots on one spot, the last drawn hiding the others:
                    # each is set a little aside (1 % of confidence, far less than a bin)
                    xs = [x + RELIABILITY_DODGE * (i - (len(models) - 1) / 2) for x in xs]
                    # dots only: lines between bins of one or two images drew alarming zigzags
                    self.reliability.plot(xs, ys, pen=None, symbol="o", symbolPen=None,
                                          symbolBrush=(*MODEL_COLORS[m], 170), symbolSize=reliability_dot_sizes(counts),
                                          name=MODEL_TITLES[m])

    def table_rows(self) -> list[list[str]]:
        """The per-class table as shown, undefined figures as empty cells (what spreadsheets expect)."""
        headers = [self.per_class.horizontalHeaderItem(c).text() for c in range(self.per_class.columnCount())]
        rows = [headers]
        for i in range(self.per_class.rowCount()):
            texts = (self.per_class.item(i, c).text() for c in range(self.per_class.columnCount()))
            rows.append(["" if text == UNDEFINED else text for text in texts])
        return rows

    def export_table(self) -> None:
        if not self.report:
            return
        path, _ = QFileDialog.getSaveFileName(self, "Export per-class table", self._export_place("per_class.csv"),
                                              "CSV (*.csv)")
        if path:
            self.write_table(path)

    def write_table(self, path: str) -> str | None:
        """Write the per-class table as CSV; the file written, or None after saying why not."""
        if not self.report:
            return None
        try:
            target = export_target(path, (".csv",), "The table")
            text = io.StringIO(newline="")
            csv.writer(text).writerows(self.table_rows())
            write_files({target: text.getvalue().encode("utf-8")}, "The table")
        except ExportError as exc:
            self.error.emit(str(exc), "")
            return None
        self.status.emit(f"Saved {target}")
        return target

    def export_plots(self) -> None:
        if not self.report:
            return
        # the dialog would ask about replacing the name typed, which is never written itself:
        # the files that are written get the question instead
        path, _ = QFileDialog.getSaveFileName(self, "Export matrices", self._export_place("confusion.png"),
                                              "PNG (*.png);;SVG (*.svg)", options=QFileDialog.DontConfirmOverwrite)
        if not path:
            return
        try:
            existing = [f for f in self.plot_files(path) if os.path.exists(f)]
        except ExportError:
            existing = []  # write_plots says why
        if existing and QMessageBox.question(
                self, "Replace files?", "Replace " + ", ".join(os.path.basename(f) for f in existing) + "?"
        ) != QMessageBox.StandardButton.Yes:
            return
        self.write_plots(path)

    def _export_place(self, name: str) -> str:
        """Where an export is proposed: beside the evaluated folder (not wherever the program was started)."""
        folder = (self.report or {}).get("folder")
        return str(Path(folder).parent / name) if folder else str(Path.home() / name)

    def plot_files(self, path: str) -> list[str]:
        """The files an export of the matrices to ``path`` writes: one per model, name_<model>.png or .svg."""
        base, ext = os.path.splitext(export_target(path, (".png", ".svg"), "The matrices"))
        return [f"{base}_{kind}{ext}" for kind in self.matrices if kind in self.report["models"]]

    def write_plots(self, path: str) -> list[str]:
        """One file per model (:meth:`plot_files`); the files written (none after saying why not)."""
        if not self.report:
            return []
        try:
            files = self.plot_files(path)
            ext = os.path.splitext(files[0])[1] if files else ".png"
            target = files[0] if files else path
            draw = plot_svg if ext.lower() == ".svg" else plot_png
            plots = [plot for kind, plot in self.matrices.items() if kind in self.report["models"]]
            contents = {f: _draw_for_file(plot, draw) for f, plot in zip(files, plots)}
            write_files(contents, "The matrices")
        except ExportError as exc:
            self.error.emit(str(exc), "")
            return []
        self.status.emit(f"Saved {len(contents)} files: {', '.join(os.path.basename(p) for p in contents)} "
                         f"in {os.path.dirname(os.path.abspath(target))}")
        return list(contents)
