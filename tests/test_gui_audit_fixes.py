"""Fixes from a user audit of the window: whole epochs on the training curves, keys beside the plots,
"1 layer", the files a dropped folder passed over, and quiet workers after the window is gone."""

from __future__ import annotations

import json
import os
import shutil
import threading

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor

from .conftest import BUNDLED, SAMPLES

PBC = SAMPLES / "pbc8"
needs_pbc8 = pytest.mark.skipif(not (BUNDLED / "pbc8" / "card.json").exists(), reason="pbc8 pack not built")


def shown_ticks(plot) -> list[float]:
    """The x values at which the plot's bottom axis draws ticks, at the size it is drawn."""
    axis = plot.getAxis("bottom")
    low, high = axis.range
    return [v for _, values in axis.tickValues(low, high, axis.width()) for v in values]


@pytest.mark.parametrize("epochs", [1, 2, 3, 7, 60])
def test_training_curves_tick_whole_epochs_only_and_their_key_is_outside_the_plots(qtbot, epochs):
    from hqnn_desktop.gui.training_tab import TrainingTab

    tab = TrainingTab()
    qtbot.addWidget(tab)
    tab.resize(1300, 800)
    tab.show()
    for kind in ("hqnn", "baseline"):
        for epoch in range(1, epochs + 1):
            tab._add_point({"model": kind, "epoch": epoch, "loss": 1 / epoch, "val_accuracy": 0.5})
    qtbot.wait(50)
    for plot in (tab.loss_plot, tab.acc_plot):
        ticks = shown_ticks(plot)
        assert ticks and all(v == round(v) for v in ticks), ticks
        assert plot.plotItem.legend is None
    assert "HQNN" in tab.curve_key.text() and "Baseline" in tab.curve_key.text()
    assert tab.curve_key.isVisible() and not tab.loss_plot.geometry().intersects(tab.curve_key.geometry())


def test_probability_bars_end_at_one_with_their_key_above_them(qtbot):
    from hqnn_desktop.core.inputs import ImageResult
    from hqnn_desktop.gui.classify_tab import ProbabilityPlot

    plot = ProbabilityPlot()
    qtbot.addWidget(plot)
    plot.resize(480, 240)
    plot.show()
    labels = ["basophil", "eosinophil", "platelet"]
    certain = np.array([0.0, 0.0, 1.0], np.float32)  # the top class at the right end, where the legend sat
    result = ImageResult("cell.jpg", proba={k: certain for k in ("hqnn", "classical", "baseline")})
    plot.show_result(result, labels, ("hqnn", "classical", "baseline"))
    qtbot.wait(50)
    bottom, top = plot.viewRange()[1]
    assert bottom == 0 and 1.0 < top <= 1.05
    assert plot.plotItem.legend is None
    title = plot.plotItem.titleLabel
    assert all(name in title.text for name in ("HQNN", "Classical Matched", "Baseline"))
    assert title.isVisible() and title.sceneBoundingRect().bottom() <= plot.plotItem.vb.sceneBoundingRect().top()
    plot.show_result(None, [], ())
    assert not plot.bars and not title.isVisible()


def test_counted_nouns_are_singular_for_one():
    from hqnn_desktop.gui.wording import counted

    assert [counted(n, "layer") for n in (0, 1, 2)] == ["0 layers", "1 layer", "2 layers"]


def test_the_model_card_says_1_layer_and_1_qubit():
    from hqnn_desktop.gui.main_window import card_summary_html

    card = json.loads((BUNDLED / "pbc8" / "card.json").read_text())
    card.update(n_qubits=8, layers=1)
    assert "8 qubits × 1 layer</p>" in card_summary_html(card)
    card.update(n_qubits=1, layers=2)
    assert "1 qubit × 2 layers</p>" in card_summary_html(card)


