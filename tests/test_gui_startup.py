"""Start-up order of the real window, and errors from background threads shown without a crash."""

from __future__ import annotations

import threading

import pytest
from PySide6.QtCore import QRunnable, QThreadPool
from PySide6.QtWidgets import QApplication, QMessageBox

from .conftest import BUNDLED

pytestmark = pytest.mark.skipif(not (BUNDLED / "pbc8" / "card.json").exists(), reason="pbc8 pack not built")


def test_packs_load_after_the_first_paint_and_the_secondary_tabs(qtbot, monkeypatch):
    from hqnn_desktop.core.settings import Settings
    from hqnn_desktop.gui.main_window import MainWindow

    order: list[str] = []
    real_start = MainWindow.start_loading
    monkeypatch.setattr(MainWindow, "paintEvent", lambda self, e: order.append("painted"), raising=False)
    monkeypatch.setattr(MainWindow, "start_loading",
                        lambda self: (order.append(f"loading, tabs built: {self._deferred is not None}"),
                                      real_start(self)))
    settings = Settings()
    settings.set("pack", str(BUNDLED / "pbc8"))
    w = MainWindow(settings=settings, load_when_shown=True)
    qtbot.addWidget(w)
    assert not order
    w.show()
    qtbot.waitUntil(lambda: w.classify.engine is not None, timeout=60_000)
    assert order.index("loading, tabs built: True") > order.index("painted")
    assert order.count("loading, tabs built: True") == 1


def test_closing_before_the_secondary_tabs_exist_does_not_build_them(qtbot):
    from hqnn_desktop.core.settings import Settings
    from hqnn_desktop.gui.main_window import MainWindow

    w = MainWindow(settings=Settings())
    qtbot.addWidget(w)
    w.close()
    assert w._deferred is None


class _Failing(QRunnable):
    def run(self) -> None:
        raise ValueError("boom in a background thread")


def test_an_error_in_a_background_thread_is_shown_in_the_window_thread(qtbot, monkeypatch):
    """Creating the dialog in the failing thread would make Qt abort the whole app."""
    from hqnn_desktop.gui import app as app_module

    app = QApplication.instance()
    shown: list[tuple[str, bool]] = []
    monkeypatch.setattr(QMessageBox, "open", lambda box: shown.append(
        (box.detailedText(), threading.current_thread() is threading.main_thread())))
    monkeypatch.setattr("sys.excepthook", None)
    monkeypatch.setattr("threading.excepthook", None)
    app_module.install_excepthook(app)
    QThreadPool.globalInstance().start(_Failing())
    qtbot.waitUntil(lambda: len(shown) == 1, timeout=10_000)
    details, in_main_thread = shown[0]
    assert "boom in a background thread" in details and in_main_thread

    worker = threading.Thread(target=lambda: 1 / 0)
    worker.start()
    worker.join()
    qtbot.waitUntil(lambda: len(shown) == 2, timeout=10_000)
    assert "ZeroDivisionError" in shown[1][0] and shown[1][1]


def test_the_first_start_size_fits_the_screen(qtbot):
    from PySide6.QtGui import QGuiApplication

    from hqnn_desktop.gui.main_window import first_start_size

    room = QGuiApplication.primaryScreen().availableGeometry()
    size = first_start_size()
    assert size.width() <= min(1200, room.width()) and size.height() <= min(800, room.height())


def test_an_unwritable_log_folder_does_not_stop_the_window(tmp_path, monkeypatch):
    """A read-only or full disk under the log folder: the log goes to the terminal and the app starts."""
    import logging

    from hqnn_desktop.gui.app import setup_logging

    blocked = tmp_path / "not a folder"
    blocked.write_text("a file where the log folder should be")
    monkeypatch.setenv("HQNN_LOG_DIR", str(blocked))
    before = list(logging.getLogger().handlers)
    try:
        problem = setup_logging()
        assert problem.startswith(f"The log file in {blocked} cannot be written")
        assert problem.endswith("messages go to the terminal instead.")
    finally:
        for handler in logging.getLogger().handlers:
            if handler not in before:
                logging.getLogger().removeHandler(handler)
