"""Start the desktop application: window first, heavy work (torch, packs) after it shows."""

from __future__ import annotations

import gc
import logging
import os
import sys
import threading
import traceback
from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QApplication, QMessageBox

from ..core.paths import log_dir
from ..hardware.credentials import ScrubSecrets, scrub

log = logging.getLogger("hqnn_desktop")


def log_file() -> Path:
    return log_dir() / "hqnn-desktop.log"


def setup_logging() -> str:
    """Log to the app's log file; where it cannot be written (a read-only or full disk), to the
    terminal instead, so that the window still opens. Returns why the file was not used ('' if it was)."""
    try:
        handler: logging.Handler = logging.FileHandler(log_file(), encoding="utf-8")
        problem = ""
    except OSError as exc:
        handler = logging.StreamHandler(sys.stderr)
        where = os.environ.get("HQNN_LOG_DIR") or "the log folder"
        problem = (f"The log file in {where} cannot be written ({exc.strerror or exc}); "
                   "messages go to the terminal instead.")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(ScrubSecrets())
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.WARNING)  # libraries' chatter (torch, qiskit) stays out unless it matters
    log.setLevel(logging.INFO)
    if problem:
        log.warning(problem)
    return problem


class ErrorDialogs(QObject):
    """Shows unexpected errors in the window's thread, whichever thread they happened in.

    An error escaping a background task reaches the hook in that task's thread, where no
    dialog may be created (Qt aborts the whole process); the signal queues it to the window.
    """

    raised = Signal(str)

    def __init__(self, app: QApplication) -> None:
        super().__init__(app)
        self.raised.connect(self._show)

    def _show(self, details: str) -> None:
        box = QMessageBox(QMessageBox.Warning, "hqnn-desktop",
                          "Something went wrong, but your work is safe. Details are below and in the log "
                          f"file {log_file()}.",
                          QMessageBox.Ok, QApplication.activeWindow())
        box.setDetailedText(details)
        box.open()


def install_excepthook(app: QApplication) -> ErrorDialogs:
    """Unexpected errors, in any thread, are logged and shown in words, never crash the app.

    While the app is closing (a pack still loading when the window is closed) they are only
    logged: there is no window left to show them in.
    """
    dialogs = ErrorDialogs(app)

    def hook(exc_type, exc, tb) -> None:
        if QApplication.instance() is None or QApplication.closingDown():
            log.info("background work cut short by closing the app (%s)", exc_type.__name__)
            return
        details = scrub("".join(traceback.format_exception(exc_type, exc, tb)))
        log.error("unexpected error: %s", details)
        try:
            dialogs.raised.emit(details)
        except RuntimeError:  # reason: the dialogs object went with the application at exit
            pass

    sys.excepthook = hook
    threading.excepthook = lambda args: hook(args.exc_type, args.exc_value, args.exc_traceback)
    return dialogs


def run(paths: list[str], pack: str | None = None) -> int:
    """Open the window on ``paths``; ``pack`` (a name or folder) is used instead of the remembered one.
    Without a display, say so and return 2, rather than let Qt abort the process."""
    from ..cli import no_display_problem

    if problem := no_display_problem():
        print(problem, file=sys.stderr)
        return 2
    from pyqtgraph.util.garbage_collector import GarbageCollector

    from .main_window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("hqnn-desktop")
    setup_logging()
    install_excepthook(app)
    # Python's cyclic collector runs in whichever thread happens to allocate; freeing a Qt object
    # from a background worker can deadlock PySide against the GUI thread. So it runs on a timer
    # in the GUI thread instead (pyqtgraph's helper for exactly this).
    collector = GarbageCollector(interval=1.0)
    window = MainWindow(initial_paths=paths, load_when_shown=True, initial_pack=pack)
    window.show()
    try:
        return app.exec()
    finally:
        collector.timer.stop()
        gc.enable()
