"""The desktop window driven offscreen: packs load after showing, drops classify, cancel, export."""

from __future__ import annotations

import csv
import shutil

import numpy as np
import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent

from hqnn_desktop.core.settings import Settings
from hqnn_desktop.gui.classify_tab import IDLE_TEXT
from hqnn_desktop.gui.main_window import MainWindow

from .conftest import BUNDLED, SAMPLES

pytestmark = pytest.mark.skipif(not (BUNDLED / "pbc8" / "card.json").exists(), reason="pbc8 pack not built")
PBC = SAMPLES / "pbc8"


def drop(window: MainWindow, paths) -> None:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    event = QDropEvent(QPointF(10, 10), Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)
    window.dropEvent(event)



def test_drop_files_and_folder_then_export(window, qtbot, tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG not really")
    one = next(PBC.glob("eosinophil/*.jpg"))
    drop(window, [PBC / "basophil", one, bad])
    qtbot.waitUntil(lambda: not window.classify.busy() and len(window.classify.model.results) == 5,
                    timeout=60_000)
    model = window.classify.model
    assert model.rowCount() == 5 and model.columnCount() == 6
    proxy = window.classify.proxy  # rows in the order the images were given, the first one shown
    assert [proxy.index(i, 1).data() for i in range(5)] == [r.path.rsplit("/", 1)[-1] for r in model.results]
    assert window.classify.current_result() is model.results[0]
    by_name = {r.path.rsplit("/", 1)[-1]: r for r in model.results}
    assert by_name["broken.png"].error
    text = model.data(model.index([r.path for r in model.results].index(str(one)), 2))
    assert text.startswith("eosinophil")
    # filter on unusable images, then on a class
    window.classify.flag_filter.setCurrentText("unusable")
    assert window.classify.proxy.rowCount() == 1
    window.classify.flag_filter.setCurrentIndex(0)
    window.classify.class_filter.setCurrentText("basophil")
    assert 3 <= window.classify.proxy.rowCount() <= 4
    # the detail panel shows the selected image with its probability bars
    window.classify.table.selectRow(0)
    assert window.classify.plot.bars and "<b>" in window.classify.detail.text()
    from hqnn_desktop.core.results import write_csv

    out = tmp_path / "table.csv"
    write_csv(out, model.results, model.models, model.labels)
    rows = list(csv.DictReader(out.read_text(encoding="utf-8").splitlines()))
    assert len(rows) == 15 and {r["model"] for r in rows} == {"hqnn", "classical", "baseline"}
    for r in rows:  # the flags the window shows, kept in the file
        result = next(x for x in model.results if x.path == r["path"])
        assert r["flags"] == ("" if result.error else "; ".join(model.flags_of(result)))


def test_cancel_keeps_results_so_far(window, qtbot, tmp_path):
    big = tmp_path / "many"
    big.mkdir()
    src = sorted(PBC.rglob("*.jpg"))
    for i in range(300):
        shutil.copy(src[i % len(src)], big / f"img_{i:04d}.jpg")
    drop(window, [big])
    qtbot.waitUntil(lambda: len(window.classify.model.results) > 0, timeout=60_000)
    window.classify.cancel()
    qtbot.waitUntil(lambda: not window.classify.busy(), timeout=60_000)
    n = len(window.classify.model.results)
    assert 0 < n < 300
    assert "Cancelled" in window.classify.progress_label.text()


def test_settings_remember_pack(window, qtbot):
    other = next(i for i in range(window.pack_combo.count()) if "bci4" in window.pack_combo.itemText(i))
    window.pack_combo.setCurrentIndex(other)
    window._pack_chosen(other)
    qtbot.waitUntil(lambda: window.classify.engine is not None and window.classify.engine.pack.name == "bci4",
                    timeout=60_000)
    window.tabs.setCurrentIndex(2)
    window.close()
    assert Settings().get("pack") == str(BUNDLED / "bci4")
    assert Settings().get("tab") == 2 and Settings().get("classify_splitter")
    assert Settings().get("window_geometry")


def test_changing_the_pack_classifies_the_same_images_again_and_clear_empties_the_list(window, qtbot):
    drop(window, [PBC / "lymphocyte", PBC / "monocyte"])
    qtbot.waitUntil(lambda: not window.classify.busy() and len(window.classify.model.results) == 6,
                    timeout=60_000)
    before = [r.path for r in window.classify.model.results]
    bci = next(i for i in range(window.pack_combo.count()) if "bci4" in window.pack_combo.itemText(i))
    window.pack_combo.setCurrentIndex(bci)
    window._pack_chosen(bci)
    assert not window.classify.model.results and not window.classify.plot.bars  # nothing of pbc8 left
    qtbot.waitUntil(lambda: window.classify.engine is not None and window.classify.engine.pack.name == "bci4"
                    and not window.classify.busy() and len(window.classify.model.results) == 6, timeout=60_000)
    tab = window.classify
    assert [r.path for r in tab.model.results] == before and tab.model.labels == tab.engine.pack.labels
    assert all(r.proba["hqnn"].shape == (4,) for r in tab.model.results)
    assert tab.current_result() is not None and len(tab.plot.bars) == 3

    tab.clear()
    assert not tab.model.results and tab.current_result() is None and not tab.plot.bars
    window._pack_chosen(window.pack_combo.currentIndex())
    qtbot.waitUntil(lambda: tab.engine is not None, timeout=60_000)
    qtbot.wait(200)
    assert not tab.model.results and not tab.busy()
    assert tab.progress_label.text() == IDLE_TEXT  # the hint stays once the pack has loaded


def test_a_folder_without_pictures_says_so(window, qtbot, tmp_path):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "slide.txt").write_text("slide 4")
    drop(window, [tmp_path / "notes"])
    qtbot.waitUntil(lambda: not window.classify.busy(), timeout=60_000)
    assert window.classify.progress_label.text().startswith("No pictures found there")


