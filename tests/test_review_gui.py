"""The Review tab driven offscreen with the keyboard on the bundled pbc8 pack and its sample images."""

from __future__ import annotations

import csv
import json
import shutil
from collections import Counter

import pytest
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from hqnn_desktop.core.review import Review, list_reviews
from hqnn_desktop.gui.review_gallery import PATH_ROLE

from .conftest import BUNDLED, SAMPLES, open_main_window

pytestmark = pytest.mark.skipif(not (BUNDLED / "pbc8" / "card.json").exists(), reason="pbc8 pack not built")
PBC = SAMPLES / "pbc8"


def classify_and_review(window, qtbot) -> Review:
    window.classify.add_paths([str(PBC)])
    qtbot.waitUntil(lambda: not window.classify.busy() and len(window.classify.model.results) == 24,
                    timeout=120_000)
    window.tabs.setCurrentWidget(window.review)
    window.review.review_classify_results()
    assert window.review.review is not None
    return window.review.review


def current_path(tab) -> str | None:
    index = tab.gallery.currentIndex()
    return index.data(PATH_ROLE) if index.isValid() else None


def test_verify_by_keyboard_undo_reopen_count_and_export(window, qtbot, tmp_path):
    tab = window.review
    review = classify_and_review(window, qtbot)
    labels = review.labels
    assert len(review.cells) == 24 and review.n_verified == 0
    assert [c.priority for c in review.cells] == sorted((c.priority for c in review.cells), reverse=True)
    gallery = tab.gallery
    gallery.setFocus()
    expected: dict[str, str] = {}
    # two cells accepted with Space
    for _ in range(2):
        path = current_path(tab)
        expected[path] = review.current_label(path, "hqnn")
        QTest.keyClick(gallery, Qt.Key_Space)
    # ten cells reclassified with number keys: each one to the class after the one it is shown in
    done = 0
    while done < 10:
        path = current_path(tab)
        if path is None or path in expected:
            QTest.keyClick(gallery, Qt.Key_PageDown)
            continue
        target = (labels.index(review.current_label(path, "hqnn")) + 1) % len(labels)
        QTest.keyClick(gallery, Qt.Key_1 + target)
        expected[path] = labels[target]
        done += 1
    last = path
    assert review.decisions == expected
    # one undo takes back the last reclassification only; redo and undo again
    QTest.keyClick(gallery, Qt.Key_Z, Qt.ControlModifier)
    del expected[last]
    assert review.decisions == expected and current_path(tab) == last
    QTest.keyClick(gallery, Qt.Key_Z, Qt.ControlModifier | Qt.ShiftModifier)
    assert review.decisions[last] != review.predicted_label(last, "hqnn")
    QTest.keyClick(gallery, Qt.Key_Z, Qt.ControlModifier)
    assert review.decisions == expected and len(expected) == 11
    assert json.loads(review.file.read_text())["decisions"] == expected  # saved at once

    # the differential count against a count by hand
    pred = {r.path: labels[int(r.proba["hqnn"].argmax())] for r in window.classify.model.results}
    by_hand = Counter(expected.values())
    rows = {r.label: r for r in tab_diff(tab).rows}
    assert {k: rows[k].verified for k in labels} == {k: by_hand.get(k, 0) for k in labels}
    assert {k: rows[k].pre["hqnn"] for k in labels} == {k: Counter(pred.values()).get(k, 0) for k in labels}
    agree = sum(pred[p] == v for p, v in expected.items())
    assert agree == 2  # only the two accepted cells
    n = len(expected)
    p_o = agree / n
    p_e = sum(Counter(expected.values())[k] * Counter(pred[p] for p in expected)[k] for k in labels) / n**2
    diff = tab_diff(tab)
    assert diff.agreement["hqnn"] == pytest.approx(p_o)
    assert diff.kappa["hqnn"] == pytest.approx((p_o - p_e) / (1 - p_e))
    assert "κ" in tab.agreement.text()

    # exports read back
    tab.export_csv(str(tmp_path / "counts.csv"))
    with open(tmp_path / "counts.csv", encoding="utf-8") as fh:
        lines = list(csv.DictReader(fh))
    assert [r["class"] for r in lines] == labels + ["all"]
    assert sum(int(r["verified_n"]) for r in lines[:-1]) == int(lines[-1]["verified_n"]) == 11
    assert float(lines[-1]["hqnn_kappa"]) == pytest.approx(diff.kappa["hqnn"], abs=1e-4)
    assert int(lines[-1]["hqnn_n"]) == 24
    tab.export_report(str(tmp_path / "report.png"))
    with Image.open(tmp_path / "report.png") as im:
        assert im.size == (1240, 1754)
        colours = im.convert("RGB").getcolors(maxcolors=1 << 20)
        assert len(colours) > 1000  # text, bars and thumbnails, not a blank page
    tab.export_report(str(tmp_path / "report.pdf"))
    assert (tmp_path / "report.pdf").read_bytes().startswith(b"%PDF")

    # close the app, open it again on the same user folder: every decision is back
    window.close()
    again = open_main_window(qtbot)
    restored = classify_and_review(again, qtbot)
    assert restored.decisions == expected
    assert tab_diff(again.review).kappa["hqnn"] == pytest.approx(diff.kappa["hqnn"])
    assert [s.n_verified for s in list_reviews()] == [11]
    again.classify.cancel()
    again.classify.wait(10)


