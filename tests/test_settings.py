from pathlib import Path

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


def test_every_damaged_settings_file_is_kept_and_none_stops_the_start():
    path = config_dir() / "settings.json"
    contents = ["{broken", '["a", 1]', "[" * 200_000, "\udcff"]
    for text in contents:
        path.write_text(text, encoding="utf-8", errors="surrogateescape")
        s = Settings()
        assert s.get("pack") is None and s.damaged_backup is not None and not path.exists()
    backups = sorted(config_dir().glob("settings.damaged*.json"))
    assert len(backups) == len(contents)  # a second damage does not replace the first backup
    kept = {b.read_text(encoding="utf-8", errors="surrogateescape") for b in backups}
    assert kept == set(contents)


def test_a_damaged_settings_file_that_cannot_be_moved_stays_and_defaults_are_used(monkeypatch):
    path = config_dir() / "settings.json"
    path.write_text("{broken")

    def read_only(self, target):
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(Path, "replace", read_only)
    s = Settings()
    assert s.get("pack") is None and s.damaged_backup == path and path.read_text() == "{broken"


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
    for tab in (99999999999999999999, -1, 5):  # past the tabs, or too large for Qt's int
        path.write_text(f'{{"tab": {tab}}}')
        far = MainWindow(settings=Settings())
        qtbot.addWidget(far)
        assert far.tabs.currentIndex() == 0
        far.close()

    notices: list[str] = []
    monkeypatch.setattr(QMessageBox, "open", lambda box: notices.append(box.text()))
    path.write_text('{"tab": 2, "pa')
    w2 = MainWindow(settings=Settings())
    qtbot.addWidget(w2)
    w2.show()
    qtbot.waitUntil(lambda: len(notices) == 1, timeout=5_000)
    assert "could not be read" in notices[0] and "settings.damaged.json" in notices[0]