def test_dropping_images_again_adds_only_new_ones_and_unusable_rows_show_their_picture(window, qtbot, tmp_path):
    tab = window.classify
    drop(window, [PBC / "ig"])
    qtbot.waitUntil(lambda: not tab.busy() and len(tab.model.results) == 3, timeout=60_000)
    drop(window, [PBC / "ig", PBC / "platelet"])
    qtbot.waitUntil(lambda: not tab.busy() and len(tab.model.results) == 6, timeout=60_000)
    qtbot.wait(200)
    assert len({r.path for r in tab.model.results}) == 6 == len(tab.model.results)

    bad = tmp_path / "<b>notes & co.jpg"  # any characters may be in a name: shown as typed, not as markup
    bad.write_text("not a picture")
    tab.saliency_box.setChecked(True)
    drop(window, [bad])
    qtbot.waitUntil(lambda: not tab.busy() and len(tab.model.results) == 7, timeout=60_000)
    said = []
    tab.status.connect(said.append)
    row = next(i for i in range(tab.proxy.rowCount()) if tab.proxy.index(i, 1).data() == bad.name)
    tab.table.selectRow(row)
    qtbot.waitUntil(lambda: tab.preview.text() != "Loading the picture…", timeout=10_000)
    assert "&lt;b&gt;notes &amp; co.jpg" in tab.detail.text() and said[-1] == ""  # no saliency message left

    tab.flag_filter.setCurrentText("unusable")
    tab.clear()
    assert tab.flag_filter.currentIndex() == 0 and tab.progress_label.text().startswith("Drop images")


def test_the_default_pack_is_pbc8_when_none_was_chosen(qtbot):
    w = MainWindow(settings=Settings())
    qtbot.addWidget(w)
    w.show()
    w.start_loading()
    qtbot.waitUntil(lambda: w.classify.engine is not None, timeout=60_000)
    assert w.classify.engine.pack.name == "pbc8" and "pbc8" in w.pack_combo.currentText()


