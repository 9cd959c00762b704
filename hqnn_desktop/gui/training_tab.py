"""Training tab: a form over ``core.build.train_pack``, live curves, progress, ETA and Cancel."""

from __future__ import annotations

import math
import threading
import time
from pathlib import Path
from typing import ClassVar

import pyqtgraph as pg
from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ..core.configs import (
    BACKBONE_NAMES,
    BACKBONE_NOTES,
    MAX_CELL_WINDOW,
    MAX_LAYERS,
    MAX_QUBITS,
    MIN_CELL_WINDOW,
    MIN_QUBITS,
    AdaptConfig,
    HeadConfig,
)
from ..core.kinds import MODEL_KINDS, MODEL_TITLES
from .pack_names import new_pack_problem
from .wording import LINE_MARK, colour_key
from .workers import start_worker

CURVE_COLORS = {"hqnn": (90, 60, 200), "classical": (30, 150, 110), "baseline": (150, 150, 150),
                "warm-up": (200, 120, 0)}


class EpochAxis(pg.AxisItem):
    """An epoch axis: ticks at whole epochs only (pyqtgraph's own choice put ticks at 1.5, 2.5
    while the first epochs come in, and there is no half epoch)."""

    def tickSpacing(self, minVal: float, maxVal: float, size: float) -> list[tuple[float, float]]:
        """pyqtgraph's spacings of 1 or more (each a whole 1, 2 or 5 times a power of ten); one
        epoch apart when all of them were finer."""
        levels = [(spacing, offset) for spacing, offset in super().tickSpacing(minVal, maxVal, size)
                  if spacing >= 1]
        return levels or [(1.0, 0.0)]


class _Relay(QObject):
    """Carries progress from the training thread to the GUI thread (queued signal)."""

    progress = Signal(str, int, int, dict)


def run_training(recipe, out_dir: str, relay: _Relay, stop: threading.Event) -> str:
    """Worker function: the same training code as ``hqnn-desktop train``."""
    from ..core.build import train_pack
    from ..core.train import Callbacks

    callbacks = Callbacks(progress=lambda *a: relay.progress.emit(*a), cancelled=stop.is_set)
    return str(train_pack(recipe, out_dir, callbacks))


def _folder_row(edit: QLineEdit, parent: QWidget, title: str,
                file_filter: str | None = None) -> QHBoxLayout:
    """A path field with a Browse button: a folder, or with ``file_filter`` a file."""
    def browse() -> str:
        if file_filter:
            return QFileDialog.getOpenFileName(parent, title, edit.text(), file_filter)[0]
        return QFileDialog.getExistingDirectory(parent, title, edit.text())

    row = QHBoxLayout()
    row.addWidget(edit, 1)
    button = QPushButton("Browse…")
    button.clicked.connect(lambda: edit.setText(browse() or edit.text()))
    row.addWidget(button)
    return row