def tab_diff(tab):
    from hqnn_desktop.core.differential import differential

    return differential(tab.review)


def synthetic_tab(qtbot):
    """A Review tab on the 24 sample images with made-up predictions (no models needed)."""
    import numpy as np

    from hqnn_desktop.core.inputs import ImageResult
    from hqnn_desktop.gui.classify_tab import ClassifyTab
    from hqnn_desktop.gui.review_tab import ReviewTab

    labels = sorted(p.name for p in PBC.iterdir())
    results = []
    for i, path in enumerate(sorted(PBC.rglob("*.jpg"))):
        k = labels.index(path.parent.name)
        sure = np.eye(8)[k] * 0.9 + 0.0125
        results.append(ImageResult(str(path), proba={"hqnn": sure, "classical": sure,
                                                     "baseline": np.eye(8)[(k + i % 2) % 8] * 0.5 + 0.0625}))
    tab = ReviewTab(ClassifyTab())
    qtbot.addWidget(tab)
    tab.show()
    tab.set_review(Review.from_results(results, labels, ("hqnn", "classical", "baseline"), "pbc8"))
    return tab, labels


def test_drag_to_group_enter_accepts_group_and_reopen_saved(qtbot):
    from PySide6.QtCore import QMimeData, QPointF
    from PySide6.QtGui import QDropEvent

    from hqnn_desktop.gui.review_gallery import CELL_MIME

    tab, labels = synthetic_tab(qtbot)
    review = tab.review
    # half the cells have the baseline disagreeing: they are flagged and shown first
    assert review.cells[0].flags == ["models disagree", "low confidence"]
    assert tab.gallery_model.data(tab.gallery.currentIndex()).startswith("check: ")
    tab.groups.setCurrentRow(0)
    group = [c.path for c in tab.gallery_model.cells]
    assert len(group) == 3
    # drag the first cell of the first group onto the platelet group
    mime = QMimeData()
    mime.setData(CELL_MIME, group[0].encode("utf-8"))
    target = tab.groups.visualItemRect(tab.groups.item(7)).center()
    tab.groups.dropEvent(QDropEvent(QPointF(target), Qt.MoveAction, mime, Qt.LeftButton, Qt.NoModifier))
    assert review.decisions == {group[0]: "platelet"}
    assert [c.path for c in tab.gallery_model.cells] == group[1:]
    assert "4 cells" in tab.groups.item(7).text()
    # Enter accepts the rest of the group in one step, undone in one step
    tab.groups.setCurrentRow(0)
    QTest.keyClick(tab.gallery, Qt.Key_Return)
    assert review.decisions == {group[0]: "platelet", group[1]: labels[0], group[2]: labels[0]}
    assert tab.groups.item(0).text().endswith("2 cells")
    tab.undo()
    assert review.decisions == {group[0]: "platelet"}
    # group by the baseline: other groups, the decisions stay
    tab.kind.setCurrentIndex(2)
    assert tab.model_kind == "baseline" and review.decisions == {group[0]: "platelet"}
    assert "Pre (Baseline)" == tab.counts.horizontalHeaderItem(1).text()
    # Backspace takes a decision back; N jumps to the next cell to check
    tab.select_cell(group[0])
    QTest.keyClick(tab.gallery, Qt.Key_Backspace)
    assert review.decisions == {}
    QTest.keyClick(tab.gallery, Qt.Key_N)
    assert current_path(tab) == review.cells[0].path
    # the mouse: right click, Reclassify as > monocyte
    from PySide6.QtCore import QPoint
    from PySide6.QtWidgets import QMenu

    tab.select_cell(group[1])
    tab._cell_menu(QPoint(5, 5))
    menu = tab.findChildren(QMenu, options=Qt.FindDirectChildrenOnly)[-1]
    submenu = next(a.menu() for a in menu.actions() if a.text() == "Reclassify as")
    next(a for a in submenu.actions() if a.text().startswith("monocyte")).trigger()
    menu.close()
    assert review.decisions == {group[1]: "monocyte"}
    # the saved review reopens from the list, without the models
    tab.refresh_saved()
    assert tab.saved.count() == 2 and "1/24 verified" in tab.saved.itemText(1)
    other, _ = synthetic_tab(qtbot)
    other.saved.setCurrentIndex(1)
    other.saved.activated.emit(1)
    assert other.review.decisions == {group[1]: "monocyte"} and other.review is not review
    other.fine_tune("pbc8-corrected")  # no models loaded (a pack still loading): says to wait, and for which pack
    assert other.progress_label.text() == ("The models are not loaded yet: fine-tune once the status bar says "
                                           "Ready, with the pack pbc8 selected.")


