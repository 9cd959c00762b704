from hqnn_desktop.core.paths import config_dir
from hqnn_desktop.core.settings import Settings


def test_settings_round_trip_and_damaged_file_is_kept_aside():
    s = Settings()
    s.set("last_folder", "/data/smears")
    s.save()
    assert Settings().get("last_folder") == "/data/smears"
    path = config_dir() / "settings.json"
    path.write_text("{broken")
    assert Settings().get("last_folder") is None
    assert (config_dir() / "settings.damaged.json").read_text() == "{broken"


def test_leftovers_of_a_killed_save_are_cleared_at_start():
    s = Settings()
    s.set("pack", "pbc8")
    s.save()
    leftover = config_dir() / ".settings.json.k1ll3d.tmp"
    leftover.write_text('{"pack": "half')
    other = config_dir() / ".other.json.abc.tmp"
    other.write_text("not ours")
    assert Settings().get("pack") == "pbc8"
    assert not leftover.exists() and other.exists()


def test_values_of_the_wrong_type_fall_back_to_defaults():
    path = config_dir() / "settings.json"
    path.write_text('{"tab": "x", "window_geometry": 12, "classify_splitter": [1, 2], "pack": 3, "last_folder": true}')
    s = Settings()
    assert s.get("tab", 0) == 0 and s.get("window_geometry", kind=str) is None
    assert s.get("classify_splitter", kind=str) is None and s.get("pack", kind=str) is None
    assert s.get("last_folder", "") == ""
    assert s.damaged_backup is None


def test_the_window_starts_with_a_foreign_settings_file_and_says_when_one_was_unreadable(qtbot, monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    from hqnn_desktop.gui.main_window import MainWindow

    path = config_dir() / "settings.json"
    path.write_text('{"tab": "x", "window_geometry": 12, "classify_splitter": [1, 2], "pack": 3}')
    w = MainWindow(settings=Settings())
    qtbot.addWidget(w)
    assert w.tabs.currentIndex() == 0
    w.close()

    notices: list[str] = []
    monkeypatch.setattr(QMessageBox, "open", lambda box: notices.append(box.text()))
    path.write_text('{"tab": 2, "pa')
    w2 = MainWindow(settings=Settings())
    qtbot.addWidget(w2)
    w2.show()
    qtbot.waitUntil(lambda: len(notices) == 1, timeout=5_000)
    assert "could not be read" in notices[0] and "settings.damaged.json" in notices[0]
