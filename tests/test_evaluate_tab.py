"""The Evaluate tab on the bundled pbc8 pack: a cancelled run, exports (SVG, errors, suffixes), absent classes."""

from __future__ import annotations

import csv
import os
import shutil
import xml.etree.ElementTree as ET

import pytest

from .conftest import BUNDLED, SAMPLES

pytestmark = pytest.mark.skipif(not (BUNDLED / "pbc8" / "card.json").exists(), reason="pbc8 pack not built")
PBC = SAMPLES / "pbc8"
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def pack():
    from hqnn_desktop.core.packs import load_pack

    return load_pack(BUNDLED / "pbc8")


@pytest.fixture
def tab(qtbot, pack):
    """The tab alone, showing the validation results recorded in pbc8; its error messages in ``tab.errors``.

    Closed only when its background work has ended (a worker reporting to a deleted tab prints errors).
    """
    from hqnn_desktop.gui.evaluate_tab import EvaluateTab

    tab = EvaluateTab()
    tab.resize(1200, 800)
    tab.show()
    tab.set_pack(pack)
    tab.errors = []
    tab.error.connect(lambda message, details: tab.errors.append(message))
    yield tab
    tab.cancel_button.click()
    qtbot.waitUntil(lambda: tab.worker is None and tab.embeddings.worker is None, timeout=120_000)
    tab.close()
    tab.deleteLater()


def labelled_folder(root, classes, copies: int):
    """``root/<class>/`` with the class's sample images, each ``copies`` times."""
    for name in classes:
        (root / name).mkdir(parents=True)
        for path in sorted((PBC / name).glob("*.jpg")):
            for k in range(copies):
                shutil.copy(path, root / name / f"{k}-{path.name}")
    return root


