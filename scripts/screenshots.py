"""Take the README's screenshots from the real application (run under xvfb-run).

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python scripts/screenshots.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "screenshots"


def main() -> int:
    import os

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
    wait(lambda: not window.classify.busy() and window.classify.model.results)
    window.classify.table.selectRow(4)
    for _ in range(20):
        app.processEvents()
        time.sleep(0.05)
    OUT.mkdir(parents=True, exist_ok=True)
    window.grab().save(str(OUT / "classify.png"))
    print("saved", OUT / "classify.png")
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
