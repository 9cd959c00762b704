"""Evaluate tab: confusion matrices of the three models, per-class table, calibration; export."""

from __future__ import annotations

import csv
import threading

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from ..core.kinds import MODEL_TITLES
from .class_names import axis_names
from .embedding_view import EmbeddingView
from .workers import start_worker


def run_evaluation(pack, folder: str, models: tuple[str, ...], stop: threading.Event):
    """Worker function: the report of ``hqnn-desktop evaluate`` for ``folder``."""
    from ..core.evaluate import evaluate_folder

    return evaluate_folder(pack, folder, models, cancelled=stop.is_set, keep_latents=True)


def reliability_dot_sizes(counts: tuple[int, ...], smallest: float = 4.0, largest: float = 18.0) -> list[float]:
    """Dot diameters whose area follows each bin's share of images.

    After calibration nearly every image sits in the top bin, and a bin of one or
    two images far from the diagonal would otherwise look as weighty as it.
    """
    most = max(counts) or 1
    return [smallest + (largest - smallest) * (n / most) ** 0.5 for n in counts]


class ConfusionPlot(pg.PlotWidget):
    """One model's confusion matrix as a heat map with the counts written in."""

    def __init__(self) -> None:
        super().__init__()
        self.setBackground(None)
        self.setAspectLocked(True)
        self.setMouseEnabled(False, False)
        self.invertY(True)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.image.setColorMap(pg.colormap.get("viridis"))
        self.addItem(self.image)
        self.texts: list[pg.TextItem] = []
        self.matrix = np.zeros((0, 0))
        for side in ("bottom", "left"):  # no meaningless -1.5..1.5 axes before there is a matrix
            self.hideAxis(side)

    def show_matrix(self, title: str, cm: np.ndarray, labels: list[str], normalised: bool) -> None:
        for t in self.texts:
            self.removeItem(t)
        self.texts = []
        cm = np.asarray(cm, float)
        rows = cm.sum(1, keepdims=True)
        shown = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0) if normalised else cm
        self.matrix = shown
        self.image.setImage(shown, levels=(0, max(1e-9, shown.max())))
        for i in range(len(labels)):
            for j in range(len(labels)):
                text = f"{shown[i, j]:.2f}" if normalised else f"{int(cm[i, j])}"
                item = pg.TextItem(text, color="w" if shown[i, j] < 0.5 * shown.max() else "k", anchor=(0.5, 0.5))
                item.setPos(j + 0.5, i + 0.5)
                self.addItem(item)
                self.texts.append(item)
        self.getAxis("bottom").setTicks([[(k + 0.5, name) for k, name in enumerate(axis_names(labels))]])
        self.getAxis("left").setTicks([[(k + 0.5, lab) for k, lab in enumerate(labels)]])
        self.setTitle(title)
        for side in ("bottom", "left"):
            self.showAxis(side)
        self.setLabel("bottom", "predicted")
        self.setLabel("left", "true")