def table_csv(path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


def test_a_cancelled_evaluation_keeps_the_report_shown_and_says_so(tab, qtbot, tmp_path):
    shown = tab.report
    card_f1 = tab.summary.item(0, 3).text()
    before = tab.write_table(str(tmp_path / "before.csv"))
    folder = labelled_folder(tmp_path / "big", sorted(p.name for p in PBC.iterdir()), copies=5)  # 120 images
    tab.evaluate(str(folder))
    assert not tab.evaluate_button.isEnabled()
    qtbot.waitUntil(lambda: tab.progress.maximum() == 120 and tab.progress.value() > 0, timeout=120_000)
    assert "of 120 images" in tab.source.text()
    tab.cancel_button.click()
    qtbot.waitUntil(lambda: tab.worker is None, timeout=120_000)
    text = tab.source.text()
    assert f"Evaluation of {folder} cancelled after " in text and " of 120 images; nothing was scored" in text
    assert "Still shown: Validation results recorded in the pack pbc8" in text
    assert tab.report is shown and tab.summary.item(0, 3).text() == card_f1
    assert tab.evaluate_button.isEnabled() and not tab.cancel_button.isEnabled()
    # what is exported is what is shown: the recorded results, not a part of the folder
    assert table_csv(tab.write_table(str(tmp_path / "after.csv"))) == table_csv(before)
    assert tab.errors == []

    tab.evaluate(str(folder))  # stopped by the choice of another pack: said so, not "cancelled"
    qtbot.waitUntil(lambda: tab.progress.value() > 0, timeout=120_000)
    from hqnn_desktop.core.packs import load_pack

    tab.set_pack(load_pack(BUNDLED / "bci4"))
    qtbot.waitUntil(lambda: tab.worker is None, timeout=120_000)
    assert f"Evaluation of {folder} stopped because the pack changed to bci4 after " in tab.source.text()


def test_matrices_export_as_svg_with_the_class_names(tab, tmp_path, pack):
    said = []
    tab.status.connect(said.append)
    written = tab.write_plots(str(tmp_path / "cm.svg"))
    assert written == [str(tmp_path / f"cm_{k}.svg") for k in ("hqnn", "classical", "baseline")]
    assert said == [f"Saved 3 files: cm_hqnn.svg, cm_classical.svg, cm_baseline.svg in {tmp_path}"]
    for path in written:
        root = ET.parse(path).getroot()
        assert root.tag == f"{SVG}svg"
        texts = {"".join(e.itertext()).strip() for e in root.iter(f"{SVG}text")}
        assert set(pack.labels) <= texts and {"predicted", "true"} <= texts
    assert "HQNN" in {"".join(e.itertext()) for e in ET.parse(written[0]).getroot().iter(f"{SVG}text")}
    assert tab.errors == []


def test_export_problems_are_explained_and_leave_no_file(tab, tmp_path):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine", encoding="utf-8")
    folder = tmp_path / "folder"
    folder.mkdir()
    assert tab.write_table(str(folder)) is None
    assert tab.write_table(str(a_file / "x.csv")) is None
    assert tab.write_plots(str(tmp_path / "cm.pdf")) == []
    assert tab.write_plots(str(a_file / "sub" / "cm.svg")) == []
    assert tab.write_table("/proc/x.csv") is None  # a folder nobody may write in
    assert tab.errors == [
        f"The table could not be written: {folder} is a folder; choose a file name.",
        f"The table could not be written to {a_file / 'x.csv'}: {a_file} is a file, not a folder.",
        "The matrices can be saved as PNG or SVG only: choose a name ending in .png or .svg.",
        f"The matrices could not be written to {a_file / 'sub' / 'cm.svg'}: {a_file} is a file, not a folder.",
        "The table could not be written to /proc/x.csv: /proc does not take new files (No such file or directory).",
    ]
    assert not any(".tmp" in message for message in tab.errors)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder", "notes.txt"]
    assert list(folder.iterdir()) == [] and a_file.read_text(encoding="utf-8") == "mine"
    # a name without suffix gets the right one
    assert tab.write_table(str(tmp_path / "table")) == str(tmp_path / "table.csv")
    assert tab.write_plots(str(tmp_path / "cm")) == [str(tmp_path / f"cm_{k}.png")
                                                    for k in ("hqnn", "classical", "baseline")]
    assert (tmp_path / "cm_hqnn.png").read_bytes().startswith(b"\x89PNG") and len(tab.errors) == 5


def test_classes_without_images_are_named_and_left_out_of_the_macro_figures(tab, qtbot, tmp_path, pack):
    folder = labelled_folder(tmp_path / "one", ["basophil"], copies=1)
    shutil.copy(next((folder / "basophil").iterdir()), folder / "loose.jpg")  # next to the class folders
    tab.evaluate(str(folder))
    qtbot.waitUntil(lambda: tab.worker is None and "folder" in (tab.report or {}), timeout=120_000)
    others = [lab for lab in pack.labels if lab != "basophil"]
    assert tab.report["n_images"] == 3 and tab.report["n_unlabelled"] == 1
    assert f"1 image directly in {folder} (outside the class folders) had no label and was not scored." in (
        tab.source.text())
    assert (f"No image of {', '.join(others)}: their recall and F1 are undefined (shown as —). The macro "
            "figures average the class with images, and count 0 for any of those classes a model put images "
            "in.") in tab.source.text()
    macro = float(tab.summary.item(0, 3).text())
    hqnn = tab.report["models"]["hqnn"]
    wrongly_used = sum(1 for k, lab in enumerate(pack.labels)
                       if lab != "basophil" and any(row[k] for row in hqnn["confusion_matrix"]))
    assert macro == pytest.approx(hqnn["per_class"]["basophil"]["f1"] / (1 + wrongly_used), abs=1e-3)
    rows = {tab.per_class.item(i, 0).text(): [tab.per_class.item(i, c).text() for c in range(1, 4)]
            for i in range(tab.per_class.rowCount())}
    assert all(v != "—" for v in rows["basophil"])
    for lab in others:
        predicted = sum(row[pack.labels.index(lab)] for row in tab.report["models"]["hqnn"]["confusion_matrix"])
        assert rows[lab][1:] == ["—", "—"] and (rows[lab][0] == "—") == (predicted == 0)
    exported = {row[0]: row[1:4] for row in table_csv(tab.write_table(str(tmp_path / "t.csv")))[1:]}
    assert exported["eosinophil"][1:] == ["", ""] and exported["basophil"] == rows["basophil"]


def test_choosing_another_pack_stops_the_evaluation_and_its_scores_are_never_shown(tab, qtbot, tmp_path):
    from hqnn_desktop.core.packs import load_pack

    folder = labelled_folder(tmp_path / "smear", ["basophil", "eosinophil"], 10)
    tab.evaluate(str(folder))
    qtbot.waitUntil(lambda: tab.progress.value() > 0, timeout=120_000)
    other = load_pack(BUNDLED / "bci4")
    tab.set_pack(other)
    qtbot.waitUntil(lambda: tab.worker is None, timeout=120_000)
    assert "folder" not in (tab.report or {}) and tab.report["labels"] == other.labels
    assert tab.errors == []


def test_a_folder_that_cannot_be_evaluated_leaves_the_previous_results_named_and_no_full_bar(tab, qtbot, tmp_path):
    folder = labelled_folder(tmp_path / "first", ["basophil"], copies=1)
    tab.evaluate(str(folder))
    qtbot.waitUntil(lambda: tab.worker is None and "folder" in (tab.report or {}), timeout=120_000)
    shown, source = tab.report, tab.report_source
    assert source.startswith(f"Folder {folder} with the pack pbc8: 3 images")
    assert tab.progress.value() == tab.progress.maximum() == 1  # this run: all done
    empty = tmp_path / "empty"
    empty.mkdir()
    tab.evaluate(str(empty))
    qtbot.waitUntil(lambda: tab.worker is None, timeout=120_000)
    text = tab.source.text()
    assert text.startswith(f"{empty} has no class subfolders.")
    assert f"\nStill shown: Folder {folder} with the pack pbc8: 3 images" in text  # what the tables show
    assert tab.report is shown and tab.report_source == source
    assert tab.progress.value() < tab.progress.minimum() and tab.progress.text() == ""  # no 100 % of nothing
    assert tab.evaluate_button.isEnabled() and tab.errors == []


def test_matrices_export_asks_before_replacing_the_files_it_writes(tab, tmp_path, monkeypatch):
    """The dialog's own question concerns the name typed, which is never written: the files written
    (one per model) get the question, and the dialog starts beside the data, not in the program's folder."""
    from PySide6.QtWidgets import QFileDialog, QMessageBox

    asked_dialog, answers = [], []
    chosen = str(tmp_path / "confusion.png")

    def dialog(parent, title, start, filters, options=None):
        asked_dialog.append((start, options))
        return chosen, ""

    monkeypatch.setattr(QFileDialog, "getSaveFileName", dialog)
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: answers.pop(0))
    (tmp_path / "confusion_hqnn.png").write_bytes(b"an earlier export")
    answers.append(QMessageBox.StandardButton.No)
    tab.export_plots()
    assert (tmp_path / "confusion_hqnn.png").read_bytes() == b"an earlier export"
    assert not (tmp_path / "confusion_baseline.png").exists()
    answers.append(QMessageBox.StandardButton.Yes)
    tab.export_plots()
    assert (tmp_path / "confusion_hqnn.png").read_bytes().startswith(b"\x89PNG")
    assert (tmp_path / "confusion_baseline.png").exists() and not answers
    start, options = asked_dialog[0]
    assert options == QFileDialog.DontConfirmOverwrite and os.path.isabs(start)


def test_a_pack_that_averages_orientations_says_so_over_its_figures(tab, qtbot, tmp_path):
    import shutil

    from hqnn_desktop.core.orientations import card_orientations
    from hqnn_desktop.core.packs import load_pack

    pack = load_pack(BUNDLED / "bci4")
    turns = card_orientations(pack.card)
    assert turns > 1  # chosen on its validation images (README, Results)
    tab.set_pack(pack)
    assert f"(each picture as it is; the pack averages {turns} orientations when it classifies" in tab.source.text()
    folder = tmp_path / "cells"
    shutil.copytree(BUNDLED.parent / "samples" / "bci4", folder)
    tab.evaluate(str(folder))
    qtbot.waitUntil(lambda: tab.worker is None, timeout=120_000)
    assert tab.report["orientations"] == turns
    assert tab.source.text().endswith(f"not usable; probabilities averaged over {turns} orientations")