def test_a_pack_named_at_start_wins_over_the_remembered_one(qtbot, monkeypatch, tmp_path):
    from PySide6.QtWidgets import QMessageBox

    settings = Settings()
    settings.set("pack", str(BUNDLED / "pbc8"))
    w = MainWindow(settings=settings, initial_pack="bci4")
    qtbot.addWidget(w)
    w.show()
    w.start_loading()
    qtbot.waitUntil(lambda: w.classify.engine is not None, timeout=60_000)
    assert w.classify.engine.pack.name == "bci4"

    shown = []
    monkeypatch.setattr(QMessageBox, "open", lambda box: shown.append(box.text()))
    w2 = MainWindow(settings=settings, initial_pack="no-such-pack")
    qtbot.addWidget(w2)
    w2.show()
    w2.start_loading()
    qtbot.waitUntil(lambda: w2.classify.engine is not None, timeout=60_000)
    assert "No model pack named 'no-such-pack'" in shown[0] and "used instead" in shown[0]
    assert w2.classify.engine.pack.name == "bci4"

    elsewhere = tmp_path / "colleague-pack"
    shutil.copytree(BUNDLED / "pbc8", elsewhere)
    w3 = MainWindow(settings=settings, initial_pack=str(elsewhere))  # a pack folder not installed
    qtbot.addWidget(w3)
    w3.show()
    w3.start_loading()
    qtbot.waitUntil(lambda: w3.classify.engine is not None, timeout=60_000)
    assert w3.classify.engine.pack.path == elsewhere and "(folder)" in w3.pack_combo.currentText()


def test_the_last_pack_chosen_is_the_one_loaded_whatever_finishes_first(window, qtbot):
    from hqnn_desktop.core.packs import load_pack
    from hqnn_desktop.core.predict import Engine

    combo = window.pack_combo
    bci = next(i for i in range(combo.count()) if "bci4" in combo.itemText(i))
    pbc = next(i for i in range(combo.count()) if "pbc8" in combo.itemText(i))
    window._pack_chosen(bci)
    window._pack_chosen(pbc)  # e.g. a pack trained meanwhile is selected
    qtbot.waitUntil(lambda: window.classify.engine is not None, timeout=60_000)
    window._engine_ready(Engine(load_pack(BUNDLED / "bci4")))  # the earlier load, finishing late
    window._engine_failed(RuntimeError("late"), str(BUNDLED / "bci4"))
    assert window.classify.engine.pack.name == "pbc8" and "pbc8" in combo.currentText()


def test_an_export_that_cannot_be_written_says_why_in_words(window, qtbot, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QFileDialog, QMessageBox

    drop(window, [PBC / "platelet"])
    qtbot.waitUntil(lambda: not window.classify.busy() and len(window.classify.model.results) == 3,
                    timeout=60_000)
    a_file = tmp_path / "notes.txt"
    a_file.write_text("keep me")
    target = a_file / "results.csv"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), "CSV (*.csv)"))
    shown = []
    monkeypatch.setattr(QMessageBox, "open", lambda box: shown.append(box.text()))
    window.export_csv()
    assert shown and str(target) in shown[0] and ".tmp" not in shown[0]
    assert a_file.read_text() == "keep me"
    bare = tmp_path / "results"  # a name typed without .csv gets it, as the Evaluate exports do
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(bare), "CSV (*.csv)"))
    window.export_csv()
    assert (tmp_path / "results.csv").read_text().startswith("path,model,label") and not bare.exists()
    assert window.statusBar().currentMessage() == f"Saved {bare}.csv (3 images)"
    window.classify.class_filter.setCurrentText("eosinophil")  # no platelet is called that: nothing shown
    window.export_csv()
    assert window.statusBar().currentMessage() == f"Saved {bare}.csv: all 3 images, not only the 0 the filter shows"
    assert len((tmp_path / "results.csv").read_text().splitlines()) == 1 + 3 * 3