def test_training_tab_takes_corrections_alone_or_with_a_folder(qtbot, tmp_path):
    from hqnn_desktop.gui.training_tab import TrainingTab

    tab = TrainingTab()
    qtbot.addWidget(tab)
    manifest = tmp_path / "corrections.csv"
    manifest.write_text("path,label\n", encoding="utf-8")
    tab.corrections.setText(str(manifest))
    recipe = tab.recipe()
    assert recipe.train_dir == str(manifest) and recipe.corrections is None
    tab.train_dir.setText(str(PBC))
    recipe = tab.recipe()
    assert recipe.train_dir == str(PBC) and recipe.corrections == str(manifest)
    tab.corrections.setText(str(tmp_path / "gone.csv"))
    with pytest.raises(ValueError, match="does not exist"):
        tab.recipe()


def small_smear(tmp_path):
    """Two sample images of each of four classes in one folder (a smear of eight cells)."""
    smear = tmp_path / "smear"
    smear.mkdir()
    for name in ("basophil", "ig", "lymphocyte", "neutrophil"):
        for path in sorted((PBC / name).glob("*.jpg"))[:2]:
            shutil.copy(path, smear / path.name)
    return smear


def classify_folder(window, qtbot, folder, pack: str) -> None:
    """Classify ``folder`` with ``pack`` (selected in the pack list if another one is loaded)."""
    combo = window.pack_combo
    if window.classify.engine.pack.name != pack:
        index = next(i for i in range(combo.count()) if combo.itemText(i).startswith(f"{pack} ("))
        combo.setCurrentIndex(index)
        combo.activated.emit(index)
    else:
        window.classify.add_paths([str(folder)])
    qtbot.waitUntil(lambda: window.classify.engine is not None and window.classify.engine.pack.name == pack
                    and not window.classify.busy() and len(window.classify.model.results) == 8, timeout=120_000)


