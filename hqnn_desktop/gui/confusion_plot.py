"""A confusion matrix as a heat map with its counts written in, legible at any size.

The Evaluate and Hardware tabs show two or three of these side by side, often in a laptop
window where an 8-class matrix gets 15 pixels a cell: counts written into such cells run
into each other and so do the class names. So counts are written only where they fit,
names are thinned to every second or third class when rows are too close, and hovering a
cell always says what it holds. Files are drawn from :meth:`ConfusionPlot.print_copy`, a
fresh plot of print size, so an export is complete however small the window was.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QFont, QFontMetrics

from .class_names import axis_names

#: Side of one cell, in pixels, of the plots drawn for files.
PRINT_CELL = 60
#: Pixels of white space wanted between two neighbouring names on an axis ...
NAME_GAP = 4
#: ... and between the figures of two neighbouring cells.
FIGURE_GAP = 6
#: Smallest type, in points, the figures in the cells are shrunk to before they are left out.
SMALLEST_FIGURES = 7


class ConfusionPlot(pg.PlotWidget):
    """One model's confusion matrix; rows are the true classes, columns the predicted ones."""

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
        #: what is shown: row shares when normalised, counts otherwise
        self.matrix = np.zeros((0, 0))
        self.counts = np.zeros((0, 0))
        self.labels: list[str] = []
        self.normalised = False
        for side in ("bottom", "left"):  # no meaningless -1.5..1.5 axes before there is a matrix
            self.hideAxis(side)
        self.plotItem.vb.sigResized.connect(self.fit_to_size)
        self.scene().sigMouseMoved.connect(self._hover)

    def show_matrix(self, title: str, cm: np.ndarray, labels: list[str], normalised: bool) -> None:
        for t in self.texts:
            self.removeItem(t)
        self.texts = []
        cm = np.asarray(cm, float)
        rows = cm.sum(1, keepdims=True)
        shown = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0) if normalised else cm
        self.matrix, self.counts, self.labels, self.normalised = shown, cm, list(labels), normalised
        self.image.setImage(shown, levels=(0, max(1e-9, shown.max())))
        for i in range(len(labels)):
            for j in range(len(labels)):
                item = pg.TextItem(self._cell_text(i, j), anchor=(0.5, 0.5),
                                   color="w" if shown[i, j] < 0.5 * shown.max() else "k")
                item.setPos(j + 0.5, i + 0.5)
                self.addItem(item)
                self.texts.append(item)
        self.setRange(xRange=(0, len(labels)), yRange=(0, len(labels)), padding=0)  # no margin: cells measurable
        self.setTitle(title)
        for side in ("bottom", "left"):
            self.showAxis(side)
        self.setLabel("bottom", "predicted")
        self.setLabel("left", "true")
        self.fit_to_size()

    def _cell_text(self, i: int, j: int) -> str:
        return f"{self.matrix[i, j]:.2f}" if self.normalised else f"{int(self.counts[i, j])}"

    def cell_pixels(self) -> float:
        """The side of one cell on screen, in pixels (the matrix fills the smaller side of the plot)."""
        n = len(self.labels)
        if not n:
            return 0.0
        rect = self.plotItem.vb.boundingRect()  # the matrix fills its shorter side: see show_matrix
        return min(rect.width(), rect.height()) / n

    def fit_to_size(self) -> None:
        """Write counts and names only where they fit at the plot's present size."""
        n = len(self.labels)
        if not n:
            return
        cell = max(self.cell_pixels(), 1e-6)
        font = self._figure_font(cell)
        for t in self.texts:
            t.setVisible(font is not None)
            if font is not None:
                t.setFont(font)
        self._set_names("bottom", axis_names(self.labels), cell,
                        lambda m, names: max(m.horizontalAdvance(c) for c in names) + NAME_GAP)
        self._set_names("left", self.labels, cell, lambda m, names: m.height() + NAME_GAP / 2)

    def _figure_font(self, cell: float) -> QFont | None:
        """The plot's type, made smaller if need be, in which every cell's figure fits; None if none does."""
        font = QFont(self.font())
        largest = round(font.pointSizeF()) if font.pointSizeF() > 0 else 9
        for points in range(largest, SMALLEST_FIGURES - 1, -1):
            font.setPointSize(points)
            metrics = QFontMetrics(font)
            widest = max(metrics.horizontalAdvance(t.textItem.toPlainText()) for t in self.texts)
            if cell >= widest + FIGURE_GAP and cell >= metrics.height():
                return font
        return None

    def _set_names(self, side: str, names: list[str], cell: float, room) -> None:
        """Every class's name on the axis, in smaller type if need be (down to the figures' smallest);
        when even that does not fit, every second, third, ... one. ``room(metrics, names)`` is the
        space one name needs along the axis."""
        font = QFont(self.font())
        largest = max(SMALLEST_FIGURES, round(font.pointSizeF()) if font.pointSizeF() > 0 else 9)
        for points in range(largest, SMALLEST_FIGURES - 1, -1):
            font.setPointSize(points)
            needed = room(QFontMetrics(font), names)
            if needed <= cell:
                break
        axis = self.getAxis(side)
        axis.setStyle(tickFont=font)
        every = max(1, math.ceil(needed / cell))
        axis.setTicks([[(k + 0.5, name) for k, name in enumerate(names) if k % every == 0]])

    def cell_at(self, scene_pos: QPointF) -> tuple[int, int] | None:
        """(true, predicted) class indices of the cell under a point of the scene, if any."""
        vb = self.plotItem.vb
        if not self.labels or not vb.sceneBoundingRect().contains(scene_pos):
            return None
        point = vb.mapSceneToView(scene_pos)
        i, j = math.floor(point.y()), math.floor(point.x())
        n = len(self.labels)
        return (i, j) if 0 <= i < n and 0 <= j < n else None

    def describe_cell(self, i: int, j: int) -> str:
        """The cell in words: 'true eosinophil, predicted neutrophil: 3 images (5% of the row)'."""
        count = int(self.counts[i, j])
        row = self.counts[i].sum()
        share = f" ({count / row:.0%} of the true {self.labels[i]})" if row else ""
        images = "image" if count == 1 else "images"
        return f"true {self.labels[i]}, predicted {self.labels[j]}: {count} {images}{share}"

    def _hover(self, scene_pos: QPointF) -> None:
        cell = self.cell_at(scene_pos)
        self.setToolTip(self.describe_cell(*cell) if cell else "")

    def print_copy(self) -> ConfusionPlot:
        """A copy of the shown matrix at print size (cells of :data:`PRINT_CELL` pixels), every
        count and name written, laid out off screen; the caller drops it after drawing it."""
        copy = ConfusionPlot()
        copy.setAttribute(Qt.WA_DontShowOnScreen)
        side = PRINT_CELL * max(1, len(self.labels))
        copy.resize(side + 160, side + 110)
        copy.show()
        copy.show_matrix(self.plotItem.titleLabel.text, self.counts, self.labels, self.normalised)
        copy.plotItem.layout.activate()
        copy.fit_to_size()
        return copy