class EvaluateTab(QWidget):
    """Shows a report: the pack's own validation results, or a folder the user evaluates."""

    error = Signal(str, str)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.pack = None
        self.report: dict | None = None
        self.worker = None
        self._stop = threading.Event()
        self.source = QLabel("No results yet.")
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
        self.per_class = QTableWidget(0, 0)
        self.matrices = {k: ConfusionPlot() for k in MODEL_TITLES}
        self.reliability = pg.PlotWidget(title="Reliability (dot area = images)")
        self.reliability.setBackground(None)
        self.reliability.addLegend(offset=(-5, -30))  # bottom right, under the diagonal: rarely any dot there
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
        tables.addWidget(self.reliability, 2)
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
        """A pack was loaded: show its bundled validation results at once."""
        self.pack = pack
        if pack is None:
            return
        val = pack.card.get("metrics", {}).get("validation", {})
        if val.get("models"):
            self.show_report({"labels": pack.labels, "models": val["models"]},
                             f"Validation results recorded in the pack {pack.name}: {val.get('split', '')}")

    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Labelled folder")
        if folder:
            self.evaluate(folder)

    def evaluate(self, folder: str) -> None:
        if self.pack is None or self.worker is not None:
            return
        self._stop = threading.Event()
        self.progress.setRange(0, 0)
        self.cancel_button.setEnabled(True)
        self.source.setText(f"Evaluating {folder}…")
        models = tuple(self.pack.heads)
        self.worker = start_worker(
            run_evaluation, self.pack, folder, models, self._stop, errored=self._on_error,
            finished=self._on_finished,
            returned=lambda r: self.show_report(
                r, f"Folder {r['folder']}: {r['n_images']} images, {r['n_unusable']} not usable"))

    def _on_error(self, exc: Exception) -> None:
        from ..core.datasets import DatasetError

        if isinstance(exc, DatasetError):
            self.source.setText(str(exc))
        else:
            self.error.emit("The evaluation stopped because of an unexpected problem.", repr(exc))

    def _on_finished(self) -> None:
        self.worker = None
        self.cancel_button.setEnabled(False)
        self.progress.setRange(0, 1)
        self.progress.setValue(1)

    def show_report(self, report: dict, source: str) -> None:
        self.report = report
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
        for i, lab in enumerate(labels):
            self.per_class.setItem(i, 0, QTableWidgetItem(lab))
            col = 1
            for m in models:
                pc = r["models"][m]["per_class"][lab]
                for key in ("precision", "recall", "f1"):
                    self.per_class.setItem(i, col, QTableWidgetItem(f"{pc[key]:.3f}"))
                    col += 1
        for table in (self.summary, self.per_class):
            table.resizeColumnsToContents()
        for kind, plot in self.matrices.items():
            plot.setVisible(kind in models)
            if kind in models:
                plot.show_matrix(MODEL_TITLES[kind], np.array(r["models"][kind]["confusion_matrix"]), labels,
                                 self.normalised.isChecked())
        self.reliability.clear()
        self.reliability.plot([0, 1], [0, 1], pen=pg.mkPen((120, 120, 120), style=pg.QtCore.Qt.DashLine))
        colors = {"hqnn": (90, 60, 200), "classical": (30, 150, 110), "baseline": (150, 150, 150)}
        for m in models:
            rel = r["models"][m].get("reliability")
            if rel:
                pts = [(c, a, n) for c, a, n in zip(rel["confidence"], rel["accuracy"], rel["count"])
                       if c is not None]
                if pts:
                    xs, ys, counts = zip(*pts)
                    # dots only: lines between bins of one or two images drew alarming zigzags
                    self.reliability.plot(xs, ys, pen=None, symbol="o", symbolPen=None,
                                          symbolBrush=(*colors[m], 170), symbolSize=reliability_dot_sizes(counts),
                                          name=MODEL_TITLES[m])

    def table_rows(self) -> list[list[str]]:
        headers = [self.per_class.horizontalHeaderItem(c).text() for c in range(self.per_class.columnCount())]
        rows = [headers]
        for i in range(self.per_class.rowCount()):
            rows.append([self.per_class.item(i, c).text() for c in range(self.per_class.columnCount())])
        return rows

    def export_table(self) -> None:
        if not self.report:
            return
        path, _ = QFileDialog.getSaveFileName(self, "Export per-class table", "per_class.csv", "CSV (*.csv)")
        if path:
            self.write_table(path)

    def write_table(self, path: str) -> None:
        from ..core.storage import atomic_path

        with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
            csv.writer(fh).writerows(self.table_rows())

    def export_plots(self) -> None:
        if not self.report:
            return
        path, _ = QFileDialog.getSaveFileName(self, "Export matrices", "confusion.png", "PNG (*.png);;SVG (*.svg)")
        if path:
            self.write_plots(path)

    def write_plots(self, path: str) -> list[str]:
        """One file per model: name_<model>.png/.svg."""
        from pyqtgraph.exporters import ImageExporter, SVGExporter

        base, dot, ext = path.rpartition(".")
        written = []
        for kind, plot in self.matrices.items():
            if plot.isVisible() or kind in (self.report or {}).get("models", {}):
                target = f"{base}_{kind}.{ext}" if dot else f"{path}_{kind}.png"
                exporter = (SVGExporter if target.lower().endswith(".svg") else ImageExporter)(plot.plotItem)
                exporter.export(target)
                written.append(target)
        return written
