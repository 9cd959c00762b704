"""Start the desktop application: window first, heavy work (torch, packs) after it shows."""

from __future__ import annotations

import logging
import sys
import traceback

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMessageBox

from ..core.paths import log_dir
from ..hardware.credentials import ScrubSecrets, scrub

log = logging.getLogger("hqnn_desktop")


def setup_logging() -> None:
    handler = logging.FileHandler(log_dir() / "hqnn-desktop.log", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(ScrubSecrets())
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)


def install_excepthook(app: QApplication) -> None:
    """Unexpected errors are logged and shown in words, never crash the app."""

    def hook(exc_type, exc, tb) -> None:
        details = scrub("".join(traceback.format_exception(exc_type, exc, tb)))
        log.error("unexpected error: %s", details)
        window = app.activeWindow()
        box = QMessageBox(QMessageBox.Warning, "hqnn-desktop",
                          "Something went wrong, but your work is safe. Details are in the log file.",
                          QMessageBox.Ok, window)
        box.setDetailedText(details)
        box.open()

    sys.excepthook = hook


def run(paths: list[str]) -> int:
    from .main_window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("hqnn-desktop")
    setup_logging()
    install_excepthook(app)
    window = MainWindow(initial_paths=paths)
    window.show()
    QTimer.singleShot(0, window.start_loading)
    return app.exec()