def test_reviewing_the_folder_with_another_pack_and_back_keeps_every_decision(window, qtbot, tmp_path):
    smear = small_smear(tmp_path)
    tab = window.review
    classify_folder(window, qtbot, smear, "pbc8")
    window.tabs.setCurrentWidget(tab)
    tab.review_classify_results()
    first = tab.review
    for cell, key in zip(first.cells, (Qt.Key_Space, Qt.Key_Space, Qt.Key_3)):
        tab.select_cell(cell.path)
        QTest.keyClick(tab.gallery, key)
    verified = dict(first.decisions)
    assert len(verified) == 3 and json.loads(first.file.read_text())["decisions"] == verified

    classify_folder(window, qtbot, smear, "bci4")  # the pack changes: Classify runs again
    tab.fine_tune("pbc8-corrected")  # the review's pack is not the one loaded: says which to select
    assert tab.progress_label.text() == "Select the pack pbc8 first: these cells were pre-classified by it."
    tab.review_classify_results()
    assert tab.review.pack == "bci4" and tab.review.decisions == {} and tab.review.file != first.file
    assert json.loads(first.file.read_text())["decisions"] == verified  # untouched on disk
    assert "the 3 cells verified with the pack pbc8 are kept" in window.statusBar().currentMessage()
    saved = [tab.saved.itemText(i) for i in range(1, tab.saved.count())]
    assert sorted(saved) == ["smear · 0/8 verified · bci4", "smear · 3/8 verified · pbc8"]

    classify_folder(window, qtbot, smear, "pbc8")
    tab.review_classify_results()
    back = tab.review
    assert back.pack == "pbc8" and back.decisions == verified
    assert json.loads(back.file.read_text())["decisions"] == verified
    assert "3 of 8 cells verified" in tab.progress_label.text()
    for path, label in verified.items():
        tab.select_cell(path)
        assert current_path(tab) == path and f"Verified as <b>{label}</b>" in tab.detail.text()


def test_review_takes_every_classified_image_whatever_the_classify_filters_show(window, qtbot, tmp_path):
    classify_folder(window, qtbot, small_smear(tmp_path), "pbc8")
    window.classify.flag_filter.setCurrentText("unusable")  # no image is unusable: the table shows none
    assert window.classify.proxy.rowCount() == 0
    window.review.review_classify_results()
    assert window.review.review is not None and len(window.review.review.cells) == 8
    assert "0 of 8 cells verified" in window.review.progress_label.text()


def test_report_is_written_in_the_format_its_name_says(qtbot, tmp_path):
    tab, _ = synthetic_tab(qtbot)
    statuses = []
    tab.status.connect(statuses.append)
    tab.export_report(str(tmp_path / "report.jpg"))
    with Image.open(tmp_path / "report.jpg") as im:
        assert im.format == "JPEG" and im.size == (1240, 1754)
    tab.export_report(str(tmp_path / "report"))  # no suffix: PNG, and the name says so
    assert not (tmp_path / "report").exists()
    with Image.open(tmp_path / "report.png") as im:
        assert im.format == "PNG"
    assert statuses[-1] == f"Saved {tmp_path / 'report.png'}"
    tab.export_report(str(tmp_path / "report.svg"))  # a format it cannot write: refused, as Evaluate does
    assert tab.progress_label.text().startswith("The report can be saved as PNG or PDF or JPG")
    tab.export_csv(str(tmp_path / "counts"))  # no suffix: the CSV's is added
    assert statuses[-1] == f"Saved {tmp_path / 'counts.csv'}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["counts.csv", "report.jpg", "report.png"]