def test_saliency_overlay_replaces_the_preview(window, qtbot):
    drop(window, [PBC / "monocyte"])
    qtbot.waitUntil(lambda: not window.classify.busy() and len(window.classify.model.results) == 3,
                    timeout=60_000)
    tab = window.classify
    tab.table.selectRow(0)
    before = tab.preview.pixmap().toImage()
    with qtbot.waitSignal(tab.status, timeout=60_000, check_params_cb=lambda m: m.startswith("Saliency")):
        tab.saliency_box.setChecked(True)
    assert tab.preview.pixmap().toImage() != before


def test_paths_from_the_command_line_are_classified_once_models_load(qtbot):
    from hqnn_desktop.core.settings import Settings
    from hqnn_desktop.gui.main_window import MainWindow

    settings = Settings()
    settings.set("pack", str(BUNDLED / "pbc8"))
    w = MainWindow(initial_paths=[str(PBC / "platelet")], settings=settings)
    qtbot.addWidget(w)
    w.show()
    w.start_loading()
    qtbot.waitUntil(lambda: len(w.classify.model.results) == 3 and not w.classify.busy(), timeout=60_000)
    assert all(r.proba["hqnn"].argmax() == w.classify.model.labels.index("platelet")
               for r in w.classify.model.results)


def test_thumbnails_are_decoded_off_the_gui_thread_then_shown(qtbot, tmp_path):
    from hqnn_desktop.core.inputs import ImageResult
    from hqnn_desktop.gui.results_model import ResultsModel

    model = ResultsModel()
    model.reset(["a"], ())
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not an image")
    image = next(PBC.glob("basophil/*.jpg"))
    model.append([ImageResult(str(image)), ImageResult(str(broken)), ImageResult(str(image))])
    assert model.data(model.index(0, 0), Qt.DecorationRole) is None  # requested, not decoded in paint
    with qtbot.waitSignal(model.dataChanged, timeout=10_000) as changed:
        model.data(model.index(1, 0), Qt.DecorationRole)
    assert changed.args[0].row() == 0
    qtbot.waitUntil(lambda: model.data(model.index(1, 0), Qt.DecorationRole) is not None, timeout=10_000)
    shown = model.data(model.index(2, 0), Qt.DecorationRole)  # the same file twice: one decode
    assert not shown.isNull() and max(shown.width(), shown.height()) == 48
    assert model.data(model.index(1, 0), Qt.DecorationRole).isNull()  # unreadable: an empty picture


def test_a_pack_with_a_cell_window_frames_the_cell_the_models_saw(qtbot):
    import json

    from PySide6.QtGui import QColor

    from hqnn_desktop.core.cell_crop import CellCrop
    from hqnn_desktop.core.imageio import load_rgb
    from hqnn_desktop.core.packs import user_packs_dir

    pack = user_packs_dir() / "fields"
    shutil.copytree(BUNDLED / "bci4", pack)
    card = json.loads((pack / "card.json").read_text())
    card["name"] = "fields"
    card["preprocessing"]["crop"] = {"kind": "stained_cell", "side": 0.5}
    (pack / "card.json").write_text(json.dumps(card))
    sample = next((SAMPLES / "bci4" / "monocyte").glob("*.jpeg"))
    settings = Settings()
    settings.set("pack", str(pack))
    w = MainWindow(initial_paths=[str(sample)], settings=settings)
    qtbot.addWidget(w)
    w.show()
    w.start_loading()
    tab = w.classify
    qtbot.waitUntil(lambda: len(tab.model.results) == 1 and not tab.busy(), timeout=60_000)
    assert tab.engine.pack.name == "fields"
    tab.table.selectRow(0)
    qtbot.waitUntil(lambda: tab.preview.pixmap() is not None and not tab.preview.pixmap().isNull(), timeout=10_000)

    im = load_rgb(sample)
    left, top, right, bottom = CellCrop(0.5).box(im)
    expected = (left / im.width, top / im.height, right / im.width, bottom / im.height)
    assert tab.current_result().window == pytest.approx(expected)
    assert "framed cell" in tab.detail.text()
    shown = tab.preview.pixmap().toImage()
    x = round((expected[0] + expected[2]) / 2 * shown.width())
    y = round(expected[1] * shown.height())
    near_top_edge = {QColor(shown.pixel(x, row)).getRgb()[:3] for row in range(max(0, y - 1), y + 4)}
    assert (255, 200, 0) in near_top_edge