@needs_pbc8
def test_a_dropped_folder_says_which_files_were_not_classified_for_their_names(window, qtbot, tmp_path):
    from .test_gui_classify import drop

    folder = tmp_path / "smear"
    shutil.copytree(PBC / "basophil", folder)
    (folder / "notes.txt").write_text("slide 4")
    (folder / "counts.csv").write_text("cells,12")
    tab = window.classify
    nothing_new = "Nothing new was found in what was just dropped: its pictures are already in the list, or it holds none. "
    for again in ("", nothing_new):  # dropped again: the same two files, said once
        drop(window, [folder])
        qtbot.waitUntil(lambda: not tab.busy() and len(tab.model.results) == 3, timeout=60_000)
        qtbot.wait(100)
        assert tab.progress_label.text() == (
            f"3 images, 0 not usable. {again}2 files in the folders were not classified because their names are not "
            "a picture's (for example counts.csv); drop a file on its own to classify it anyway.")
    tab.clear()
    drop(window, [PBC / "platelet"])
    qtbot.waitUntil(lambda: not tab.busy() and len(tab.model.results) == 3, timeout=60_000)
    assert tab.progress_label.text() == "3 images, 0 not usable."
    tab.clear()
    stack = tmp_path / "stack"
    stack.mkdir()
    cells = [Image.open(p).convert("RGB") for p in sorted((PBC / "basophil").iterdir())]
    cells[0].save(stack / "z-stack.tif", save_all=True, append_images=cells[1:])
    drop(window, [stack])
    qtbot.waitUntil(lambda: not tab.busy() and len(tab.model.results) == 1, timeout=60_000)
    assert tab.progress_label.text() == (
        "1 image, 0 not usable, 1 flagged. 1 file holds several pictures (pages or frames); only the first of each "
        "was classified (for example z-stack.tif: 3 pictures). Save the picture you mean on its own to classify it.")
    # the file name carries the flag too, for a window too narrow to show the Flags column
    name = tab.model.index(0, 1)
    assert tab.model.data(name, Qt.ForegroundRole).color() == QColor(200, 120, 0)
    assert tab.model.data(name, Qt.ToolTipRole).endswith("\nfirst of 3 pictures in the file")


def gone_job(started: threading.Event, go: threading.Event, relay, generator: bool):
    """A background job that reports (a relay's signal, then its result) only once told to."""
    def job():
        started.set()
        go.wait(10)
        relay.progress.emit(1, 1)
        return 1

    def stream():
        started.set()
        go.wait(10)
        yield 1
        relay.progress.emit(1, 1)

    return stream if generator else job


@pytest.mark.parametrize("generator", [False, True])
def test_a_worker_reporting_after_the_window_is_gone_says_nothing(qtbot, capfd, recwarn, generator):
    """What closing the window mid-training did: the objects carrying the reports were deleted, the
    worker's next report raised from its thread and two tracebacks reached the terminal."""
    import shiboken6
    from PySide6.QtCore import QThreadPool

    from hqnn_desktop.gui.evaluate_tab import _Relay
    from hqnn_desktop.gui.workers import start_worker

    started, go, relay = threading.Event(), threading.Event(), _Relay()
    heard = []
    worker = start_worker(gone_job(started, go, relay, generator), errored=heard.append, returned=heard.append,
                          yielded=heard.append if generator else None)
    assert started.wait(10)
    shiboken6.delete(relay)
    shiboken6.delete(worker.signals)
    go.set()
    assert QThreadPool.globalInstance().waitForDone(10_000)
    type(worker)._worker_set.discard(worker)  # it never said it finished: nobody was left to tell
    qtbot.wait(50)
    assert heard == [] and "Error calling Python override" not in capfd.readouterr().err
    assert not [w for w in recwarn if "aborted thread" in str(w.message)]


def test_a_worker_whose_owner_is_alive_still_reports_errors_and_stops_when_cancelled(qtbot):
    """A job's own RuntimeError (torch raises them) is an error like any other, and the worker
    still says it finished: superqt took it for a deleted worker and the tab waited for ever."""
    from hqnn_desktop.gui.workers import start_worker

    stop, errors, yielded = threading.Event(), [], []

    def stream():
        while not stop.is_set():
            yield "working"
            stop.wait(0.01)
        raise RuntimeError("cancelled")

    worker = start_worker(stream, yielded=yielded.append, errored=errors.append)
    qtbot.waitUntil(lambda: bool(yielded), timeout=10_000)
    with qtbot.waitSignal(worker.finished, timeout=10_000):
        stop.set()
    assert [str(e) for e in errors] == ["cancelled"]


def test_a_validation_folder_greys_out_the_fraction_it_replaces(qtbot):
    from hqnn_desktop.gui.training_tab import TrainingTab

    tab = TrainingTab()
    qtbot.addWidget(tab)
    assert tab.val_fraction.isEnabled() and tab.group_pattern.isEnabled()
    tab.val_dir.setText("/data/val")
    assert not tab.val_fraction.isEnabled() and not tab.group_pattern.isEnabled()
    assert "validation folder above is used instead" in tab.val_fraction.toolTip()
    tab.val_dir.setText("  ")
    assert tab.val_fraction.isEnabled() and tab.group_pattern.isEnabled()