def test_two_windows_on_one_review_keep_each_others_work(qtbot):
    first, labels = synthetic_tab(qtbot)
    second, _ = synthetic_tab(qtbot)  # the same folder and pack: the same review file
    assert second.review.file == first.review.file and second.review is not first.review
    messages = []
    first.status.connect(messages.append)
    second.groups.setCurrentRow(0)
    second.gallery.setFocus()
    cell = current_path(second)
    QTest.keyClick(second.gallery, Qt.Key_8)  # the second window moves one cell to platelet
    first.groups.setCurrentRow(1)
    first.gallery.setFocus()
    mine = current_path(first)
    QTest.keyClick(first.gallery, Qt.Key_Space)  # the first accepts another cell: both decisions stay
    assert first.review.decisions == {cell: "platelet", mine: labels[1]}
    assert "1 decision made in another window on this review was taken in." in messages
    assert "4 cells" in first.groups.item(7).text() and "2 cells" in first.groups.item(0).text()
    assert Review.load(first.review.file).decisions == {cell: "platelet", mine: labels[1]}
    second.gallery.setFocus()
    QTest.keyClick(second.gallery, Qt.Key_1)  # another decision over there, then an undo here
    first.gallery.setFocus()
    QTest.keyClick(first.gallery, Qt.Key_Z, Qt.ControlModifier)
    assert messages[-1] == "Undone: 1 cell. 1 decision made in another window on this review was taken in."


def test_a_failed_save_keeps_the_decision_says_so_and_saves_it_later(qtbot, monkeypatch):
    import errno

    import hqnn_desktop.core.review as review_module

    tab, labels = synthetic_tab(qtbot)
    messages = []
    tab.status.connect(messages.append)
    real_write = review_module.atomic_write_text

    def disk_full(*_args) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(review_module, "atomic_write_text", disk_full)
    tab.groups.setCurrentRow(0)
    tab.gallery.setFocus()
    first = current_path(tab)
    QTest.keyClick(tab.gallery, Qt.Key_8)
    assert tab.review.decisions == {first: "platelet"}  # shown and counted although not on disk
    assert "4 cells" in tab.groups.item(7).text()
    assert "No space left on device" in messages[-1] and "kept in this window" in messages[-1]
    assert "could not be saved" in tab.progress_label.text()
    assert Review.load(tab.review.file).decisions == {}
    from PySide6.QtWidgets import QMessageBox

    asked = []
    monkeypatch.setattr(QMessageBox, "question", lambda *a: asked.append(a[2]) or QMessageBox.No)
    shown = tab.review
    tab.set_review(Review.load(shown.file))  # another review while the disk is still full: the user is asked
    assert tab.review is shown and len(asked) == 1 and "cannot be saved" in asked[0]
    monkeypatch.setattr(review_module, "atomic_write_text", real_write)  # space freed
    second = current_path(tab)
    QTest.keyClick(tab.gallery, Qt.Key_Space)
    assert Review.load(tab.review.file).decisions == {first: "platelet", second: labels[0]}
    assert "could not be saved" not in tab.progress_label.text()
    assert tab.keep_unsaved_decisions() and len(asked) == 1  # nothing left to ask about
    tab.export_csv("/proc/x.csv")  # a place that takes no files: said in words, no temporary name
    said = tab.progress_label.text()
    assert said.startswith("The differential count could not be written to /proc/x.csv: /proc does not take")
    assert ".tmp" not in said