def test_thumbnails_of_deep_pictures_show_what_the_models_see(tmp_path):
    """Qt reads a 12-bit camera picture in a 16-bit file (nearly black) and many TIFFs otherwise
    than the models; their thumbnails come from the models' own decoding."""
    import tifffile
    from PIL import Image

    from hqnn_desktop.core.imageio import load_rgb
    from hqnn_desktop.gui.thumbnails import read_thumbnail_image

    cell = Image.open(next((SAMPLES / "pbc8" / "basophil").iterdir())).convert("RGB")
    grey = np.asarray(cell.convert("L"), np.uint16) * 16
    Image.fromarray(grey).save(tmp_path / "camera12.png")
    tifffile.imwrite(tmp_path / "camera12.tif", np.asarray(cell, np.uint16) * 16, photometric="rgb")
    for name in ("camera12.png", "camera12.tif"):
        thumb = read_thumbnail_image(str(tmp_path / name), 64)
        seen = np.asarray(load_rgb(tmp_path / name).resize((thumb.width(), thumb.height())), float)
        shown = np.array([[thumb.pixelColor(x, y).getRgb()[:3] for x in range(thumb.width())]
                          for y in range(thumb.height())], float)
        assert abs(shown.mean() - seen.mean()) < 10 and seen.mean() > 100, name


def test_what_is_dropped_during_a_batch_is_shown_waiting_and_said_when_cancel_drops_it(window, qtbot, tmp_path):
    tab = window.classify
    many = tmp_path / "many"
    many.mkdir()
    picture = next(PBC.glob("basophil/*.jpg"))
    for i in range(200):
        (many / f"cell{i:03d}.jpg").write_bytes(picture.read_bytes() + bytes([i]))  # distinct files
    drop(window, [many])
    qtbot.waitUntil(lambda: len(tab.model.results) > 0, timeout=60_000)
    drop(window, [PBC / "platelet"])
    qtbot.waitUntil(lambda: "then 1 more item dropped meanwhile" in tab.progress_label.text(), timeout=30_000)
    tab.cancel()
    qtbot.waitUntil(lambda: not tab.busy(), timeout=60_000)
    assert tab.progress_label.text().startswith("Cancelled: ")
    assert tab.progress_label.text().endswith(
        "1 item dropped during the batch was not classified either; drop it again to classify it.")
    assert not any("platelet" in r.path for r in tab.model.results)


def test_a_drop_that_adds_nothing_says_so_and_a_note_about_a_file_classified_since_goes(window, qtbot, tmp_path):
    tab = window.classify
    folder = tmp_path / "smear"
    shutil.copytree(PBC / "ig", folder)
    (folder / "notes.txt").write_text("slide 4")
    drop(window, [folder])
    qtbot.waitUntil(lambda: not tab.busy() and len(tab.model.results) == 3, timeout=60_000)
    assert "notes.txt" in tab.progress_label.text()
    (tmp_path / "empty").mkdir()
    drop(window, [tmp_path / "empty"])
    qtbot.waitUntil(lambda: "Nothing new" in tab.progress_label.text(), timeout=60_000)
    assert tab.progress_label.text().startswith("3 images, 0 not usable. Nothing new was found in what was just "
                                                "dropped: its pictures are already in the list, or it holds none.")
    drop(window, [folder / "notes.txt"])  # dropped on its own: tried, and the note about it goes
    qtbot.waitUntil(lambda: not tab.busy() and len(tab.model.results) == 4, timeout=60_000)
    qtbot.wait(100)
    assert "notes.txt" not in tab.progress_label.text() and "Nothing new" not in tab.progress_label.text()
