"""Main window: pack selector, tabs, menus, drag and drop, settings, friendly errors."""

from __future__ import annotations

import json
import logging
from html import escape
from pathlib import Path

from PySide6.QtCore import QByteArray, QSignalBlocker, QSize, Qt
from PySide6.QtGui import QAction, QGuiApplication, QKeySequence
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QPlainTextEdit,
    QTabWidget,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from .. import __version__
from ..core.imageio import IMAGE_SUFFIXES
from ..core.kinds import MODEL_TITLES
from ..core.paths import config_dir, data_dir, log_dir, write_failure
from ..core.settings import Settings
from .classify_tab import ClassifyTab
from .evaluate_tab import EvaluateTab
from .first_exposure import after_first_exposure
from .hardware_tab import HardwareTab
from .review_tab import ReviewTab
from .training_tab import TrainingTab
from .wording import counted
from .workers import start_worker

log = logging.getLogger(__name__)

#: Tabs built just after the window shows, in their order after Classify.
DEFERRED_TABS = ("Evaluate", "Training", "Review", "Hardware")
#: The open dialog lists every picture a folder walk takes, upper-case names too (cameras write IMG_0001.JPG).
IMAGE_FILTER = f"Images ({' '.join(f'*{s} *{s.upper()}' for s in sorted(IMAGE_SUFFIXES))});;All files (*)"


def first_start_size() -> QSize:
    """1200x800, or less on a smaller screen (a 1366x768 laptop would cut off the status bar)."""
    screen = QGuiApplication.primaryScreen()
    if screen is None:
        return QSize(1200, 800)
    room = screen.availableGeometry()
    return QSize(min(1200, int(room.width() * 0.95)), min(800, int(room.height() * 0.92)))


def load_engine(folder: str):
    """Worker function: verify and load a pack, build the engine and warm it up (heavy imports and
    first-run costs happen here, not on the user's first image)."""
    from ..core.packs import load_pack
    from ..core.predict import Engine

    engine = Engine(load_pack(folder))
    engine.warm_up()
    return engine


def list_pack_infos(asked: str | None = None):
    """Worker function: the installed packs, the folder of the pack ``asked`` for at start (added
    to the list when it lies elsewhere), why there is none when it cannot be found, and the
    installed packs whose card cannot be used (listed, greyed out, rather than silently missing)."""
    from ..core.packs import PackError, PackInfo, read_card, resolve_pack, scan_packs

    infos, damaged = scan_packs()
    if asked is None:
        return infos, None, None, damaged
    try:
        folder = resolve_pack(asked)
        if not any(info.path.resolve() == folder.resolve() for info in infos):
            infos.append(PackInfo(folder, read_card(folder), "folder"))
        return infos, folder, None, damaged
    except PackError as exc:
        return infos, None, str(exc), damaged


