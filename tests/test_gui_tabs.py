"""Evaluate and Training tabs driven offscreen with the real packs and a tiny generated dataset."""

from __future__ import annotations

import csv
import shutil

import numpy as np
import pytest

from .conftest import BUNDLED, SAMPLES

pytestmark = pytest.mark.skipif(not (BUNDLED / "pbc8" / "card.json").exists(), reason="pbc8 pack not built")



def test_evaluate_tab_shows_bundled_results_then_a_folder(window, qtbot, tmp_path, monkeypatch):
    tab = window.evaluate
    assert tab.summary.rowCount() == 3
    card_models = window.classify.engine.pack.card["metrics"]["validation"]["models"]
    n = card_models["hqnn"]["n"]
    assert tab.matrices["hqnn"].matrix.sum() == n
    assert tab.summary.item(0, 3).text() == f"{card_models['hqnn']['macro_f1']:.4f}"
    curves = [item for item in tab.reliability.listDataItems() if item.name()]
    assert len(curves) == 3
    assert all(title in tab.reliability_key.text() for title in ("HQNN", "Classical Matched", "Baseline"))
    counts = [c for c in card_models["hqnn"]["reliability"]["count"] if c]
    sizes = curves[0].opts["symbolSize"]
    assert len(sizes) == len(counts) and sizes[counts.index(max(counts))] == max(sizes) > min(sizes)
    # models that agree do not hide each other's dots: each set a little aside, in model order
    shifts = [item.getData()[0][-1] - [c for c in card_models[kind]["reliability"]["confidence"] if c is not None][-1]
              for item, kind in zip(curves, ("hqnn", "classical", "baseline"))]
    assert np.allclose(shifts, [-0.01, 0.0, 0.01])
    tab.evaluate(str(SAMPLES / "pbc8"))
    qtbot.waitUntil(lambda: tab.worker is None and tab.report and "folder" in tab.report, timeout=120_000)
    assert tab.report["n_images"] == 24
    for kind in ("hqnn", "classical", "baseline"):
        assert tab.matrices[kind].matrix.sum() == 24
    emb = tab.embeddings
    qtbot.waitUntil(lambda: set(emb.points) == {"code", "hqnn", "classical"} and emb.worker is None,
                    timeout=60_000)
    assert all(len(emb.scatters[k].data) == 24 for k in emb.points)
    assert "truth:" in emb._tip(0, 0, 0)
    opened = []
    monkeypatch.setattr("hqnn_desktop.gui.embedding_view.QDesktopServices.openUrl", lambda url: opened.append(url))
    point = emb.scatters["hqnn"].points()[0]
    with qtbot.waitSignal(emb.opened):
        emb._clicked(emb.scatters["hqnn"], [point])
    assert opened and opened[0].toLocalFile().endswith(".jpg")
    emb.method.setCurrentIndex(1)  # t-SNE
    qtbot.waitUntil(lambda: emb.worker is None and "coloured" in emb.info.text(), timeout=120_000)
    tab.normalised.setChecked(True)
    np.testing.assert_allclose(tab.matrices["hqnn"].matrix.sum(1), 1.0)
    out = tmp_path / "per_class.csv"
    tab.write_table(str(out))
    rows = list(csv.reader(out.read_text(encoding="utf-8").splitlines()))
    assert len(rows) == 9 and rows[0][0] == "class"
    written = tab.write_plots(str(tmp_path / "cm.png"))
    assert len(written) == 3 and all((tmp_path / f"cm_{k}.png").stat().st_size > 1000
                                     for k in ("hqnn", "classical", "baseline"))
    tab.evaluate(str(tmp_path))  # not a labelled folder
    qtbot.waitUntil(lambda: tab.worker is None, timeout=60_000)
    assert "class subfolders" in tab.source.text()


def test_training_tab_trains_a_pack_that_becomes_selectable(window, qtbot, tiny_dataset, tmp_path):
    tab = window.training
    train_given, val = tiny_dataset
    train = tmp_path / "train"
    shutil.copytree(train_given, train)
    (train / "beta" / "scan notes.png").write_bytes(b"not a picture")  # left out, and said so
    tab.train_dir.setText(str(train))
    tab.val_dir.setText(str(val))
    tab.qubits.setValue(3)
    tab.layers.setValue(1)
    tab.head_epochs.setValue(4)
    tab.batch.setValue(16)
    tab.name.setText("tiny-gui")
    assert tab.recipe().orientations is None  # chosen on the validation images unless a count is picked
    tab.orientations.setCurrentIndex(2)
    assert tab.orientations.currentText() == "4: its quarter turns" and tab.recipe().orientations == 4
    with qtbot.waitSignal(tab.pack_ready, timeout=300_000):
        tab.start()
    qtbot.waitUntil(lambda: window.classify.engine is not None
                    and window.classify.engine.pack.name == "tiny-gui", timeout=60_000)
    assert any("tiny-gui" in window.pack_combo.itemText(i) for i in range(window.pack_combo.count()))
    assert tab.loss_plot.listDataItems() and tab.acc_plot.listDataItems()
    # each epoch a dot as well as a line, so a one-epoch run still shows its curves
    assert all(item.opts["symbol"] == "o" for item in tab.loss_plot.listDataItems() + tab.acc_plot.listDataItems())
    assert window.classify.engine.pack.labels == ["alpha", "beta", "gamma"]
    assert window.classify.engine.orientations == 4
    assert "Left out of training: 1 picture that could not be used (for example scan notes.png" in tab.state.text()
    qtbot.waitUntil(lambda: tab.worker is None, timeout=30_000)
    assert tab.progress.value() == tab.progress.maximum() == 1  # full, not a blank box


