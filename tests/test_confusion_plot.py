"""Confusion matrices stay legible in a small window, say what a cell holds, and export whole."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pytest
from PySide6.QtCore import QPointF
from PySide6.QtGui import QImage

LABELS = ["basophil", "eosinophil", "erythroblast", "ig", "lymphocyte", "monocyte", "neutrophil", "platelet"]
SVG = "{http://www.w3.org/2000/svg}"


def matrix() -> np.ndarray:
    cm = np.diag([40, 31, 29, 57, 24, 28, 66, 46]).astype(float)
    cm[1, 6] = 3  # three eosinophils called neutrophils
    return cm


@pytest.fixture
def plot(qtbot):
    from hqnn_desktop.gui.confusion_plot import ConfusionPlot

    plot = ConfusionPlot()
    qtbot.addWidget(plot)
    plot.show()
    plot.show_matrix("HQNN", matrix(), LABELS, normalised=False)
    return plot


def sized(plot, qtbot, width: int, height: int):
    plot.resize(width, height)
    qtbot.waitUntil(lambda: abs(plot.width() - width) <= 1)
    plot.plotItem.layout.activate()
    plot.fit_to_size()
    return plot


def shown_names(plot, side: str) -> list[str]:
    return [name for _, name in plot.getAxis(side)._tickLevels[0]]


def test_a_roomy_plot_writes_every_count_and_name(plot, qtbot):
    sized(plot, qtbot, 900, 800)
    assert plot.cell_pixels() > 60
    assert all(t.isVisible() for t in plot.texts)
    assert shown_names(plot, "left") == LABELS
    assert shown_names(plot, "bottom") == [lab[:3] for lab in LABELS]


def test_a_cramped_plot_leaves_out_what_would_overlap(plot, qtbot):
    sized(plot, qtbot, 300, 150)
    assert plot.cell_pixels() < 15
    assert not any(t.isVisible() for t in plot.texts)
    left = shown_names(plot, "left")
    assert 1 < len(left) < len(LABELS) and left[0] == "basophil"  # every k-th name, from the first
    sized(plot, qtbot, 900, 800)  # made larger again: all back
    assert all(t.isVisible() for t in plot.texts) and shown_names(plot, "left") == LABELS


def test_class_names_shrink_before_every_second_one_is_left_out(plot, qtbot):
    """At the Evaluate tab's size in a 1024x700 window (cells of about 27 pixels), every class is
    named, in smaller type; only a plot too small for that leaves names out."""
    from PySide6.QtGui import QFontMetrics

    from hqnn_desktop.gui.confusion_plot import NAME_GAP, SMALLEST_FIGURES

    sized(plot, qtbot, 330, 270)
    assert 20 < plot.cell_pixels() < 30
    assert shown_names(plot, "bottom") == [lab[:3] for lab in LABELS] and shown_names(plot, "left") == LABELS
    font = plot.getAxis("bottom").style["tickFont"]
    assert SMALLEST_FIGURES <= font.pointSize() < plot.font().pointSize()
    assert QFontMetrics(font).horizontalAdvance("ery") + NAME_GAP <= plot.cell_pixels()


def test_figures_shrink_before_they_are_left_out(plot, qtbot):
    from PySide6.QtGui import QFontMetrics

    from hqnn_desktop.gui.confusion_plot import FIGURE_GAP, SMALLEST_FIGURES

    plot.show_matrix("HQNN", matrix(), LABELS, normalised=True)  # "0.91": the widest figures
    default = plot.font().pointSize()
    sizes_seen = set()
    for height in range(150, 420, 15):
        sized(plot, qtbot, height + 200, height)
        figure = plot.texts[9]
        if figure.isVisible():
            font = figure.textItem.font()
            assert SMALLEST_FIGURES <= font.pointSize() <= default
            assert QFontMetrics(font).horizontalAdvance("0.91") + FIGURE_GAP <= plot.cell_pixels()
            sizes_seen.add(font.pointSize())
    assert default in sizes_seen and min(sizes_seen) < default  # full size when roomy, smaller when not


def test_hovering_a_cell_says_what_it_holds(plot, qtbot):
    sized(plot, qtbot, 300, 150)
    vb = plot.plotItem.vb
    point = vb.mapViewToScene(QPointF(6.5, 1.5))  # column "neutrophil", row "eosinophil"
    assert plot.cell_at(point) == (1, 6)
    plot._hover(point)
    assert plot.toolTip() == "true eosinophil, predicted neutrophil: 3 images (9% of the true eosinophil)"
    plot._hover(vb.mapViewToScene(QPointF(20.0, 1.5)))  # beside the matrix
    assert plot.toolTip() == ""


def test_exports_from_a_small_window_are_complete_and_print_sized(qtbot, tmp_path):
    from hqnn_desktop.gui.confusion_plot import PRINT_CELL
    from hqnn_desktop.gui.evaluate_tab import PNG_SCALE, EvaluateTab

    tab = EvaluateTab()
    qtbot.addWidget(tab)
    tab.resize(700, 420)
    tab.show()
    qtbot.waitExposed(tab)
    tab.report = {"models": ["hqnn"]}
    tab.matrices["hqnn"].show_matrix("HQNN", matrix(), LABELS, normalised=True)
    assert not tab.matrices["hqnn"].texts[0].isVisible()  # too small on screen for the row shares
    [svg] = tab.write_plots(str(tmp_path / "cm.svg"))
    texts = {"".join(e.itertext()).strip() for e in ET.parse(svg).getroot().iter(f"{SVG}text")}
    assert set(LABELS) <= texts and {"1.00", "0.91", "0.09", "predicted", "true", "HQNN"} <= texts
    [png] = tab.write_plots(str(tmp_path / "cm.png"))
    image = QImage(png)
    assert min(image.width(), image.height()) >= PRINT_CELL * len(LABELS) * PNG_SCALE