class MainWindow(QMainWindow):
    def __init__(self, initial_paths: list[str] | None = None, settings: Settings | None = None,
                 load_when_shown: bool = False, initial_pack: str | None = None) -> None:
        """``load_when_shown``: find and load the packs by itself once the window is on screen
        (the app does; tests and scripts call :meth:`start_loading` when they choose).
        ``initial_pack``: a pack name or folder to use instead of the remembered one."""
        super().__init__()
        self.setWindowTitle("hqnn-desktop — blood cell classification (research use, not for diagnosis)")
        self.setAcceptDrops(True)
        self.settings = settings or Settings()
        self.pack_infos = []
        self._loader = None
        self._initial = list(initial_paths or [])
        self._load_when_shown = load_when_shown
        self._initial_pack = initial_pack
        self._ready_message = ""
        self._keep_current = False
        self._loading = ""  # the pack folder whose load counts; earlier ones finishing late are ignored

        self.pack_combo = QComboBox()
        self.pack_combo.setToolTip("Model pack used for classification")
        self.pack_combo.setMinimumWidth(220)
        self.pack_combo.activated.connect(self._pack_chosen)
        self.card_action = QAction("Model card", self)
        self.card_action.setToolTip("What this pack was trained on, how well it does, and its limits (F1)")
        self.card_action.setShortcut(QKeySequence("F1"))
        self.card_action.triggered.connect(self.show_card)
        bar = QToolBar("Pack")
        bar.setObjectName("pack_toolbar")
        bar.addWidget(QLabel(" Pack: "))
        bar.addWidget(self.pack_combo)
        bar.addAction(self.card_action)
        self.addToolBar(bar)

        self.tabs = QTabWidget()
        self.classify = ClassifyTab()
        self.classify.status.connect(self.statusBar().showMessage)
        self.classify.error.connect(self.show_error)
        self.tabs.addTab(self.classify, "Classify")
        for title in DEFERRED_TABS:
            self.tabs.addTab(QWidget(), title)
        self._deferred: dict[str, QWidget] | None = None
        for i in range(self.tabs.count()):
            key = f"Ctrl+{i + 1}"
            action = QAction(self, shortcut=QKeySequence(key))
            action.triggered.connect(lambda _=False, i=i: self.tabs.setCurrentIndex(i))
            self.addAction(action)
            self.tabs.setTabToolTip(i, f"{self.tabs.tabText(i)} ({key})")
        self.setCentralWidget(self.tabs)
        self._build_menus()
        self.statusBar().showMessage("Starting…")
        self.resize(first_start_size())
        geometry = self.settings.get("window_geometry", kind=str)
        if geometry:
            self.restoreGeometry(QByteArray.fromBase64(geometry.encode()))
        state = self.settings.get("classify_splitter", kind=str)
        if state:
            self.classify.splitter.restoreState(QByteArray.fromBase64(state.encode()))
        self.tabs.currentChanged.connect(self._build_deferred_tabs)
        self.tabs.currentChanged.connect(self._tab_changed)
        tab = self.settings.get("tab", 0)
        self.tabs.setCurrentIndex(tab if 0 <= tab < self.tabs.count() else 0)  # a hand-edited file: any number
        self._shown_once = False

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if not self._shown_once:
            self._shown_once = True
            after_first_exposure(self, self._finish_start)

    def _finish_start(self) -> None:
        """Once the window is painted: the secondary tabs (~0.4 s), then the packs.

        In that order because loading a pack imports torch in a worker thread, which
        holds Python's interpreter lock most of the time: tabs built meanwhile took 2-3 s
        of a frozen window instead of 0.4 s.
        """
        self._build_deferred_tabs()
        if self.settings.damaged_backup is not None:
            box = QMessageBox(QMessageBox.Information, "hqnn-desktop",
                              "Your saved settings (last pack, folders, window layout) could not be read, so "
                              "the defaults are used. The damaged file was kept as "
                              f"{self.settings.damaged_backup}.", QMessageBox.Ok, self)
            box.open()
        if self._load_when_shown:
            self.start_loading()

    def _build_deferred_tabs(self, *_) -> dict[str, QWidget]:
        """Build the Evaluate, Training, Review and Hardware tabs once, in place of their empty pages.

        Their dozen plots cost about a third of a second, so they are built just after
        the window is first painted (or as soon as one of them is opened or used).
        """
        if self._deferred is None:
            evaluate = EvaluateTab()
            evaluate.error.connect(self.show_error)
            evaluate.status.connect(self.statusBar().showMessage)
            training = TrainingTab()
            training.error.connect(self.show_error)
            training.pack_ready.connect(self._new_pack)
            review = ReviewTab(self.classify)
            review.status.connect(self.statusBar().showMessage)
            review.error.connect(self.show_error)
            review.pack_ready.connect(self._new_pack)
            review.corrections_saved.connect(training.corrections.setText)
            hardware = HardwareTab(self.classify)
            hardware.status.connect(self.statusBar().showMessage)
            hardware.error.connect(self.show_error)
            self._deferred = dict(zip(DEFERRED_TABS, (evaluate, training, review, hardware), strict=True))
            current = self.tabs.currentIndex()
            with QSignalBlocker(self.tabs):
                for i, (title, tab) in enumerate(self._deferred.items(), start=1):
                    tooltip = self.tabs.tabToolTip(i)
                    self.tabs.widget(i).deleteLater()
                    self.tabs.removeTab(i)
                    self.tabs.insertTab(i, tab, title)
                    self.tabs.setTabToolTip(i, tooltip)
                self.tabs.setCurrentIndex(current)
        return self._deferred

    @property
    def evaluate(self) -> EvaluateTab:
        return self._build_deferred_tabs()["Evaluate"]

    @property
    def training(self) -> TrainingTab:
        return self._build_deferred_tabs()["Training"]

    @property
    def review(self) -> ReviewTab:
        return self._build_deferred_tabs()["Review"]

    @property
    def hardware(self) -> HardwareTab:
        return self._build_deferred_tabs()["Hardware"]

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        for text, shortcut, slot, tip in (
            ("Open images…", QKeySequence.Open, self.open_images, "Classify image files"),
            ("Open folder…", QKeySequence("Ctrl+Shift+O"), self.open_folder, "Classify every image in a folder"),
            ("Export results as CSV…", QKeySequence("Ctrl+E"), self.export_csv, "Save the table as CSV"),
        ):
            action = file_menu.addAction(text, slot)
            action.setShortcut(shortcut)
            action.setToolTip(tip)
        file_menu.addSeparator()
        quit_action = file_menu.addAction("Quit", self.close)
        quit_action.setShortcut(QKeySequence.Quit)
        help_menu = self.menuBar().addMenu("&Help")
        help_menu.addAction(self.card_action)
        help_menu.addAction("About", self.show_about)

    # ------------------------------------------------------------------ packs
    def start_loading(self, keep_current: bool = False) -> None:
        """Find packs and load the remembered (or first) one in the background; with
        ``keep_current``, only list them again, keeping the pack in use as it is loaded."""
        self._keep_current = keep_current
        self.statusBar().showMessage("Looking for model packs…")
        asked, self._initial_pack = self._initial_pack, None
        self._lister = start_worker(list_pack_infos, asked, returned=self._packs_found,
                                    errored=lambda e: self.show_error("The model packs could not be listed.",
                                                                      repr(e)))

    def _packs_found(self, found) -> None:
        infos, asked_folder, asked_problem, damaged = found
        self.pack_infos = list(infos)
        self.pack_combo.clear()
        for info in self.pack_infos:
            title = info.card.get("title", info.name)
            self.pack_combo.addItem(f"{info.name} ({info.source})", str(info.path))
            self.pack_combo.setItemData(self.pack_combo.count() - 1, title, Qt.ToolTipRole)
        for bad in damaged:  # shown, greyed out, with the reason: a pack that vanished would puzzle
            self.pack_combo.addItem(f"{bad.path.name} ({bad.source}, damaged)")
            self.pack_combo.setItemData(self.pack_combo.count() - 1, bad.reason, Qt.ToolTipRole)
            self.pack_combo.model().item(self.pack_combo.count() - 1).setEnabled(False)
        self.training.set_start_packs(self.pack_infos)
        if not self.pack_infos:
            self.statusBar().showMessage("No model pack installed.")
            return
        from ..core.packs import default_pack_name  # imported by the pack lister already

        wanted = self.settings.get("pack", kind=str)
        default = default_pack_name(self.pack_infos)
        index = next((i for i, p in enumerate(self.pack_infos) if str(p.path) == wanted),
                     next(i for i, p in enumerate(self.pack_infos) if p.name == default))
        if asked_folder is not None:
            index = next(i for i, p in enumerate(self.pack_infos) if p.path.resolve() == asked_folder.resolve())
        elif asked_problem is not None:
            self.show_error(f"{asked_problem} The pack {self.pack_infos[index].name} is used instead.")
        self.pack_combo.setCurrentIndex(index)
        engine = self.classify.engine
        if self._keep_current and engine is not None and str(engine.pack.path) == self.pack_combo.itemData(index):
            self.statusBar().showMessage(self._ready_message)  # the same pack, already loaded: kept
        else:
            self._pack_chosen(index)
        if self._initial:
            self.classify.add_paths(self._initial)
            self._initial = []

    def _pack_chosen(self, index: int) -> None:
        folder = self.pack_combo.itemData(index)
        if not folder:
            return
        self.settings.set("pack", folder)
        self.statusBar().showMessage(f"Loading models of {Path(folder).name}…")
        self.pack_combo.setEnabled(False)
        self.classify.set_engine(None)
        self._loading = folder
        self._loader = start_worker(load_engine, folder, returned=self._engine_ready,
                                    errored=lambda exc, folder=folder: self._engine_failed(exc, folder))

    def _new_pack(self, path: str, select: bool = True) -> None:
        """A pack was trained: list it, and select it unless its maker advises against it."""
        if select:
            self.settings.set("pack", path)
        self.start_loading(keep_current=not select)

    def _engine_ready(self, engine) -> None:
        if str(engine.pack.path) != self._loading:  # a newer choice (a pack just trained) is loading
            return
        self.pack_combo.setEnabled(True)
        self.classify.set_engine(engine)
        self.evaluate.set_pack(engine.pack)
        self._ready_message = f"Ready: {engine.pack.name} · {', '.join(engine.pack.labels)}"
        self.statusBar().showMessage(self._ready_message)

    def _tab_changed(self, *_) -> None:
        """A tab's last message ("Reviewing ...") does not follow the user to another tab."""
        if self._ready_message and self.classify.engine is not None:
            self.statusBar().showMessage(self._ready_message)

    def _engine_failed(self, exc: Exception, folder: str) -> None:
        if folder != self._loading:
            return
        self.pack_combo.setEnabled(True)
        self.show_error("This model pack cannot be used.", str(exc))

    def current_card(self) -> dict | None:
        folder = self.pack_combo.currentData()
        info = next((p for p in self.pack_infos if str(p.path) == folder), None)
        return info.card if info else None

    def show_card(self) -> None:
        card = self.current_card()
        if card is None:
            return
        dialog = QDialog(self)
        dialog.setWindowTitle(f"Model card — {card['name']}")
        layout = QVBoxLayout(dialog)
        summary = QLabel(card_summary_html(card))
        summary.setWordWrap(True)
        summary.setTextInteractionFlags(Qt.TextSelectableByMouse)
        layout.addWidget(summary)
        raw = QPlainTextEdit(json.dumps({k: v for k, v in card.items() if k != "training"}, indent=2))
        raw.setReadOnly(True)
        layout.addWidget(raw, 1)
        buttons = QDialogButtonBox(QDialogButtonBox.Close)
        buttons.rejected.connect(dialog.reject)
        layout.addWidget(buttons)
        dialog.resize(700, 600)
        dialog.exec()

    # ------------------------------------------------------------------ inputs and outputs
    def open_images(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Open images", self.settings.get("last_folder", ""),
                                                IMAGE_FILTER)
        if files:
            self.settings.set("last_folder", str(Path(files[0]).parent))
            self.classify.add_paths(files)

    def open_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open folder", self.settings.get("last_folder", ""))
        if folder:
            self.settings.set("last_folder", folder)
            self.classify.add_paths([folder])

    def export_csv(self) -> None:
        from ..core.results import write_csv

        model = self.classify.model
        if not model.results:
            QMessageBox.information(self, "Nothing to export", "Classify some images first.")
            return
        path, _ = QFileDialog.getSaveFileName(self, "Export results", self.settings.get("last_export", "results.csv"),
                                              "CSV (*.csv)")
        if not path:
            return
        from .export_files import ExportError, export_target

        try:  # checked and completed as the other tabs' exports are
            path = export_target(path, (".csv",), "The CSV file")
        except ExportError as exc:
            self.show_error(f"{exc} Nothing was changed there.")
            return
        try:
            write_csv(path, list(model.results), model.models, model.labels)
        except OSError as exc:
            self.show_error(f"{write_failure('The CSV file', path, exc)} Nothing was changed there.")
            return
        self.settings.set("last_export", path)
        n = counted(len(model.results), "image")
        shown = self.classify.proxy.rowCount()
        self.statusBar().showMessage(
            f"Saved {path}: the {n} classified so far; the batch is still running" if self.classify.busy() else
            f"Saved {path}: all {n}, not only the {shown} the filter shows" if shown < len(model.results) else
            f"Saved {path} ({n})")

    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.tabs.setCurrentWidget(self.classify)
            self.classify.add_paths(paths)

    # ------------------------------------------------------------------ messages and closing
    def show_error(self, message: str, details: str = "") -> None:
        log.error("%s %s", message, details)
        box = QMessageBox(QMessageBox.Warning, "hqnn-desktop", message, QMessageBox.Ok, self)
        if details:
            box.setDetailedText(details)
        box.open()

    def show_about(self) -> None:
        QMessageBox.about(self, "About hqnn-desktop", self.about_text())

    @staticmethod
    def about_text() -> str:
        """Version and where the user's files are: the first things asked when something goes wrong."""
        return (f"hqnn-desktop {escape(__version__)} compares a hybrid quantum-classical neural "
                "network with classical models on blood-cell images.<br><br>"
                "<b>Research use only, not for diagnosis.</b><br><br>"
                f"Your packs and reviews: {escape(str(data_dir()))}<br>"
                f"Settings: {escape(str(config_dir()))}<br>Logs: {escape(str(log_dir()))}")

    def closeEvent(self, event) -> None:
        if self._deferred is not None and not self._deferred["Review"].keep_unsaved_decisions():
            event.ignore()
            return
        self.classify.cancel()
        if self._deferred is not None:  # tabs not built yet have nothing to stop
            for title in ("Training", "Review", "Hardware"):
                self._deferred[title].cancel()
        self.classify.wait(10)
        self.settings.set("window_geometry", bytes(self.saveGeometry().toBase64()).decode())
        self.settings.set("classify_splitter", bytes(self.classify.splitter.saveState().toBase64()).decode())
        self.settings.set("tab", self.tabs.currentIndex())
        try:
            self.settings.save()
        except OSError:
            log.exception("settings could not be saved")
        event.accept()