def test_training_tab_can_start_from_an_installed_packs_backbone(window, qtbot, tiny_dataset):
    from pathlib import Path

    tab = window.training
    qtbot.waitUntil(lambda: tab.start_from.count() > 2, timeout=60_000)
    texts = [tab.start_from.itemText(i) for i in range(tab.start_from.count())]
    assert texts == ["ImageNet weights", "the backbone of bci4 (bundled)", "the backbone of pbc8 (bundled)"]
    tab.train_dir.setText(str(tiny_dataset[0]))
    tab.backbone.setCurrentText("resnet18")
    tab.start_from.setCurrentIndex(2)  # pbc8's backbone fixes the architecture
    assert tab.backbone.currentText() == "efficientnet_lite0" and not tab.backbone.isEnabled()
    recipe = tab.recipe()
    assert Path(recipe.start_pack) == BUNDLED / "pbc8" and recipe.adapt.backbone == "efficientnet_lite0"
    tab.set_start_packs(list(reversed(window.pack_infos)))  # listed again (a pack trained meanwhile): kept
    assert tab.start_from.currentText() == "the backbone of pbc8 (bundled)" and not tab.backbone.isEnabled()
    tab.start_from.setCurrentIndex(0)
    assert tab.backbone.isEnabled() and tab.recipe().start_pack is None