def test_fine_tune_names_are_checked_like_the_training_tabs(qtbot, monkeypatch):
    from PySide6.QtWidgets import QInputDialog, QMessageBox

    from hqnn_desktop.core.packs import user_packs_dir

    tab, _ = synthetic_tab(qtbot)
    mine = user_packs_dir() / "mine"
    mine.mkdir(parents=True)
    (mine / "card.json").write_text('{"name": "mine"}')
    asked = []
    monkeypatch.setattr(QMessageBox, "question", lambda *a: asked.append(a[2]) or QMessageBox.No)
    for typed, message in (("pbc8", "comes with the app"), ("bad/name", "cannot be a pack name"),
                           ("", "needs a name"), ("mine", "Nothing started")):
        monkeypatch.setattr(QInputDialog, "getText", lambda *a, typed=typed, **k: (typed, True))
        tab.ask_fine_tune()
        assert message in tab.progress_label.text(), typed
        assert tab.worker is None
    assert len(asked) == 1 and "mine already exists" in asked[0]
    assert (mine / "card.json").read_text() == '{"name": "mine"}'


def test_a_reopened_review_says_which_pictures_are_gone(qtbot, tmp_path):
    import numpy as np

    from hqnn_desktop.core.inputs import ImageResult
    from hqnn_desktop.gui.classify_tab import ClassifyTab
    from hqnn_desktop.gui.review_tab import ReviewTab

    folder = tmp_path / "smear"
    shutil.copytree(PBC / "basophil", folder)
    pictures = sorted(folder.iterdir())
    results = [ImageResult(str(p), proba={"hqnn": np.eye(8)[0] * 0.9 + 0.0125}) for p in pictures]
    labels = sorted(p.name for p in PBC.iterdir())
    tab = ReviewTab(ClassifyTab())
    qtbot.addWidget(tab)
    messages = []
    tab.status.connect(messages.append)
    tab.set_review(Review.from_results(results, labels, ("hqnn",), "pbc8"))
    assert "no longer" not in messages[-1]
    pictures[0].unlink()
    tab.set_review(Review.from_results(results, labels, ("hqnn",), "pbc8"))
    assert messages[-1].endswith(f"1 picture of this review is no longer where it was (for example "
                                 f"{pictures[0].name}): decisions are kept, but such pictures cannot be shown or "
                                 "trained on")