def card_summary_html(card: dict) -> str:
    """A human summary of a model card: data, backbone, labels, validation metrics with how well
    each model's confidence is calibrated, the arithmetic used, intended use and limits.

    Every text from the card is escaped: a user pack's name or notes may hold any characters.
    """
    from ..core.orientations import card_orientations, describe
    from ..core.packs import card_crop  # imports torch: not at window start-up

    crop = card_crop(card)
    turns = card_orientations(card)
    val = card.get("metrics", {}).get("validation", {})
    models = card.get("models", {})
    rows = "".join(
        f"<tr><td>{escape(MODEL_TITLES.get(m, m))}</td><td>{v.get('accuracy', 0):.4f}</td>"
        f"<td>{v.get('macro_f1', 0):.4f}</td><td>{v.get('ece', 0):.3f}</td>"
        f"<td>{models.get(m, {}).get('temperature', 1.0):.2f}</td></tr>"
        for m, v in val.get("models", {}).items())
    data = card.get("data", {})
    return (f"<h3>{escape(str(card.get('title', card['name'])))}</h3>"
            f"<p><b>Intended use:</b> {escape(str(card.get('intended_use', 'research only')))}</p>"
            f"<p><b>Data:</b> {escape(str(data.get('source', data.get('description', ''))))} "
            f"{escape(str(data.get('licence', '')))}</p>"
            f"<p><b>Backbone:</b> {escape(str(card['backbone']))} at {card['input_size']} px · "
            f"<b>circuit:</b> {counted(card['n_qubits'], 'qubit')} × {counted(card['layers'], 'layer')}</p>"
            + (f"<p><b>Input:</b> {escape(crop.describe())}</p>" if crop is not None else "")
            + (f"<p><b>Orientations:</b> probabilities {describe(turns)} (a cell has no up or down; chosen "
               f"on the validation images){escape(_orientation_scores(card))}</p>" if turns > 1 else "") +
            f"<p><b>Classes:</b> {escape(', '.join(card['labels']))}</p>"
            f"<p><b>Validation</b> ({escape(str(val.get('split', '')))}):</p>"
            f"<table border=1 cellpadding=3><tr><th>model</th><th>accuracy</th><th>macro-F1</th>"
            f"<th>calibration error (ECE)</th><th>temperature</th></tr>{rows}</table>"
            f"<p><b>Arithmetic:</b> {escape(precision_sentence(card))}</p>"
            f"<p><b>Limits:</b> {escape(str(card.get('limits', '')))}</p>")