def test_training_tab_explains_bad_input(window, tiny_dataset, monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    from hqnn_desktop.core.packs import user_packs_dir

    tab = window.training
    tab.train_dir.setText("/no/such/folder")
    tab.start()
    assert "The dataset folder /no/such/folder does not exist" in tab.state.text() and not tab.busy()
    tab.train_dir.setText("")
    tab.start()
    assert "Choose the dataset folder" in tab.state.text() and not tab.busy()
    tab.train_dir.setText(str(tiny_dataset[0]))
    for name, words in (("", "needs a name"), ("../x", "cannot be a pack name"), ("x" * 300, "longer than"),
                        ("pbc8", "comes with the app")):
        tab.name.setText(name)
        tab.start()
        assert words in tab.state.text() and not tab.busy()
    kept = user_packs_dir() / "mine"
    kept.mkdir(parents=True)
    (kept / "card.json").write_text("{}")
    asked = []
    monkeypatch.setattr(QMessageBox, "question", lambda *a: asked.append(a[2]) or QMessageBox.No)
    tab.name.setText("mine")
    tab.start()
    assert "already exists" in asked[0] and not tab.busy() and (kept / "card.json").read_text() == "{}"


def test_a_new_pack_no_better_than_guessing_is_pointed_out():
    from hqnn_desktop.core.build import no_better_than_guessing, weak_pack_warning

    def card(acc_hqnn: float, acc_base: float, cm=((12, 0), (8, 0))) -> dict:
        # the most common class is 60 % of the validation images
        return {"metrics": {"validation": {"models": {
            "hqnn": {"accuracy": acc_hqnn, "confusion_matrix": cm},
            "baseline": {"accuracy": acc_base, "confusion_matrix": cm}}}}}

    assert no_better_than_guessing(card(0.6, 0.9)) == "HQNN does"
    assert no_better_than_guessing(card(0.5, 0.6)) == "HQNN and Baseline do"
    assert no_better_than_guessing(card(0.9, 0.8)) == ""
    confident = {**card(0.9, 0.8), "models": {"hqnn": {"temperature": 20.0}, "baseline": {"temperature": 1.1}}}
    assert weak_pack_warning(confident) == (
        "Warning: HQNN was so overconfident on the validation images that calibration flattened its "
        "confidences as far as it can: they mean little.")
    assert weak_pack_warning(card(0.9, 0.8)) == ""
    assert weak_pack_warning(card(0.9, 0.8, ((3, 1), (0, 4)))) == (
        "Warning: its validation figures rest on 8 images (4 of the class with fewest), so they can be far from what "
        "it does on new images; more validation images per class give figures to trust.")


def test_a_new_pack_says_where_its_validation_figures_come_from():
    from hqnn_desktop.core.build import validation_note

    split = {"training": {"n_train": 85, "n_val": 15, "val_fraction": 0.15, "group_pattern": "^(P\\d+)_"}}
    assert validation_note(split) == ("15 of the 100 usable training images (15% asked) were set aside to score the "
                                      "models, whole groups of '^(P\\d+)_' at a time; they were trained on the other 85.")
    given = {"training": {"n_train": 85, "n_val": 1, "val_fraction": None}}
    assert validation_note(given) == "Scored on the 1 validation image given; trained on 85."
    assert validation_note({}) == ""


def test_model_card_summary_shows_calibration_and_arithmetic_and_escapes_names():
    import json

    from hqnn_desktop.gui.main_window import card_summary_html

    card = json.loads((BUNDLED / "pbc8" / "card.json").read_text())
    html = card_summary_html(card)
    t = card["models"]["hqnn"]["temperature"]
    assert f"<td>{t:.2f}</td>" in html and "calibration error (ECE)" in html
    assert "always 32-bit" in html  # pbc8's recorded bf16 check failed
    card["title"] = "<b>my & pack</b>"
    del card["precision_check"]
    html = card_summary_html(card)
    assert "&lt;b&gt;my &amp; pack&lt;/b&gt;" in html and "no bfloat16 check recorded" in html
    assert "Input:" not in html  # pbc8 uses the whole picture
    card["preprocessing"]["crop"] = {"kind": "stained_cell", "side": 0.6}
    assert "<b>Input:</b> a square of 60% of the picture" in card_summary_html(card)


def test_secondary_tabs_are_built_after_the_window_shows_in_place_and_with_their_shortcuts(qtbot):
    from hqnn_desktop.core.settings import Settings
    from hqnn_desktop.gui.main_window import DEFERRED_TABS, MainWindow

    w = MainWindow(settings=Settings())
    qtbot.addWidget(w)
    assert w._deferred is None  # nothing but Classify costs time before the window shows
    w.show()
    qtbot.waitUntil(lambda: w._deferred is not None, timeout=5_000)
    assert [w.tabs.tabText(i) for i in range(w.tabs.count())] == ["Classify", *DEFERRED_TABS]
    assert [w.tabs.widget(i) for i in range(1, 5)] == [w.evaluate, w.training, w.review, w.hardware]
    assert w.tabs.currentIndex() == 0 and w.tabs.tabToolTip(3) == "Review (Ctrl+4)"
    w.close()

    remembered = Settings()
    remembered.set("tab", 2)  # reopened on the Training tab: built at once and shown
    w2 = MainWindow(settings=remembered)
    qtbot.addWidget(w2)
    assert w2._deferred is not None and w2.tabs.currentWidget() is w2.training


def test_a_tabs_status_message_does_not_follow_to_another_tab(window):
    window.statusBar().showMessage("Reviewing /some/folder")
    window.tabs.setCurrentIndex(4)
    assert window.statusBar().currentMessage().startswith("Ready: pbc8")
    assert [window.review.counts.horizontalHeaderItem(j).text() for j in range(2)] == ["Class", "Pre (model)"]


def test_a_pack_saved_with_a_warning_is_listed_but_not_put_in_use(window, qtbot):
    """A pack whose validation figures rest on a handful of images is not swapped in for the one
    the user is classifying with: it is listed, and the Training tab says why it was not selected."""
    import json

    from hqnn_desktop.core.packs import user_packs_dir

    weak = user_packs_dir() / "weak"
    shutil.copytree(BUNDLED / "pbc8", weak)
    card = json.loads((weak / "card.json").read_text())
    card["name"] = "weak"
    for report in card["metrics"]["validation"]["models"].values():
        report["confusion_matrix"] = [[1 if i == j else 0 for j in range(8)] for i in range(8)]
    (weak / "card.json").write_text(json.dumps(card))
    with qtbot.waitSignal(window.training.pack_ready) as sent:
        window.training._on_done(str(weak))
    assert sent.args == [str(weak), False]
    assert window.training.state.text().startswith(
        "Saved the pack weak; it is in the pack selector, not selected because of the warning that follows.")
    assert "Warning: its validation figures rest on 8 images" in window.training.state.text()
    qtbot.waitUntil(lambda: any("weak" in window.pack_combo.itemText(i) for i in range(window.pack_combo.count())),
                    timeout=30_000)
    assert window.classify.engine.pack.name == "pbc8" and "pbc8" in window.pack_combo.currentText()
    assert window.pack_combo.isEnabled()


def test_a_cancelled_training_promises_a_resume_only_when_it_can_resume(window):
    from hqnn_desktop.core.train import TrainingCancelled

    tab = window.training
    for resumable in (False, True):
        tab._resumable = resumable
        tab._on_error(TrainingCancelled())
        assert tab.state.text().startswith("Training cancelled; no pack was written and previous packs are untouched.")
        assert ("resumes its fine-tuning from its last finished epoch" in tab.state.text()) == resumable