class TrainingTab(QWidget):
    """Train a pack from a labelled folder; the result appears in the pack selector at once."""

    pack_ready = Signal(str, bool)  # the pack's folder; whether to select it
    error = Signal(str, str)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.worker = None
        self._resumable = False  # whether the running training checkpoints (fine-tuning)
        self._stop = threading.Event()
        self._relay = _Relay()
        self._relay.progress.connect(self._on_progress)
        self._started = 0.0
        self._curves: dict[str, tuple[list, list, list]] = {}

        self.train_dir = QLineEdit()
        self.train_dir.setPlaceholderText("Folder with one subfolder per class")
        self.corrections = QLineEdit()
        self.corrections.setPlaceholderText("Optional: verified cells saved by the Review tab (CSV)")
        self.corrections.setToolTip("Added to the dataset folder; with no dataset folder, trained on alone")
        self.val_dir = QLineEdit()
        self.val_dir.setPlaceholderText("Optional: a separate validation folder with the same classes")
        self.val_fraction = QDoubleSpinBox(decimals=2, minimum=0.05, maximum=0.5, singleStep=0.05, value=0.15)
        self.group_pattern = QLineEdit()
        self.group_pattern.setPlaceholderText(r"Optional, e.g. ^g(\d+)_ : images of one group stay together")
        self.val_dir.textChanged.connect(self._validation_source_changed)
        self.backbone = QComboBox()
        for i, name in enumerate(BACKBONE_NAMES):
            self.backbone.addItem(name)
            self.backbone.setItemData(i, BACKBONE_NOTES[name], Qt.ToolTipRole)
        self.start_from = QComboBox()
        self.start_from.addItem("ImageNet weights", None)
        self.start_from.setToolTip(
            "What the backbone knows before training. An installed pack's backbone already knows blood "
            "cells: start from it to build on that pack for your own microscope's pictures (it is adapted "
            "further when the backbone is fine-tuned, used as it is otherwise).")
        self.start_from.currentIndexChanged.connect(self._start_changed)
        self.model_boxes = {k: QCheckBox(MODEL_TITLES[k], checked=True) for k in MODEL_KINDS}
        heads = HeadConfig()  # the protocol's defaults, as on the command line
        self.qubits = QSpinBox(minimum=MIN_QUBITS, maximum=MAX_QUBITS, value=heads.n_qubits)
        self.layers = QSpinBox(minimum=1, maximum=MAX_LAYERS, value=heads.layers)
        self.orientations = QComboBox()
        for text, count in (("Choose on the validation images", None), ("1: each picture as it is", 1),
                            ("4: its quarter turns", 4), ("8: its quarter turns and mirror images", 8)):
            self.orientations.addItem(text, count)
        self.orientations.setToolTip(
            "When the pack classifies, it can also look at each picture turned and mirrored (a cell has no up "
            "or down) and average the answers; each orientation costs one more pass. By default the count is "
            "chosen on the validation images (they are scored turned 7 more times to choose).")
        self.fine_tune = QCheckBox("Fine-tune the backbone first (slow without a GPU)")
        self.epochs = QSpinBox(minimum=1, maximum=200, value=AdaptConfig.epochs)
        self.fine_tune_per_model = QCheckBox("Then fine-tune each model with its own backbone")
        self.fine_tune_per_model.setToolTip(
            "After the heads are trained, each model is fine-tuned end to end with its own copy of the "
            "backbone (same seed, epochs and schedule for all). Classifying with the pack is then about "
            "3.3 times slower, because each model runs its own backbone.")
        self.per_model_epochs = QSpinBox(minimum=1, maximum=100, value=3)
        self.per_model_epochs.setToolTip("Epochs of the per-model fine-tuning")
        self.head_epochs = QSpinBox(minimum=1, maximum=500, value=heads.epochs)
        self.lr = QDoubleSpinBox(decimals=4, minimum=0.0001, maximum=1.0, singleStep=0.001, value=heads.lr)
        self.batch = QSpinBox(minimum=4, maximum=4096, value=heads.batch_size)
        self.seed = QSpinBox(minimum=0, maximum=2**31 - 1, value=heads.seed)
        self.contrastive = QDoubleSpinBox(decimals=2, minimum=0.0, maximum=10.0, singleStep=0.1,
                                          value=heads.contrastive_weight)
        self.cell_crop = QCheckBox("Centre each picture on its stained white cell")
        self.cell_crop.setToolTip(
            "For photographs of whole smear fields with one white cell each (like Blood Cell Images): "
            "a square around the most strongly stained cell is cut out before resizing, in training and "
            "whenever the pack classifies, so the cell gets more of the model's pixels. Leave it off for "
            "pictures that already show one centred cell (like PBC).")
        self.cell_window = QDoubleSpinBox(decimals=2, minimum=MIN_CELL_WINDOW, maximum=MAX_CELL_WINDOW,
                                          singleStep=0.05, value=0.6)
        self.cell_window.setToolTip("Side of the square, as a share of the picture's shorter side")
        self.cell_crop.toggled.connect(self.cell_window.setEnabled)
        self.cell_window.setEnabled(False)
        self.name = QLineEdit("my-pack")
        self.fine_tune.toggled.connect(self.epochs.setEnabled)
        self.epochs.setEnabled(False)
        self.fine_tune_per_model.toggled.connect(self.per_model_epochs.setEnabled)
        self.per_model_epochs.setEnabled(False)

        form = QFormLayout()
        form.addRow("Dataset folder", _folder_row(self.train_dir, self, "Dataset folder"))
        form.addRow("Corrections", _folder_row(self.corrections, self, "Corrections", "CSV (*.csv)"))
        form.addRow("Validation folder", _folder_row(self.val_dir, self, "Validation folder"))
        form.addRow("…or validation fraction", self.val_fraction)
        form.addRow("Group pattern", self.group_pattern)
        form.addRow("", self.cell_crop)
        form.addRow("Cell window", self.cell_window)
        form.addRow("Start from", self.start_from)
        form.addRow("Backbone", self.backbone)
        models_row = QHBoxLayout()
        for box in self.model_boxes.values():
            models_row.addWidget(box)
        form.addRow("Models", models_row)
        form.addRow("Qubits", self.qubits)
        form.addRow("Circuit layers", self.layers)
        form.addRow("", self.fine_tune)
        form.addRow("Backbone epochs", self.epochs)
        form.addRow("", self.fine_tune_per_model)
        form.addRow("Per-model epochs", self.per_model_epochs)
        form.addRow("Head epochs", self.head_epochs)
        form.addRow("Learning rate (heads)", self.lr)
        form.addRow("Batch size (heads)", self.batch)
        form.addRow("Seed", self.seed)
        form.addRow("Contrastive weight", self.contrastive)
        form.addRow("Orientations", self.orientations)
        form.addRow("Pack name", self.name)

        self.start_button = QPushButton("Train")
        self.start_button.setToolTip("Train and save a new pack in your packs folder")
        self.start_button.clicked.connect(self.start)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.progress = QProgressBar()
        self.state = QLabel("Choose a dataset folder, then Train.")
        self.state.setWordWrap(True)
        self.loss_plot = pg.PlotWidget(title="Training loss per epoch", axisItems={"bottom": EpochAxis("bottom")})
        self.acc_plot = pg.PlotWidget(title="Validation accuracy per epoch",
                                      axisItems={"bottom": EpochAxis("bottom")})
        for plot in (self.loss_plot, self.acc_plot):
            plot.setBackground(None)
            plot.setLabel("bottom", "epoch")
        # the key under the plots, not in them: a legend inside covered some curve's points
        self.curve_key = QLabel()
        self.curve_key.setAlignment(Qt.AlignCenter)

        buttons = QHBoxLayout()
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.progress, 1)
        # the long form scrolls, Train and the state stay in view: the whole form would make the
        # window too tall for a 768-pixel laptop screen
        form_holder = QWidget()
        form_holder.setLayout(form)
        self.form_scroll = QScrollArea(widgetResizable=True, frameShape=QFrame.NoFrame)
        self.form_scroll.setWidget(form_holder)
        self.form_scroll.setMinimumWidth(form_holder.sizeHint().width() + 20)
        left = QVBoxLayout()
        left.addWidget(self.form_scroll, 1)
        left.addLayout(buttons)
        left.addWidget(self.state)
        right = QVBoxLayout()
        right.addWidget(self.loss_plot)
        right.addWidget(self.acc_plot)
        right.addWidget(self.curve_key)
        layout = QHBoxLayout(self)
        layout.addLayout(left, 2)
        layout.addLayout(right, 3)

    def recipe(self):
        """The form as a :class:`PackRecipe` (raises ValueError with a readable message)."""
        from ..core.build import AdaptConfig, HeadConfig, PackRecipe

        train = self.train_dir.text().strip()
        corrections = self.corrections.text().strip() or None
        if corrections and not Path(corrections).is_file():
            raise ValueError(f"The corrections file {corrections} does not exist.")
        if not train and corrections:
            train, corrections = corrections, None
        if not train:
            raise ValueError("Choose the dataset folder (one subfolder per class) or a corrections file.")
        if not Path(train).exists():
            raise ValueError(f"The dataset folder {train} does not exist; check its name or choose it with "
                             "Browse….")
        models = tuple(k for k, box in self.model_boxes.items() if box.isChecked())
        if not models:
            raise ValueError("Choose at least one model to train.")
        name = self.name.text().strip()
        return PackRecipe(
            train_dir=train, name=name, val_dir=self.val_dir.text().strip() or None,
            val_fraction=self.val_fraction.value(), group_pattern=self.group_pattern.text().strip() or None,
            models=models, fine_tune=self.fine_tune.isChecked(), corrections=corrections,
            fine_tune_per_model=self.fine_tune_per_model.isChecked(),
            fine_tune_per_model_epochs=self.per_model_epochs.value(),
            adapt=AdaptConfig(backbone=self.backbone.currentText(), epochs=self.epochs.value(),
                              seed=self.seed.value(), bottleneck=self.qubits.value()),
            start_pack=self.start_from.currentData(),
            heads=HeadConfig(n_qubits=self.qubits.value(), layers=self.layers.value(),
                             epochs=self.head_epochs.value(), lr=self.lr.value(), batch_size=self.batch.value(),
                             contrastive_weight=self.contrastive.value(), seed=self.seed.value()),
            cell_window=self.cell_window.value() if self.cell_crop.isChecked() else None,
            orientations=self.orientations.currentData())

    def set_start_packs(self, infos: list) -> None:
        """Offer the backbones of these installed packs (:class:`PackInfo`) to start from, keeping the
        choice made when that pack is still there."""
        chosen = self.start_from.currentData()
        self.start_from.blockSignals(True)
        while self.start_from.count() > 1:
            self.start_from.removeItem(1)
        for info in infos:
            self.start_from.addItem(f"the backbone of {info.name} ({info.source})", str(info.path))
            self.start_from.setItemData(self.start_from.count() - 1, info.card["backbone"], Qt.UserRole + 1)
        self.start_from.setCurrentIndex(max(0, self.start_from.findData(chosen)))
        self.start_from.blockSignals(False)
        self._start_changed()

    def _start_changed(self, *_) -> None:
        """A pack's backbone fixes the architecture: the Backbone choice follows it."""
        backbone = self.start_from.currentData(Qt.UserRole + 1)
        if backbone:
            self.backbone.setCurrentText(backbone)
        self.backbone.setEnabled(not backbone)

    def start(self) -> None:
        from ..core.packs import user_packs_dir

        try:
            recipe = self.recipe()
        except ValueError as exc:
            self.state.setText(str(exc))
            return
        if problem := new_pack_problem(self, recipe.name):
            self.state.setText(problem)
            return
        out = user_packs_dir() / recipe.name
        self._stop = threading.Event()
        self._curves.clear()
        self.loss_plot.clear()
        self.acc_plot.clear()
        self.curve_key.clear()
        self._started = time.monotonic()
        self.start_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.progress.setRange(0, 0)
        self.state.setText("Reading images…")
        self._resumable = recipe.fine_tune or recipe.fine_tune_per_model  # the stages that checkpoint
        self.worker = start_worker(run_training, recipe, str(out), self._relay, self._stop,
                                   returned=self._on_done, errored=self._on_error, finished=self._on_finished)

    def busy(self) -> bool:
        return self.worker is not None

    def cancel(self) -> None:
        if self.worker is not None:
            self._stop.set()
            self.state.setText("Cancelling…")

    STAGES: ClassVar[dict[str, str]] = {
        "load_train": "Reading training images", "load_val": "Reading validation images",
        "adapt": "Fine-tuning the backbone", "adapt_epoch": "Fine-tuning the backbone",
        "features": "Computing features", "heads": "Training the models",
        "fine_tune_model": "Fine-tuning each model with its own backbone",
        "fine_tune_model_epoch": "Fine-tuning each model with its own backbone",
        "orientations": "Scoring turned and mirrored copies of the validation images"}

    def _on_progress(self, stage: str, done: int, total: int, metrics: dict) -> None:
        self.progress.setRange(0, max(1, total))
        self.progress.setValue(done)
        text = f"{self.STAGES.get(stage, stage)}: {done}/{total}"
        if stage.startswith("fine_tune_model"):
            text += f" · {metrics.get('model', '')}"
        if stage == "heads":
            elapsed = time.monotonic() - self._started
            text += f" · {metrics.get('model', '')} epoch {metrics.get('epoch', '')}"
            text += f" · about {elapsed / max(done, 1) * (total - done):.0f} s left"
            self._add_point(metrics)
        self.state.setText(text)

    def _validation_source_changed(self, folder: str) -> None:
        """A validation folder replaces the held-out fraction and its grouping: greyed out, so
        that no one believes both are used."""
        apart = bool(folder.strip())
        for widget in (self.val_fraction, self.group_pattern):
            widget.setEnabled(not apart)
            widget.setToolTip("Not used: the validation folder above is used instead" if apart else "")

    def _add_point(self, m: dict) -> None:
        kind = m.get("model", "")
        if kind not in self._curves:
            self._curves[kind] = ([], [], [])
            self.curve_key.setText(colour_key(((MODEL_TITLES.get(k, k), CURVE_COLORS.get(k, (0, 0, 0)))
                                               for k in self._curves), LINE_MARK))
        xs, losses, accs = self._curves[kind]
        xs.append(m["epoch"])
        losses.append(m["loss"])
        accs.append(m.get("val_accuracy", float("nan")))
        color = CURVE_COLORS.get(kind, (0, 0, 0))
        pen = pg.mkPen(color, width=2)
        title = MODEL_TITLES.get(kind, kind)
        for plot, ys in ((self.loss_plot, losses), (self.acc_plot, accs)):
            items = [i for i in plot.listDataItems() if i.name() == title]
            if items:
                items[0].setData(xs, ys)
            elif not all(math.isnan(y) for y in ys):  # dots too: a one-epoch curve is a single point
                plot.plot(xs, ys, pen=pen, name=title, symbol="o", symbolSize=5, symbolBrush=color,
                          symbolPen=color)

    def _on_done(self, path: str) -> None:
        from ..core.build import (
            left_out_note,
            orientations_note,
            validation_note,
            weak_pack_warning,
        )
        from ..core.packs import read_card

        self.progress.setRange(0, 1)
        self.progress.setValue(1)  # a full bar for a pack saved; a stopped run leaves it empty
        card = read_card(Path(path))
        warning = weak_pack_warning(card)
        text = (f"Saved the pack {Path(path).name}; it is in the pack selector, not selected because of the "
                "warning that follows." if warning else f"Saved the pack {Path(path).name}; it is now in the pack selector.")
        for note in (validation_note(card), orientations_note(card), warning, left_out_note(card)):
            if note:
                text += f" {note}"
        self.state.setText(text)
        self.pack_ready.emit(path, not warning)

    def _on_error(self, exc: Exception) -> None:
        from ..core.packs import PackError
        from ..core.train import TrainingCancelled

        if isinstance(exc, TrainingCancelled):
            self.state.setText("Training cancelled; no pack was written and previous packs are untouched."
                               + (" Starting the same training again resumes its fine-tuning from its last "
                                  "finished epoch." if self._resumable else ""))
        elif isinstance(exc, (ValueError, PackError)):
            self.state.setText(str(exc))
        elif isinstance(exc, OSError):
            self.state.setText(f"The pack could not be written: {exc.strerror or exc}. Nothing else was changed.")
        else:
            self.error.emit("Training stopped because of an unexpected problem.", repr(exc))

    def _on_finished(self) -> None:
        self.worker = None
        self.start_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        self.progress.setRange(0, 1)
