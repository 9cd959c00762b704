"""The Hardware tab, driven offscreen: account form, fake-device run with results and exports, and the
confirmation before real hardware (through the stand-in cloud)."""

import csv
import json
import shutil
from pathlib import Path

from PySide6.QtWidgets import QMessageBox

from hqnn_desktop.hardware.credentials import CredentialStore
from hqnn_desktop.hardware.jobs import JobStore
from tests.ibm_standin import GOOD_KEY, INSTANCE, ibm_cloud, memory_keyring  # noqa: F401

SAMPLES = Path(__file__).resolve().parents[1] / "resources" / "samples" / "pbc8"


def labelled_folder(root: Path) -> Path:
    """Two classes, two images each."""
    for cls in ("eosinophil", "platelet"):
        (root / cls).mkdir(parents=True)
        for p in sorted((SAMPLES / cls).iterdir())[:2]:
            shutil.copy(p, root / cls / p.name)
    return root


def fast_options(tab) -> None:
    tab.shots.setValue(2000)
    tab.resilience.setCurrentIndex(0)
    tab.dd.setChecked(False)
    tab.batch.setValue(3)


def test_account_run_results_and_export(window, qtbot, tmp_path, ibm_cloud, memory_keyring):  # noqa: F811
    tab = window.hardware
    assert window.tabs.tabText(window.tabs.indexOf(tab)) == "Hardware"
    assert tab.storage_label.text() == ""  # the keyring is not touched before the tab is shown
    window.tabs.setCurrentWidget(tab)
    assert "Nothing saved" in tab.storage_label.text() and "keyring" in tab.storage_label.text()
    tab.key_edit.setText(GOOD_KEY)
    tab.instance_edit.setText(INSTANCE)
    assert tab.key_edit.echoMode() == tab.key_edit.EchoMode.Password
    tab.save_button.click()
    assert CredentialStore().load().token == GOOD_KEY
    assert tab.key_edit.text() == "" and tab.key_edit.placeholderText().endswith(GOOD_KEY[-4:] + ")")
    assert GOOD_KEY not in tab.storage_label.text() and "Saved in the system keyring" in tab.storage_label.text()
    tab.test_button.click()
    qtbot.waitUntil(lambda: tab.backend_table.rowCount() == 3, timeout=60_000)
    names = [tab.backend_combo.itemText(i) for i in range(tab.backend_combo.count())]
    assert {"ibm_torino", "ibm_brisbane", "ibm_fez", "aer_simulator"} <= set(names)

    tab.backend_combo.setCurrentText("fake_brisbane")
    fast_options(tab)
    assert not tab.folder_edit.isEnabled()  # the Classify tab's images: no folder to type
    tab.source.setCurrentIndex(1)
    assert tab.folder_edit.isEnabled()
    tab.folder_edit.setText(str(labelled_folder(tmp_path / "cells")))
    tab.run_button.click()
    qtbot.waitUntil(lambda: tab.report is not None and not tab.busy(), timeout=120_000)
    report = tab.report
    assert report["backend"] == "fake_brisbane" and report["n_images"] == 4 and report["n_jobs"] == 2
    assert tab.progress.value() == tab.progress.maximum()
    assert "macro-F1: simulation" in tab.summary.text() and "agreement" in tab.summary.text()
    assert tab.sim_plot.matrix.shape == tab.hw_plot.matrix.shape == (8, 8)
    assert tab.images_table.rowCount() == 4 and tab.images_table.columnCount() == 5 + 2 * 8
    assert tab.jobs_table.rowCount() == 1 and tab.jobs_table.item(0, 0).text() == "DONE"  # status first
    assert tab.selected_run() is None and report["run_id"] in tab.jobs_table.item(0, 0).toolTip()

    assert tab.export(str(tmp_path / "hw"), "csv") == str(tmp_path / "hw.csv")  # the ending added
    assert tab.export(str(tmp_path / "hw.json"), "json") == str(tmp_path / "hw.json")
    errors = []
    tab.error.connect(lambda message, details: errors.append(message))
    (tmp_path / "a_file").write_text("")
    assert tab.export(str(tmp_path / "a_file" / "hw.csv"), "csv") is None  # a place no file can go: said in words
    assert errors == [(f"The hardware results could not be written to {tmp_path / 'a_file' / 'hw.csv'}: "
                      f"{tmp_path / 'a_file'} is a file, not a folder.")]
    with open(tmp_path / "hw.csv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 4 and {"truth", "simulated", "hardware", "z_sim_0", "z_hw_7"} <= set(rows[0])
    assert json.loads((tmp_path / "hw.json").read_text())["hardware"] == report["hardware"]

    tab.report = None
    tab.jobs_table.selectRow(0)
    tab.fetch_selected()  # a finished local run: its report comes back from the record
    qtbot.waitUntil(lambda: tab.report is not None, timeout=60_000)
    assert tab.report["hardware"] == report["hardware"]
    for f in tmp_path.rglob("*"):
        assert not f.is_file() or GOOD_KEY.encode() not in f.read_bytes()

    tab.forget_button.click()
    assert CredentialStore().load() is None and "Nothing saved" in tab.storage_label.text()


def test_real_backend_asks_first_and_cancel_submits_nothing(window, qtbot, ibm_cloud, memory_keyring):  # noqa: F811
    tab = window.hardware
    tab.key_edit.setText(GOOD_KEY)
    tab.save_button.click()
    window.classify.add_paths([str(min((SAMPLES / "monocyte").iterdir()))])
    qtbot.waitUntil(lambda: len(window.classify.model.results) == 1 and not window.classify.busy(), timeout=60_000)
    tab.backend_combo.setCurrentText("ibm_torino")
    fast_options(tab)
    tab.source.setCurrentIndex(0)
    tab.run_button.click()
    qtbot.waitUntil(lambda: tab.confirm_box is not None and tab.confirm_box.isVisible(), timeout=120_000)
    text = tab.confirm_box.text()
    assert "1 circuits" in text and "2000 shots" in text and "QPU time" in text and "ibm_torino" in text
    tab.confirm_box.button(QMessageBox.Cancel).click()
    qtbot.waitUntil(lambda: not tab.busy(), timeout=10_000)
    assert "Nothing was submitted" in tab.run_status.text()
    assert JobStore().all() == [] and ibm_cloud.jobs == {}


def test_forget_says_whether_anything_was_saved(window, qtbot, memory_keyring):  # noqa: F811
    tab = window.hardware
    with qtbot.waitSignal(tab.status) as said:
        tab.forget_credentials()
    assert said.args == ["No IBM Quantum credentials were saved."]


def test_a_new_key_replaces_damaged_saved_credentials(window, qtbot, memory_keyring):  # noqa: F811
    import keyring

    from hqnn_desktop.hardware.credentials import ACCOUNT, SERVICE

    keyring.set_password(SERVICE, ACCOUNT, '{"token": "OLD')
    tab = window.hardware
    tab.key_edit.setText(GOOD_KEY)
    with qtbot.waitSignal(tab.status):
        tab.save_button.click()
    assert CredentialStore().load().token == GOOD_KEY


def test_an_empty_labelled_folder_never_falls_back_on_the_classify_images(window, qtbot):
    tab = window.hardware
    window.classify.add_paths([str(min((SAMPLES / "monocyte").iterdir()))])
    qtbot.waitUntil(lambda: len(window.classify.model.results) == 1 and not window.classify.busy(), timeout=60_000)
    tab.backend_combo.setCurrentText("aer_simulator")
    tab.source.setCurrentIndex(1)
    tab.folder_edit.setText("  ")
    with qtbot.waitSignal(tab.error) as said:
        tab.start_run()
    assert said.args[0] == "Choose the labelled folder to run." and not tab.busy()
    assert JobStore().all() == []


def test_fetch_and_cancel_without_a_selected_run_say_what_to_do(window):
    tab = window.hardware
    tab.jobs_table.setCurrentCell(-1, -1)
    for action in (tab.fetch_selected, tab.cancel_selected):
        tab.run_status.clear()
        action()
        assert tab.run_status.text().startswith("Select a run in the list first")


def test_an_unknown_backend_is_explained_in_the_message_itself(window, qtbot, tmp_path):
    tab = window.hardware
    window.tabs.setCurrentWidget(tab)
    window.resize(1100, 600)  # the settings no longer fit: their area scrolls
    tab.controls.verticalScrollBar().setValue(0)
    tab.backend_combo.setCurrentText("fake_nowhere")
    tab.source.setCurrentIndex(1)
    tab.folder_edit.setText(str(labelled_folder(tmp_path / "cells")))
    with qtbot.waitSignal(tab.error, timeout=120_000) as said:
        tab.start_run()
    message, details = said.args
    assert message.startswith("The hardware run did not finish: ") and "fake_nowhere" in message and not details
    assert "fake_nowhere" in tab.run_status.text() and not tab.busy()
    # the message and the Run button sit under the scrolling settings: in sight however small the window
    for widget in (tab.run_status, tab.run_button):
        corner = widget.mapTo(window, widget.rect().bottomRight())
        assert widget.isVisible() and window.rect().contains(corner) and not tab.controls.isAncestorOf(widget)
    assert JobStore().all() == []


def test_a_damaged_run_record_is_named_under_the_runs_list_and_left_as_it_is(window):
    tab = window.hardware
    damaged = JobStore().folder / "0123456789ab.json"
    damaged.write_text('{"run_id": "0123456789ab", "pack"', encoding="utf-8")  # cut off mid-write
    tab.refresh_jobs()
    assert not tab.damaged_runs.isHidden()
    assert "hardware run 0123456789ab" in tab.damaged_runs.text() and "damaged" in tab.damaged_runs.text()
    assert damaged.read_text(encoding="utf-8") == '{"run_id": "0123456789ab", "pack"'
    damaged.unlink()
    tab.refresh_jobs()
    assert tab.damaged_runs.isHidden() and tab.damaged_runs.text() == ""


def test_a_connection_test_without_a_key_says_so_once_and_keeps_where_keys_go(window, qtbot, memory_keyring):  # noqa: F811
    tab = window.hardware
    window.tabs.setCurrentWidget(tab)
    where = tab.storage_label.text()
    with qtbot.waitSignal(tab.error, timeout=60_000) as said:
        tab.test_button.click()
    message, details = said.args
    assert message.startswith("The connection test failed: ") and details == ""
    qtbot.waitUntil(lambda: tab.test_button.isEnabled(), timeout=10_000)
    assert tab.storage_label.text() == where
