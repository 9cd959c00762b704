"""The README's Hardware tab screenshot: pbc8 samples on the calibrated fake_brisbane (run under xvfb-run).

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python scripts/screenshot_hardware.py
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
    from PySide6.QtWidgets import QApplication

    from hqnn_desktop.core.settings import Settings
    from hqnn_desktop.gui.main_window import MainWindow

    app = QApplication(sys.argv[:1])
    settings = Settings()
    settings.set("pack", str(ROOT / "resources" / "packs" / "pbc8"))
    window = MainWindow(settings=settings)
    window.resize(1500, 1000)
    window.show()
    window.start_loading()

    def wait(cond, timeout=600.0):
        end = time.monotonic() + timeout
        while not cond() and time.monotonic() < end:
            app.processEvents()
            time.sleep(0.02)

    wait(lambda: window.classify.engine is not None)
    tab = window.hardware
    window.tabs.setCurrentWidget(tab)
    tab.backend_combo.setCurrentText("fake_brisbane")
    tab.resilience.setCurrentIndex(0)
    tab.batch.setValue(8)
    tab.source.setCurrentIndex(1)
    tab.folder_edit.setText(str(ROOT / "resources" / "samples" / "pbc8"))
    tab.run_button.click()
    wait(lambda: tab.report is not None and not tab.busy())
    tab.jobs_table.selectRow(0)
    for _ in range(30):
        app.processEvents()
        time.sleep(0.05)
    OUT.mkdir(parents=True, exist_ok=True)
    window.grab().save(str(OUT / "hardware.png"))
    print(tab.summary.text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
