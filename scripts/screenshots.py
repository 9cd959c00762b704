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
    tab = window.classify
    names = [r.path.rsplit("/", 1)[-1] for r in tab.model.results]
    source_row = next(i for i, n in enumerate(names) if n.startswith("LY_"))
    tab.table.selectRow(tab.proxy.mapFromSource(tab.model.index(source_row, 0)).row())
    shown = []
    window.classify.status.connect(lambda m: shown.append(m) if m.startswith("Saliency") else None)
    window.classify.saliency_box.setChecked(True)
    wait(lambda: shown, timeout=60)
    for _ in range(20):
        app.processEvents()
        time.sleep(0.05)
    OUT.mkdir(parents=True, exist_ok=True)
    window.grab().save(str(OUT / "classify.png"))
    window.tabs.setCurrentWidget(window.evaluate)
    window.evaluate.normalised.setChecked(True)
    for _ in range(20):
        app.processEvents()
        time.sleep(0.05)
    window.grab().save(str(OUT / "evaluate.png"))
    window.evaluate.evaluate(str(ROOT / "resources" / "samples" / "pbc8"))
    wait(lambda: window.evaluate.worker is None and window.evaluate.embeddings.points
         and window.evaluate.embeddings.worker is None, timeout=300)
    window.evaluate.views.setCurrentWidget(window.evaluate.embeddings)
    for _ in range(20):
        app.processEvents()
        time.sleep(0.05)
    window.grab().save(str(OUT / "embeddings.png"))
    tab = window.training
    window.tabs.setCurrentWidget(tab)
    shared = ROOT.parent / "shared" / "data" / "pbc" / "val"  # a realistic demo where the data exists
    tab.train_dir.setText(str(shared if shared.is_dir() else ROOT / "resources" / "samples" / "pbc8"))
    tab.val_fraction.setValue(0.3)
    tab.qubits.setValue(6)
    tab.head_epochs.setValue(15)
    tab.batch.setValue(64 if shared.is_dir() else 8)
    tab.name.setText("samples-demo")
    tab.start()
    wait(lambda: not tab.busy(), timeout=600)
    for _ in range(20):
        app.processEvents()
        time.sleep(0.05)
    window.tabs.setCurrentWidget(tab)
    window.grab().save(str(OUT / "training.png"))
    print("saved", sorted(p.name for p in OUT.glob("*.png")))
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