def test_report_and_corrections_leave_out_pictures_gone_since_and_say_so(qtbot, tmp_path, monkeypatch):
    import numpy as np
    from PySide6.QtGui import QImage, QPainter

    from hqnn_desktop.core.inputs import ImageResult
    from hqnn_desktop.gui import review_report
    from hqnn_desktop.gui.classify_tab import ClassifyTab
    from hqnn_desktop.gui.review_tab import ReviewTab

    folder = tmp_path / "smear"
    shutil.copytree(PBC, folder)
    labels = sorted(p.name for p in folder.iterdir())
    pictures = sorted(folder.rglob("*.jpg"))
    results = [ImageResult(str(p), proba={"hqnn": np.eye(8)[labels.index(p.parent.name)] * 0.9 + 0.0125})
               for p in pictures]
    review = Review.from_results(results, labels, ("hqnn",), "pbc8")
    review.accept([str(p) for p in pictures], "hqnn")  # all 24 verified
    basophils = sorted((folder / "basophil").iterdir())
    for p in basophils[:2]:
        p.unlink()
    eosinophil = min((folder / "eosinophil").iterdir())
    eosinophil.rename(tmp_path / "elsewhere.jpg")
    tab = ReviewTab(ClassifyTab())
    qtbot.addWidget(tab)
    statuses = []
    tab.status.connect(statuses.append)
    tab.set_review(Review.load(review.file))

    # the report: 21 cells counted, the 3 gone said apart in words, no blank where they were
    asked = []
    read = review_report.read_thumbnail
    monkeypatch.setattr(review_report, "read_thumbnail", lambda path, *a: asked.append(path) or read(path, *a))

    class Recording(QPainter):
        def __init__(self, device) -> None:
            super().__init__(device)
            self.texts, self.thumbs = [], []

        def drawText(self, *args) -> None:
            self.texts.append(args[-1])
            super().drawText(*args)

        def drawPixmap(self, x, y, pix) -> None:
            self.thumbs.append((x, y))
            super().drawPixmap(x, y, pix)

    page = QImage(review_report.WIDTH, review_report.HEIGHT, QImage.Format_RGB32)  # kept while painted on
    painter = Recording(page)
    review_report.paint_report(painter, tab.review, None, "hqnn")
    painter.end()
    assert ("21 cells, 21 verified, 0 images not usable · pre-classified by the pack pbc8; thumbnails grouped by "
            "HQNN") in painter.texts
    assert ("3 pictures are no longer where they were (moved, renamed or deleted) and are left out of this "
            "report.") in painter.texts
    row = painter.texts.index("basophil")
    assert painter.texts[row:row + 5] == ["basophil", "1", "4.8 %", "1", "4.8 %"]
    gone = {str(p) for p in basophils[:2]} | {str(eosinophil)}
    assert len(asked) == 21 and not gone & set(asked)
    blocks: dict[tuple[int, bool], list[int]] = {}
    for x, y in painter.thumbs:
        right = x >= review_report.MARGIN + (review_report.WIDTH - 2 * review_report.MARGIN) / 2
        blocks.setdefault((y, right), []).append(x)
    assert sorted(map(len, blocks.values())) == [1, 2] + [3] * 6
    for xs in blocks.values():  # side by side from the left of each class's block, no gap
        assert [x - min(xs) for x in sorted(xs)] == [84 * j for j in range(len(xs))]
    tab.export_report(str(tmp_path / "report.pdf"))
    assert statuses[-1] == f"Saved {tmp_path / 'report.pdf'}" and (tmp_path / "report.pdf").stat().st_size

    # the corrections: the 21 pictures still there, and a word on the 3 left out
    out = tab.save_corrections(str(tmp_path / "corrections.csv"))
    with open(out, newline="", encoding="utf-8") as fh:
        listed = [row["path"] for row in csv.DictReader(fh)]
    assert len(listed) == 21 and not gone & set(listed)
    note = (f"3 verified pictures are no longer where they were (moved, renamed or deleted), for example "
            f"{basophils[0].name}, and are left out of the corrections; their decisions stay in the review.")
    assert statuses[-1] == f"Saved 21 verified cells to {out}. {note}"
    pack = tmp_path / "pbc8-corrected"
    pack.mkdir()
    shutil.copy(BUNDLED / "pbc8" / "card.json", pack)
    tab._fine_tuned(str(pack))  # fine-tuning on these corrections done: the word comes back
    assert tab.progress_label.text() == f"Saved the pack pbc8-corrected; it is now in the pack selector. {note}"

    # the differential count as CSV agrees with the report
    tab.export_csv(str(tmp_path / "counts.csv"))
    with open(tmp_path / "counts.csv", newline="", encoding="utf-8") as fh:
        total = next(row for row in csv.DictReader(fh) if row["class"] == "all")
    assert total["verified_n"] == "21" and total["hqnn_n"] == "21"

    # nothing written is lost: the 24 decisions stay in the review
    assert len(Review.load(review.file).decisions) == 24


def test_a_caption_longer_than_its_cell_is_shortened_inside_the_frame(qtbot):
    from PySide6.QtCore import QStringListModel
    from PySide6.QtWidgets import QStyleOptionViewItem

    from hqnn_desktop.gui.review_gallery import CAPTION_MARGIN, THUMB, CellDelegate

    model = QStringListModel(["check: unlike training data (no colour)", "✓ accepted"])
    delegate, option = CellDelegate(), QStyleOptionViewItem()
    delegate.initStyleOption(option, model.index(0))
    assert option.text.endswith("…") and option.text.startswith("check: unlike")
    assert option.fontMetrics.horizontalAdvance(option.text) <= THUMB + 20 - CAPTION_MARGIN
    delegate.initStyleOption(option, model.index(1))
    assert option.text == "✓ accepted"
