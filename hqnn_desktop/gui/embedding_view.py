"""Latent embeddings side by side: bottleneck code, HQNN and Classical Matched transformations."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from ..core.kinds import MODEL_TITLES
from .workers import start_worker

PALETTE = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
           (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207)]


def project_all(latents: dict, method: str) -> dict[str, np.ndarray]:
    """Worker function: 2-D projection of each latent space."""
    from ..core.embedding import project

    spaces = {"code": latents["code"]}
    for kind in ("hqnn", "classical"):
        if kind in latents["embedding"]:
            spaces[kind] = latents["embedding"][kind]
    return {name: project(x, method) for name, x in spaces.items()}


class EmbeddingView(QWidget):
    """Scatter plots coloured by true class; hover for file/truth/prediction, click to open the image."""

    opened = Signal(str)
    TITLES: ClassVar[dict[str, str]] = {"code": "Bottleneck code", "hqnn": "After the quantum circuit (HQNN)",
              "classical": "After the classical layer (Classical Matched)"}

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.latents: dict | None = None
        self.labels: list[str] = []
        self.points: dict[str, np.ndarray] = {}
        self.worker = None
        self.method = QComboBox()
        self.method.addItem("PCA", "pca")
        self.method.addItem("t-SNE (slower)", "tsne")
        self.method.setToolTip("How the latent space is flattened to two dimensions")
        self.method.currentIndexChanged.connect(self._reproject)
        self.info = QLabel("Embeddings appear after evaluating a labelled folder.")
        self.plots = {name: pg.PlotWidget(title=title) for name, title in self.TITLES.items()}
        self.scatters: dict[str, pg.ScatterPlotItem] = {}
        row = QHBoxLayout()
        for name, plot in self.plots.items():
            plot.setBackground(None)
            scatter = pg.ScatterPlotItem(size=7, hoverable=True, hoverSize=11, tip=self._tip)
            scatter.sigClicked.connect(self._clicked)
            plot.addItem(scatter)
            self.scatters[name] = scatter
            row.addWidget(plot)
        top = QHBoxLayout()
        top.addWidget(QLabel("Projection:"))
        top.addWidget(self.method)
        top.addWidget(self.info, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(row, 1)

    def set_latents(self, latents: dict | None, labels: list[str]) -> None:
        self.latents, self.labels = latents, labels
        for scatter in self.scatters.values():
            scatter.clear()
        if latents is None:
            self.info.setText("Embeddings appear after evaluating a labelled folder.")
            return
        self._reproject()

    def _reproject(self) -> None:
        if self.latents is None or self.worker is not None:
            return
        self.info.setText("Projecting…")
        self.worker = start_worker(project_all, self.latents, self.method.currentData(), returned=self._show,
                                   errored=lambda e: self.info.setText(f"No projection: {e}"),
                                   finished=self._finished)

    def _finished(self) -> None:
        self.worker = None

    def _show(self, points: dict[str, np.ndarray]) -> None:
        self.points = points
        truth = self.latents["truth"]
        brushes = [pg.mkBrush(*PALETTE[t % len(PALETTE)], 200) for t in truth]
        for name, scatter in self.scatters.items():
            self.plots[name].setVisible(name in points)
            if name in points:
                xy = points[name]
                scatter.setData(x=xy[:, 0], y=xy[:, 1], brush=brushes, pen=None,
                                data=list(range(len(truth))))
        legend = " · ".join(f"<span style='color:rgb{PALETTE[k % len(PALETTE)]}'>■</span> {lab}"
                            for k, lab in enumerate(self.labels))
        self.info.setText(f"{len(truth)} images, coloured by true class: {legend}")

    def _tip(self, x, y, data) -> str:
        i = int(data)
        lat = self.latents
        preds = ", ".join(f"{MODEL_TITLES[m]}: {self.labels[int(p[i])]}" for m, p in lat["pred"].items())
        return f"{Path(lat['paths'][i]).name}\ntruth: {self.labels[int(lat['truth'][i])]}\n{preds}"

    def _clicked(self, scatter, points, *_) -> None:
        if len(points):
            path = self.latents["paths"][int(points[0].data())]
            self.opened.emit(path)
            QDesktopServices.openUrl(QUrl.fromLocalFile(path))
