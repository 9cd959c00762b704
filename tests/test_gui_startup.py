"""Start-up order of the real window, and errors from background threads shown without a crash."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
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


_NO_DISPLAY = ("hqnn-desktop: no display found, so the window cannot open. On a server, use the commands "
               "(hqnn-desktop classify ..., see hqnn-desktop --help), or start it inside a desktop session.\n")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="X11 and Wayland displays are Linux's")
@pytest.mark.parametrize("args", [[], ["cell.jpg"], ["--pack", "pbc8", "cell.jpg"]])
def test_without_a_display_the_window_says_so_instead_of_qt_aborting(args, tmp_path):
    """Qt would abort (exit 134) advising to reinstall the application."""
    from .conftest import SAMPLES

    shutil.copy(next((SAMPLES / "pbc8" / "neutrophil").glob("*.jpg")), tmp_path / "cell.jpg")
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env["QT_QPA_PLATFORM"] = ""
    done = subprocess.run([sys.executable, "-m", "hqnn_desktop", *args], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=120, check=False)
    assert (done.returncode, done.stderr, done.stdout) == (2, _NO_DISPLAY, "")


def test_a_display_or_a_chosen_qt_platform_lets_the_window_open(monkeypatch):
    from hqnn_desktop.cli import NO_DISPLAY, no_display_problem

    monkeypatch.setattr(sys, "platform", "linux")
    for var in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(var, raising=False)
    assert no_display_problem() == NO_DISPLAY == _NO_DISPLAY.rstrip("\n")
    monkeypatch.setenv("QT_QPA_PLATFORM", " ")
    assert no_display_problem() == NO_DISPLAY
    for var, value in (("QT_QPA_PLATFORM", "offscreen"), ("DISPLAY", ":0"), ("WAYLAND_DISPLAY", "wayland-0")):
        with monkeypatch.context() as m:
            m.setenv(var, value)
            assert no_display_problem() is None, var
    monkeypatch.setattr(sys, "platform", "darwin")
    assert no_display_problem() is None
