"""Screenshot of the Review tab and its one-page report, from the real application (run under xvfb-run).

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python scripts/screenshot_review.py

Classifies the bundled sample images, opens them in the Review tab, verifies a few
cells with the keyboard as a technologist would, and saves
docs/screenshots/review.png and docs/screenshots/review-report.png.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "screenshots"


def main() -> int:
    tmp = tempfile.mkdtemp()
    for var in ("HQNN_CONFIG_DIR", "HQNN_DATA_DIR", "HQNN_LOG_DIR"):
        os.environ[var] = os.path.join(tmp, var)
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    from hqnn_desktop.core.settings import Settings
    from hqnn_desktop.gui.main_window import MainWindow

    app = QApplication(sys.argv[:1])
    settings = Settings()
    settings.set("pack", str(ROOT / "resources" / "packs" / "pbc8"))
    window = MainWindow(settings=settings)
    window.resize(1500, 900)
    window.show()
    window.start_loading()

    def wait(cond, timeout=120.0):
        end = time.monotonic() + timeout
        while not cond() and time.monotonic() < end:
            app.processEvents()
            time.sleep(0.02)

    wait(lambda: window.classify.engine is not None)
    window.classify.add_paths([str(ROOT / "resources" / "samples" / "pbc8")])
    wait(lambda: not window.classify.busy() and len(window.classify.model.results) == 24)
    window.tabs.setCurrentWidget(window.review)
    tab = window.review
    tab.review_classify_results()
    gallery = tab.gallery
    for key in (Qt.Key_Space, Qt.Key_Return, Qt.Key_Space, Qt.Key_7):
        QTest.keyClick(gallery, key)
    group = max(range(tab.groups.count()), key=lambda r: len(tab.review.groups(tab.model_kind)
                                                             [tab.review.labels[r]]))
    tab.groups.setCurrentRow(group)
    QTest.keyClick(gallery, Qt.Key_Right)
    tab.gallery_model.thumbnails.wait()
    for _ in range(20):
        app.processEvents()
        time.sleep(0.05)
    OUT.mkdir(parents=True, exist_ok=True)
    window.grab().save(str(OUT / "review.png"))
    tab.export_report(str(OUT / "review-report.png"))
    print("saved review.png and review-report.png in", OUT)
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