@needs_pbc8
def test_the_window_fits_a_768_pixel_laptop_screen(window):
    """Title bar and taskbar take about 70 of a 1366 x 768 screen's pixels."""
    hint = window.minimumSizeHint()
    assert hint.height() <= 690 and hint.width() <= 1366, hint
    assert window.training.start_button.isVisibleTo(window.training)  # Train outside the scrolled form


def test_a_selected_review_cell_is_tinted_whole_not_an_empty_caption_bar(qtbot):
    from PySide6.QtCore import QRect
    from PySide6.QtGui import QColor, QImage, QPainter, QStandardItem, QStandardItemModel
    from PySide6.QtWidgets import QStyle, QStyleOptionViewItem

    from hqnn_desktop.gui.review_gallery import CellDelegate

    model = QStandardItemModel()
    model.appendRow(QStandardItem(""))
    delegate = CellDelegate()

    def drawn(selected: bool) -> QImage:
        image = QImage(100, 120, QImage.Format_ARGB32)
        image.fill(QColor("white"))
        option = QStyleOptionViewItem()
        option.rect = QRect(0, 0, 100, 120)
        option.state = QStyle.State_Enabled | (QStyle.State_Selected if selected else QStyle.State_None)
        painter = QPainter(image)
        delegate.paint(painter, option, model.index(0, 0))
        painter.end()
        return image

    plain, chosen = drawn(False), drawn(True)
    corner, caption = (5, 5), (50, 110)
    assert plain.pixelColor(*corner) == plain.pixelColor(*caption) == QColor("white")
    assert chosen.pixelColor(*corner) == chosen.pixelColor(*caption) != QColor("white")  # one even tint


@needs_pbc8
def test_the_review_progress_has_a_line_of_its_own(window):
    tab = window.review
    row = tab.layout().itemAt(0).layout()
    assert all(row.itemAt(i).widget() is not tab.progress_label for i in range(row.count()))
    assert tab.layout().itemAt(1).widget() is tab.progress_label


def test_a_stack_is_flagged_as_classified_from_its_first_picture(qtbot):
    from hqnn_desktop.core.inputs import ImageResult
    from hqnn_desktop.gui.results_model import ResultsModel

    model = ResultsModel()
    model.reset(["a", "b"], ("hqnn",))
    sure = {"hqnn": np.array([0.95, 0.05], np.float32)}
    assert model.flags_of(ImageResult(path="z-stack.tif", proba=sure, frames=12)) == [
        "first of 12 pictures in the file"]
    assert model.flags_of(ImageResult(path="cell.tif", proba=sure)) == []


@needs_pbc8
def test_a_damaged_user_pack_is_listed_greyed_out_with_its_reason(qtbot):
    from PySide6.QtCore import Qt

    from hqnn_desktop.core.packs import user_packs_dir

    from .conftest import open_main_window

    (user_packs_dir() / "half-copied").mkdir(parents=True)
    (user_packs_dir() / "half-copied" / "card.json").write_text("{not json")
    window = open_main_window(qtbot)
    combo = window.pack_combo
    i = next(i for i in range(combo.count()) if combo.itemText(i) == "half-copied (user, damaged)")
    assert not combo.model().item(i).isEnabled() and combo.itemData(i) is None
    assert "damaged" in combo.itemData(i, Qt.ToolTipRole)
    assert combo.currentText() == "pbc8 (bundled)"


@needs_pbc8
def test_a_dropped_picture_reached_twice_is_listed_once_and_the_window_says_why(window, qtbot, tmp_path):
    from .test_gui_classify import drop

    folder = tmp_path / "smear"
    shutil.copytree(PBC / "basophil", folder)
    os.symlink(min(folder.iterdir()), folder / "shortcut.jpg")
    tab = window.classify
    drop(window, [folder])
    qtbot.waitUntil(lambda: not tab.busy() and len(tab.model.results) == 3, timeout=60_000)
    assert tab.progress_label.text().endswith(
        "1 picture was reached more than once (through a link, or named again) and classified once, under the first name "
        f"found (shortcut.jpg is the same file as {min((PBC / 'basophil').iterdir()).name}).")
    tab.clear()
    drop(window, [PBC / "platelet"])
    qtbot.waitUntil(lambda: not tab.busy() and len(tab.model.results) == 3, timeout=60_000)
    assert tab.progress_label.text() == "3 images, 0 not usable."
