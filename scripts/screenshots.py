"""Take the README's screenshots from the real application (run under xvfb-run).

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python scripts/screenshots.py [--only review,hardware]

One window on the bundled pbc8 pack, in throw-away settings: the sample images
classified with a saliency overlay (classify.png), the Evaluate tab (evaluate.png,
embeddings.png), a training run (training.png), a few cells verified with the
keyboard in the Review tab with its one-page report (review.png, review-report.png),
and the samples rerun on the calibrated fake_brisbane (hardware.png); last, the
window switched to bci4 on its whole-field samples, the cell it looked at framed
(fields.png).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "screenshots"
SAMPLES = ROOT / "resources" / "samples" / "pbc8"
SHOTS = ("classify", "evaluate", "training", "review", "hardware", "fields")


class Session:
    """The application, its window, and waiting for background work while events flow."""

    def __init__(self) -> None:
        self.saved: list[str] = []  # the files this run wrote, in order
        tmp = tempfile.mkdtemp()
        for var in ("HQNN_CONFIG_DIR", "HQNN_DATA_DIR", "HQNN_LOG_DIR"):
            os.environ[var] = os.path.join(tmp, var)
        from PySide6.QtWidgets import QApplication

        from hqnn_desktop.core.settings import Settings
        from hqnn_desktop.gui.main_window import MainWindow

        self.app = QApplication(sys.argv[:1])
        settings = Settings()
        settings.set("pack", str(ROOT / "resources" / "packs" / "pbc8"))
        self.window = MainWindow(settings=settings)
        self.window.resize(1500, 1000)
        self.window.show()
        self.window.start_loading()
        self.wait(lambda: self.window.classify.engine is not None)

    def wait(self, cond, timeout: float = 120.0) -> None:
        end = time.monotonic() + timeout
        while not cond() and time.monotonic() < end:
            self.app.processEvents()
            time.sleep(0.02)

    def save(self, name: str, settle: float = 1.0) -> None:
        """Let the window draw for ``settle`` seconds, then save it as docs/screenshots/NAME.png."""
        end = time.monotonic() + settle
        while time.monotonic() < end:
            self.app.processEvents()
            time.sleep(0.05)
        OUT.mkdir(parents=True, exist_ok=True)
        self.window.grab().save(str(OUT / f"{name}.png"))
        self.saved.append(f"{name}.png")

    def classify_samples(self) -> None:
        if not self.window.classify.model.results:
            self.window.classify.add_paths([str(SAMPLES)])
            self.wait(lambda: not self.window.classify.busy() and self.window.classify.model.results)


def classify(s: Session) -> None:
    s.classify_samples()
    tab = s.window.classify
    s.window.tabs.setCurrentWidget(tab)
    names = [r.path.rsplit("/", 1)[-1] for r in tab.model.results]
    source_row = next(i for i, n in enumerate(names) if n.startswith("LY_"))
    tab.table.selectRow(tab.proxy.mapFromSource(tab.model.index(source_row, 0)).row())
    shown = []
    tab.status.connect(lambda m: shown.append(m) if m.startswith("Saliency") else None)
    tab.saliency_box.setChecked(True)
    s.wait(lambda: shown, timeout=60)
    s.save("classify")


def evaluate(s: Session) -> None:
    tab = s.window.evaluate
    s.window.tabs.setCurrentWidget(tab)
    tab.normalised.setChecked(True)
    s.save("evaluate")
    tab.evaluate(str(SAMPLES))
    s.wait(lambda: tab.worker is None and tab.embeddings.points and tab.embeddings.worker is None, timeout=300)
    tab.views.setCurrentWidget(tab.embeddings)
    s.save("embeddings")


def training(s: Session) -> None:
    tab = s.window.training
    s.window.tabs.setCurrentWidget(tab)
    shared = ROOT.parent / "shared" / "data" / "pbc" / "val"  # a realistic demo where the data exists
    tab.train_dir.setText(str(shared if shared.is_dir() else SAMPLES))
    tab.val_fraction.setValue(0.3)
    tab.qubits.setValue(6)
    tab.head_epochs.setValue(15)
    tab.batch.setValue(64 if shared.is_dir() else 8)
    tab.name.setText("samples-demo")
    tab.start()
    s.wait(lambda: not tab.busy(), timeout=600)
    s.save("training")


def review(s: Session) -> None:
    """A technologist's first keys on the samples: accept, accept a group, accept, reclassify."""
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest

    s.classify_samples()
    tab = s.window.review
    s.window.tabs.setCurrentWidget(tab)
    tab.review_classify_results()
    for key in (Qt.Key_Space, Qt.Key_Return, Qt.Key_Space, Qt.Key_7):
        QTest.keyClick(tab.gallery, key)
    groups = tab.review.groups(tab.model_kind)
    tab.groups.setCurrentRow(max(range(tab.groups.count()), key=lambda r: len(groups[tab.review.labels[r]])))
    QTest.keyClick(tab.gallery, Qt.Key_Right)
    tab.gallery_model.thumbnails.wait()
    s.save("review")
    tab.export_report(str(OUT / "review-report.png"))
    s.saved.append("review-report.png")


def hardware(s: Session) -> None:
    """The samples' circuit rerun on the calibrated fake_brisbane, beside the simulation."""
    tab = s.window.hardware
    s.window.tabs.setCurrentWidget(tab)
    tab.backend_combo.setCurrentText("fake_brisbane")
    tab.resilience.setCurrentIndex(0)
    tab.batch.setValue(8)
    tab.source.setCurrentIndex(1)
    tab.folder_edit.setText(str(SAMPLES))
    tab.run_button.click()
    s.wait(lambda: tab.report is not None and not tab.busy(), timeout=600)
    tab.jobs_table.selectRow(0)
    s.save("hardware", settle=1.5)


def fields(s: Session) -> None:
    """bci4 on its whole smear fields: the large picture frames the cell the models saw."""
    w = s.window
    index = next(i for i in range(w.pack_combo.count()) if w.pack_combo.itemText(i).startswith("bci4"))
    w.pack_combo.setCurrentIndex(index)
    w._pack_chosen(index)
    s.wait(lambda: w.classify.engine is not None and w.classify.engine.pack.name == "bci4"
           and not w.classify.busy())
    tab = w.classify
    w.tabs.setCurrentWidget(tab)
    tab.saliency_box.setChecked(False)
    tab.clear()
    tab.add_paths([str(SAMPLES.parent / "bci4")])
    s.wait(lambda: not tab.busy() and tab.model.results)
    eosinophil = tab.model.labels.index("eosinophil")
    row = next(i for i, r in enumerate(tab.model.results)
               if "/eosinophil/" in r.path and r.proba["hqnn"].argmax() == eosinophil)
    tab.table.selectRow(tab.proxy.mapFromSource(tab.model.index(row, 0)).row())
    tab.previews.wait()
    s.save("fields", settle=1.5)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default=",".join(SHOTS), help=f"comma-separated, from {', '.join(SHOTS)}")
    wanted = parser.parse_args().only.split(",")
    unknown = sorted(set(wanted) - set(SHOTS))
    if unknown:
        parser.error(f"unknown screenshot(s): {', '.join(unknown)}")
    session = Session()
    for name in SHOTS:
        if name in wanted:
            globals()[name](session)
    print("saved", ", ".join(session.saved), "in", OUT)
    session.window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