def _orientation_scores(card: dict) -> str:
    """The validation macro-F1 per model with the pack's orientations averaged, as a sentence ('' when
    the card does not give them): the validation table is for each picture as it is."""
    from ..core.orientations import averaged_scores

    scores = averaged_scores(card)
    if not scores:
        return ""
    listed = ", ".join(f"{MODEL_TITLES.get(m, m)} {v:.4f}" for m, v in scores.items())
    return f". Validation macro-F1 with them: {listed} (the table below is for each picture as it is)"


def precision_sentence(card: dict) -> str:
    """Whether this pack may run in bfloat16, in words (see core.runtime's gate)."""
    from ..core.runtime import bf16_check_passed  # imports torch: not at window start-up

    check = card.get("precision_check", {}).get("bf16")
    if not check:
        return "32-bit floating point (no bfloat16 check recorded for this pack)."
    verdict = "passed" if bf16_check_passed(card) else "failed"
    return (f"bfloat16 check {verdict} on {check.get('n_images', '?')} validation images "
            f"({check.get('agreement', 0):.1%} same predictions, macro-F1 moved by up to "
            f"{check.get('max_macro_f1_delta', 0):.4f}): "
            + ("bfloat16 where the processor computes it natively, else 32-bit."
               if verdict == "passed" else "always 32-bit floating point."))