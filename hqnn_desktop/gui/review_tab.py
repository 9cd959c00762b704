"""Review tab: verify the pre-classification cell by cell, read the differential count, feed corrections back.

The technologist's loop of CellaVision-type analysers on top of the Classify
tab: cells grouped by predicted class (any of the three models), cells to check
first; accept or reclassify with the keyboard, the mouse or by dragging; undo
and redo; every decision saved at once (``core.review``). The differential count,
agreement and Cohen's kappa update as decisions are made (``core.differential``);
counts export as CSV and as a one-page report; verified cells become a
manifest, and the pack's heads can be fine-tuned on it (``core.corrections``).
"""

from __future__ import annotations

import html
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QItemSelectionModel, QObject, Qt, Signal
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QMenu,
    QMessageBox,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..core.differential import differential, write_differential_csv
from ..core.kinds import MODEL_TITLES
from ..core.paths import write_failure
from ..core.review import Change, Review, ReviewError, list_reviews, other_pack_reviews
from ..core.suggest import suggest_next
from .pack_names import new_pack_problem
from .review_gallery import PATH_ROLE, GalleryModel, GalleryView, GroupList
from .wording import counted
from .workers import start_worker

if TYPE_CHECKING:
    from .classify_tab import ClassifyTab

KEY_HELP = ("<b>Keys</b>: 1–9 reclassify as that class · Space accept · Enter accept the whole group · "
            "arrows move · Page Up/Down change group · Backspace undecide · Ctrl+Z undo · Ctrl+Shift+Z redo · "
            "N next cell to check<br><b>Frames</b>: <span style='color:#e68c00'>orange dashed</span> check first · "
            "<span style='color:#28a046'>green</span> accepted · <span style='color:#326edc'>blue</span> "
            "reclassified")


#: (title, tooltip) of the differential table's columns; {model} is the grouping model
COUNT_COLUMNS = (
    ("Class", "The class"),
    ("Pre ({model})", "Cells {model} put in this class"),
    ("Verified", "Cells the reviewer verified as this class"),
    ("%", "Share of the verified cells"),
    ("Kept", "Of the verified cells {model} put in this class, the share the reviewer left there"),
)


def pack_words(name: str) -> str:
    """'the pack pbc8', or words for a review saved by a version that did not record its pack."""
    return f"the pack {name}" if name else "an unnamed pack"


def missing_note(review: Review) -> str:
    """What a reopened review says about pictures no longer where they were (moved, renamed,
    deleted): they keep their decisions but cannot be shown, and training on corrections cannot
    use them ('' when every picture is there)."""
    missing = review.missing_pictures()
    if not missing:
        return ""
    return (f"; {counted(len(missing), 'picture')} of this review {'is' if len(missing) == 1 else 'are'} no longer "
            f"where {'it was' if len(missing) == 1 else 'they were'} (for example {Path(missing[0]).name}): "
            "decisions are kept, but such pictures cannot be shown or trained on")

#: The formats a review report is saved in (the first is added to a name without a suffix).
REPORT_SUFFIXES = (".png", ".pdf", ".jpg", ".jpeg", ".tif", ".tiff")

class _Relay(QObject):
    """Carries fine-tuning progress from the worker thread to the GUI thread."""

    progress = Signal(str, int, int, dict)


def run_fine_tune(recipe, out_dir: str, relay: _Relay, stop: threading.Event) -> str:
    """Worker function: fine-tune a pack's heads on a review's corrections."""
    from ..core.finetune import fine_tune_pack
    from ..core.train import Callbacks

    return str(fine_tune_pack(recipe, out_dir, Callbacks(progress=lambda *a: relay.progress.emit(*a),
                                                         cancelled=stop.is_set)))


class ReviewTab(QWidget):
    """Gallery of cells per class group, decisions, differential count, exports and corrections."""

    status = Signal(str)
    error = Signal(str, str)
    pack_ready = Signal(str, bool)  # the pack's folder; whether to select it
    corrections_saved = Signal(str)

    def __init__(self, classify: ClassifyTab, parent=None) -> None:
        super().__init__(parent)
        self.classify = classify
        self.review: Review | None = None
        self._preview_of: str | None = None
        self.worker = None
        self._stop = threading.Event()
        self._relay = _Relay()
        self._relay.progress.connect(self._on_progress)
        #: what the last corrections saved left out (pictures no longer there), repeated once fine-tuned
        self._corrections_note = ""

        self.from_classify = QPushButton("Review the Classify results")
        self.from_classify.setToolTip("Verify every image classified in the Classify tab, whatever its filters "
                                      "show. Decisions saved earlier for the folder with this pack come back; "
                                      "a review with another pack is kept apart.")
        self.from_classify.clicked.connect(self.review_classify_results)
        self.saved = QComboBox()
        self.saved.setToolTip("Reopen a review saved earlier, without classifying again")
        self.saved.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
        self.saved.setMinimumContentsLength(18)
        self.saved.activated.connect(self._open_saved)
        self.kind = QComboBox()
        self.kind.setToolTip("Whose pre-classification groups the cells")
        self.kind.currentIndexChanged.connect(self._kind_changed)
        self.progress_label = QLabel("Classify a folder, then press “Review the Classify results”.")
        self.progress_label.setWordWrap(True)
        self.next_button = self._button("Next to check (N)", "Jump to the cell whose check helps most: "
                                        "models unsure, disagreeing or facing something unlike their training",
                                        self.go_to_suggestion)
        self.undo_button = self._button("Undo", "Take back the last decision (Ctrl+Z)", self.undo)
        self.redo_button = self._button("Redo", "Redo what was undone (Ctrl+Shift+Z)", self.redo)

        self.groups = GroupList()
        self.groups.setToolTip("Class groups; drop cells here to reclassify them")
        self.groups.setFocusPolicy(Qt.NoFocus)  # keys always reach the gallery
        self.groups.currentRowChanged.connect(self._group_changed)
        self.groups.cells_dropped.connect(self._dropped)
        self.counts = QTableWidget(0, len(COUNT_COLUMNS))
        self.counts.setHorizontalHeaderLabels([title.format(model="model") for title, _ in COUNT_COLUMNS])
        self.counts.verticalHeader().hide()
        self.counts.horizontalHeader().setSectionResizeMode(len(COUNT_COLUMNS) - 1, QHeaderView.Stretch)
        self.counts.setEditTriggers(QTableWidget.NoEditTriggers)
        self.counts.setFocusPolicy(Qt.NoFocus)
        self.agreement = QLabel()
        self.agreement.setWordWrap(True)

        self.gallery_model = GalleryModel(self)
        self.gallery = GalleryView()
        self.gallery.setModel(self.gallery_model)
        self.gallery.selectionModel().currentChanged.connect(self._show_current)
        self.gallery.classify_as.connect(self.reclassify_current)
        self.gallery.accept_cells.connect(self.accept_current)
        self.gallery.accept_group.connect(self.accept_group)
        self.gallery.unverify.connect(self.unverify_current)
        self.gallery.change_group.connect(self._step_group)
        self.gallery.undo.connect(self.undo)
        self.gallery.redo.connect(self.redo)
        self.gallery.next_suggestion.connect(self.go_to_suggestion)
        self.gallery.setContextMenuPolicy(Qt.CustomContextMenu)
        self.gallery.customContextMenuRequested.connect(self._cell_menu)

        self.preview = QLabel()
        self.preview.setAlignment(Qt.AlignCenter)
        self.preview.setMinimumSize(240, 240)
        self.detail = QLabel()
        self.detail.setWordWrap(True)
        self.detail.setTextInteractionFlags(Qt.TextSelectableByMouse)
        help_label = QLabel(KEY_HELP)
        help_label.setWordWrap(True)

        self.export_csv_button = self._button("Export counts (CSV)…", "Save the differential count as CSV",
                                              self.ask_export_csv)
        self.export_report_button = self._button("Export report…", "A one-page report (PNG, JPEG or PDF) with "
                                                 "counts, chart, thumbnails and the pack's card",
                                                 self.ask_export_report)
        self.save_corrections_button = self._button("Save corrections…", "Save the verified cells as a list "
                                                    "of labelled images the Training tab can use",
                                                    self.ask_save_corrections)
        self.fine_tune_button = self._button("Fine-tune the pack on corrections…", "Train the pack's three "
                                             "models a little more on the verified cells; saved as a new pack",
                                             self.ask_fine_tune)
        self.cancel_button = self._button("Cancel", "Stop fine-tuning", self.cancel)
        self.cancel_button.setEnabled(False)

        top = QHBoxLayout()
        top.addWidget(self.from_classify)
        top.addWidget(QLabel("or reopen:"))
        top.addWidget(self.saved)
        top.addWidget(QLabel("Group by:"))
        top.addWidget(self.kind)
        top.addStretch(1)
        for b in (self.next_button, self.undo_button, self.redo_button):
            top.addWidget(b)
        left = QWidget()
        lv = QVBoxLayout(left)
        lv.setContentsMargins(0, 0, 0, 0)
        lv.addWidget(QLabel("<b>Class groups</b>"))
        lv.addWidget(self.groups, 2)
        lv.addWidget(QLabel("<b>Differential count</b>"))
        lv.addWidget(self.counts, 3)
        lv.addWidget(self.agreement)
        right = QWidget()
        rv = QVBoxLayout(right)
        rv.setContentsMargins(0, 0, 0, 0)
        rv.addWidget(self.preview, 3)
        rv.addWidget(self.detail, 2)
        self.splitter = QSplitter()
        self.splitter.addWidget(left)
        middle = QWidget()
        mv = QVBoxLayout(middle)
        mv.setContentsMargins(0, 0, 0, 0)
        mv.addWidget(self.gallery, 1)
        mv.addWidget(help_label)
        self.splitter.addWidget(middle)
        self.splitter.addWidget(right)
        self.splitter.setStretchFactor(0, 2)
        self.splitter.setStretchFactor(1, 5)
        self.splitter.setStretchFactor(2, 2)
        self.splitter.setSizes([330, 600, 270])  # the count table's columns readable at the first start
        bottom = QHBoxLayout()
        for b in (self.export_csv_button, self.export_report_button, self.save_corrections_button,
                  self.fine_tune_button, self.cancel_button):
            bottom.addWidget(b)
        bottom.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        # on a line of its own: squeezed between the buttons it wrapped one word per line
        layout.addWidget(self.progress_label)
        layout.addWidget(self.splitter, 1)
        layout.addLayout(bottom)
        self._set_enabled()
        self.refresh_saved()

    def _button(self, text: str, tip: str, slot) -> QPushButton:
        """A button that leaves the keyboard focus in the gallery."""
        button = QPushButton(text)
        button.setToolTip(tip)
        button.setFocusPolicy(Qt.NoFocus)
        button.clicked.connect(slot)
        return button

    # ------------------------------------------------------------------ starting a review
    def review_classify_results(self) -> None:
        """Review every result of the Classify tab, whatever its filters show: the differential
        count is of the whole smear (decisions saved for the folder and pack are restored)."""
        tab = self.classify
        if tab.busy():
            self.progress_label.setText("Classification is still running; review when it has finished.")
            return
        results = list(tab.model.results)
        if not results or tab.engine is None:
            self.progress_label.setText("Nothing to review yet: classify a folder in the Classify tab first.")
            return
        try:
            review = Review.from_results(results, tab.model.labels, tab.model.models, tab.engine.pack.name)
        except (ReviewError, OSError) as exc:
            self.progress_label.setText(str(exc))
            return
        self.set_review(review)

    def _open_saved(self, index: int) -> None:
        file = self.saved.itemData(index)
        if not file:
            return
        try:
            self.set_review(Review.load(file))
        except ReviewError as exc:
            self.progress_label.setText(str(exc))

    def refresh_saved(self) -> None:
        self.saved.clear()
        self.saved.addItem("Saved reviews…", None)
        for info in list_reviews():
            self.saved.addItem(f"{Path(info.folder).name} · {info.n_verified}/{info.n_cells} verified · "
                               f"{info.pack}", str(info.file))
            self.saved.setItemData(self.saved.count() - 1, info.folder, Qt.ToolTipRole)

    def keep_unsaved_decisions(self) -> bool:
        """Before the review is closed or replaced: save what a failed save left in memory, and if the
        disk still refuses, ask whether to drop it; True to go ahead."""
        if self.review is None or self.review.retry_save():
            return True
        return QMessageBox.question(
            self, "Decisions not saved",
            f"{self.review.unsaved}\n\nThey still cannot be saved. Close this review anyway and lose them?"
        ) == QMessageBox.Yes

    def set_review(self, review: Review) -> None:
        """Show a review: groups, counts, first group with cells to check (after saving, or the
        user's leave to drop, the decisions of the one shown before)."""
        if self.review is not None and review is not self.review and not self.keep_unsaved_decisions():
            return
        self.review = review
        self.kind.blockSignals(True)
        self.kind.clear()
        for m in review.models:
            self.kind.addItem(MODEL_TITLES[m], m)
        self.kind.blockSignals(False)
        self.refresh_saved()
        self._refresh(select_group=0)
        todo = suggest_next(review)
        if todo:
            self.select_cell(todo[0].path)
        self.gallery.setFocus()
        n_restored = review.n_verified
        self.status.emit(f"Reviewing {review.folder} with {pack_words(review.pack)}"
                         + (f"; {counted(n_restored, 'decision')} restored" if n_restored else "")
                         + "".join(f"; the {counted(other.n_verified, 'cell')} verified with {pack_words(other.pack)} are "
                                   "kept in their own review (Saved reviews)"
                                   for other in other_pack_reviews(review) if other.n_verified)
                         + missing_note(review))

    @property
    def model_kind(self) -> str:
        return self.kind.currentData() or "hqnn"

    # ------------------------------------------------------------------ decisions
    def current_paths(self) -> list[str]:
        """The selected cells, or the current one."""
        rows = sorted({i.row() for i in self.gallery.selectionModel().selectedIndexes()})
        if not rows and self.gallery.currentIndex().isValid():
            rows = [self.gallery.currentIndex().row()]
        return [self.gallery_model.cells[r].path for r in rows]

    def reclassify_current(self, class_index: int) -> None:
        """Number key: the selected cells are verified as that class; the next cell becomes current."""
        if self.review is None or class_index >= len(self.review.labels):
            return
        paths = self.current_paths()
        if paths:
            row = self.gallery.currentIndex().row()
            changes = self.review.decide(paths, self.review.labels[class_index])
            stays = self.review.labels[class_index] == self.gallery_model.label
            self._refresh(keep_row=row + 1 if stays else row, changed=changes)

    def accept_current(self) -> None:
        if self.review is None:
            return
        paths = self.current_paths()
        if paths:
            row = self.gallery.currentIndex().row()
            self._refresh(keep_row=row + 1, changed=self.review.accept(paths, self.model_kind))

    def accept_group(self) -> None:
        """Enter: every cell of the group not yet verified is accepted; on to the next group to check."""
        if self.review is None:
            return
        self._refresh(changed=self.review.accept([c.path for c in self.gallery_model.cells], self.model_kind))
        todo = suggest_next(self.review)
        if todo:
            self.select_cell(todo[0].path)

    def unverify_current(self) -> None:
        if self.review is not None and self.current_paths():
            row = self.gallery.currentIndex().row()
            self._refresh(keep_row=row, changed=self.review.clear(self.current_paths()))

    def _cell_menu(self, pos) -> None:
        """Right click: accept, reclassify or undecide the selected cells with the mouse."""
        if self.review is None or not self.current_paths():
            return
        menu = QMenu(self)
        menu.addAction("Accept (Space)", self.accept_current)
        move = menu.addMenu("Reclassify as")
        for i, label in enumerate(self.review.labels):
            move.addAction(f"{label} ({i + 1})" if i < 9 else label,
                           lambda i=i: self.reclassify_current(i))
        menu.addAction("Not verified (Backspace)", self.unverify_current)
        menu.addSeparator()
        menu.addAction("Accept the whole group (Enter)", self.accept_group)
        menu.popup(self.gallery.viewport().mapToGlobal(pos))

    def _dropped(self, paths: list[str], group_row: int) -> None:
        if self.review is not None:
            changes = self.review.decide(paths, self.review.labels[group_row])
            self._refresh(keep_row=self.gallery.currentIndex().row(), changed=changes)

    def undo(self) -> None:
        if self.review is not None:
            self._after_history(self.review.undo(), "Undone", "Nothing to undo.")

    def redo(self) -> None:
        if self.review is not None:
            self._after_history(self.review.redo(), "Redone", "Nothing to redo.")

    def _after_history(self, changes: list[Change], what: str, nothing: str) -> None:
        if not changes:
            self.status.emit(nothing)
            return
        note = self._refresh()
        self.select_cell(changes[0].path)
        self.status.emit(" ".join([f"{what}: {counted(len(changes), 'cell')}.", note]).strip())

    def go_to_suggestion(self) -> None:
        if self.review is None:
            return
        todo = suggest_next(self.review)
        if todo:
            self.select_cell(todo[0].path)
        else:
            self.status.emit("Every cell is verified.")

    # ------------------------------------------------------------------ presentation
    def select_cell(self, path: str) -> None:
        """Show the group the cell is in and make it current."""
        label = self.review.current_label(path, self.model_kind)
        self.groups.setCurrentRow(self.review.labels.index(label))
        for row, cell in enumerate(self.gallery_model.cells):
            if cell.path == path:
                index = self.gallery_model.index(row)
                self.gallery.selectionModel().setCurrentIndex(index, QItemSelectionModel.ClearAndSelect)
                self.gallery.scrollTo(index)
                break
        self.gallery.setFocus()

    def _kind_changed(self) -> None:
        if self.review is not None:
            self._refresh(select_group=max(0, self.groups.currentRow()))
            self.gallery.setFocus()

    def _step_group(self, step: int) -> None:
        if self.groups.count():
            self.groups.setCurrentRow((self.groups.currentRow() + step) % self.groups.count())
            self.gallery.setFocus()

    def _group_changed(self, row: int) -> None:
        label = self.review.labels[row] if self.review is not None and row >= 0 else ""
        self.gallery_model.show_group(self.review, self.model_kind, label)
        if self.gallery_model.rowCount():
            self.gallery.selectionModel().setCurrentIndex(self.gallery_model.index(0),
                                                          QItemSelectionModel.ClearAndSelect)
        else:
            self._show_current()

    def _refresh(self, keep_row: int | None = None, select_group: int | None = None,
                 changed: list[Change] | None = None) -> str:
        """Redraw groups, gallery and counts after a change; keep the cursor near where it was.

        With ``changed`` (the cells a decision touched) the gallery only redraws or
        drops those cells instead of starting over, which keeps each key press quick.
        Returns what the status bar was told about the save (decisions taken in from
        another window, or a save that failed), so a caller's own message can keep it.
        """
        review = self.review
        outside = review.take_outside_changes()
        note = ""
        if outside:  # cells may have moved into this group: draw it afresh
            changed = None
            one = len(outside) == 1
            note = (f"{len(outside)} decision{'' if one else 's'} made in another window on this "
                    f"review {'was' if one else 'were'} taken in.")
        if review.unsaved:
            note = review.unsaved
        if note:
            self.status.emit(note)
        row = max(0, self.groups.currentRow() if select_group is None else select_group)
        self._show_groups(row)
        label = review.labels[row]
        model = self.gallery_model
        if changed is not None and model.review is review and (model.kind, model.label) == (self.model_kind, label):
            model.update({c.path for c in changed})
        else:
            model.show_group(review, self.model_kind, label)
        n = model.rowCount()
        if n and (keep_row is not None or not self.gallery.currentIndex().isValid()):
            target = min(max(0, keep_row or 0), n - 1)
            self.gallery.selectionModel().setCurrentIndex(model.index(target), QItemSelectionModel.ClearAndSelect)
        self._show_current()
        self._show_counts()
        self._set_enabled()
        return note

    def _show_groups(self, current: int) -> None:
        """One line per class group with its number key, size and cells not verified yet."""
        review = self.review
        self.groups.blockSignals(True)
        if self.groups.count() != len(review.labels):
            self.groups.clear()
            self.groups.addItems([""] * len(review.labels))
        for i, (label, cells) in enumerate(review.groups(self.model_kind).items()):
            todo = sum(1 for c in cells if review.verified(c.path) is None)
            key = f"{i + 1}" if i < 9 else " "
            item = self.groups.item(i)
            item.setText(f"{key}  {label}  —  {counted(len(cells), 'cell')}" + (f", {todo} not verified" if todo else ""))
            item.setForeground(Qt.darkGreen if cells and not todo else self.palette().text().color())
        self.groups.setCurrentRow(current)
        self.groups.blockSignals(False)

    def _show_counts(self) -> None:
        review = self.review
        diff = differential(review)
        kind = self.model_kind
        for j, (title, tip) in enumerate(COUNT_COLUMNS):
            item = QTableWidgetItem(title.format(model=MODEL_TITLES[kind]))
            item.setToolTip(tip.format(model=MODEL_TITLES[kind]))
            self.counts.setHorizontalHeaderItem(j, item)
        if self.counts.rowCount() != len(diff.rows):
            self.counts.setRowCount(len(diff.rows))
            for i in range(len(diff.rows)):
                for j in range(len(COUNT_COLUMNS)):
                    self.counts.setItem(i, j, QTableWidgetItem())
        for i, r in enumerate(diff.rows):
            pct, kept = diff.verified_pct(r), r.kept[kind]
            for j, text in enumerate((r.label, str(r.pre[kind]), str(r.verified),
                                      "" if pct is None else f"{pct:.1f}",
                                      "" if kept is None else f"{kept:.0%}")):
                self.counts.item(i, j).setText(text)
        for j in range(len(COUNT_COLUMNS) - 1):
            self.counts.resizeColumnToContents(j)
        parts = [f"{MODEL_TITLES[m]} {diff.agreement[m]:.0%}, κ {diff.kappa[m]:.2f}"
                 for m in diff.models if diff.agreement[m] is not None]
        self.agreement.setText(("<b>Agreement with the verified labels</b> "
                                f"({counted(diff.n_verified, 'cell')}): " + " · ".join(parts)) if parts else
                               "Agreement and kappa appear as cells are verified.")
        self.progress_label.setText(f"<b>{html.escape(Path(review.folder).name)}</b>: {diff.n_verified} of {diff.n_cells} "
                                    "cells verified" + (f" · {diff.n_unusable} images not usable"
                                                        if diff.n_unusable else "")
                                    + (f"<br><span style='color:#b00020'>{html.escape(review.unsaved)}</span>"
                                       if review.unsaved else ""))

    def _show_current(self, *_) -> None:
        index = self.gallery.currentIndex()
        if self.review is None or not index.isValid():
            self._preview_of = None
            self.preview.clear()
            self.detail.setText("")
            return
        path = index.data(PATH_ROLE)
        cell = self.review.by_path[path]
        if path != self._preview_of:
            self._preview_of = path
            pix = QPixmap(path)
            if pix.isNull():
                self.preview.setText("(no preview)")
            else:
                self.preview.setPixmap(pix.scaled(self.preview.size(), Qt.KeepAspectRatio,
                                                  Qt.SmoothTransformation))
        preds = "<br>".join(f"{MODEL_TITLES[m]}: <b>{self.review.labels[cell.pred[m]]}</b> ({cell.conf[m]:.0%})"
                            for m in self.review.models)
        verified = self.review.verified(path)
        state = f"Verified as <b>{verified}</b>" if verified else "Not verified yet"
        flags = f"<br><span style='color:#c87800'>{', '.join(cell.flags)}</span>" if cell.flags else ""
        priority = (f"<br>Check priority {cell.priority:.2f} (0 = all models sure and agreeing; higher = "
                    "more worth checking)")
        self.detail.setText(f"<b>{html.escape(Path(path).name)}</b><br>{state}<br>{preds}{flags}{priority}")

    def _set_enabled(self) -> None:
        has = self.review is not None
        for b in (self.export_csv_button, self.export_report_button, self.save_corrections_button,
                  self.next_button):
            b.setEnabled(has)
        self.fine_tune_button.setEnabled(has and self.worker is None)
        self.undo_button.setEnabled(has and self.review.can_undo())
        self.redo_button.setEnabled(has and self.review.can_redo())

    # ------------------------------------------------------------------ exports
    def pack_card(self) -> dict | None:
        """The model card of the review's pack, when that pack is the one loaded."""
        engine = self.classify.engine
        return engine.pack.card if engine is not None and engine.pack.name == self.review.pack else None

    def _ask_path(self, title: str, default: str, filters: str) -> str:
        path, _ = QFileDialog.getSaveFileName(self, title, str(Path(self.review.folder).parent / default), filters)
        return path

    def export_csv(self, path: str) -> None:
        from .export_files import ExportError, export_target

        try:
            path = export_target(path, (".csv",), "The differential count")
            write_differential_csv(path, differential(self.review, set(self.review.missing_pictures())))
        except ExportError as exc:
            self.progress_label.setText(str(exc))
            return
        except OSError as exc:
            self.progress_label.setText(write_failure("The differential count", path, exc))
            return
        self.status.emit(f"Saved {path}")

    def ask_export_csv(self) -> None:
        path = self._ask_path("Export differential count", f"{Path(self.review.folder).name}-differential.csv",
                              "CSV (*.csv)")
        if path:
            self.export_csv(path)

    def export_report(self, path: str) -> None:
        from .export_files import ExportError, export_target
        from .review_report import export_report

        try:
            path = export_target(path, REPORT_SUFFIXES, "The report")
            written = export_report(path, self.review, self.pack_card(), self.model_kind)
        except ExportError as exc:
            self.progress_label.setText(str(exc))
            return
        except OSError as exc:
            self.progress_label.setText(write_failure("The report", path, exc))
            return
        self.status.emit(f"Saved {written}")

    def ask_export_report(self) -> None:
        path = self._ask_path("Export report", f"{Path(self.review.folder).name}-report.png",
                              "PNG image (*.png);;JPEG image (*.jpg);;PDF (*.pdf)")
        if path:
            self.export_report(path)

    def save_corrections(self, path: str | None = None) -> Path | None:
        """Write the verified cells as a manifest; None (with a message) when nothing is verified.
        Says how many verified pictures it left out because they are no longer where they were."""
        from ..core.corrections import (
            default_manifest_path,
            left_out_of_corrections,
            write_manifest,
        )
        from ..core.datasets import DatasetError

        left_out: list[str] = []
        try:
            out = write_manifest(self.review, path, left_out)
        except DatasetError as exc:
            self.progress_label.setText(str(exc))
            return None
        except OSError as exc:
            self.progress_label.setText(write_failure("The corrections", path or default_manifest_path(self.review),
                                                      exc))
            return None
        self._corrections_note = left_out_of_corrections(left_out)
        self.corrections_saved.emit(str(out))
        self.status.emit(f"Saved {counted(self.review.n_verified - len(left_out), 'verified cell')} to {out}"
                         + (f". {self._corrections_note}" if self._corrections_note else ""))
        return out

    def ask_save_corrections(self) -> None:
        from ..core.corrections import default_manifest_path

        path, _ = QFileDialog.getSaveFileName(self, "Save corrections", str(default_manifest_path(self.review)),
                                              "CSV (*.csv)")
        if path:
            self.save_corrections(path)

    # ------------------------------------------------------------------ fine-tuning
    def fine_tune(self, name: str) -> None:
        """Save the corrections and fine-tune the loaded pack on them, in the background."""
        from ..core.finetune import FineTuneRecipe
        from ..core.packs import user_packs_dir

        engine = self.classify.engine
        if engine is None:  # a pack is loading (or failed to): choosing one would not help
            self.progress_label.setText("The models are not loaded yet: fine-tune once the status bar says "
                                        f"Ready, with the pack {self.review.pack} selected.")
            return
        if engine.pack.name != self.review.pack:
            self.progress_label.setText(f"Select the pack {self.review.pack} first: these cells were "
                                        "pre-classified by it.")
            return
        manifest = self.save_corrections()
        if manifest is None:
            return
        recipe = FineTuneRecipe(pack_dir=str(engine.pack.path), manifest=str(manifest), name=name)
        self._stop = threading.Event()
        self.cancel_button.setEnabled(True)
        self.progress_label.setText("Fine-tuning: reading the verified images…")
        self.worker = start_worker(run_fine_tune, recipe, str(user_packs_dir() / name), self._relay, self._stop,
                                   returned=self._fine_tuned, errored=self._fine_tune_failed,
                                   finished=self._fine_tune_finished)
        self._set_enabled()

    def ask_fine_tune(self) -> None:
        default = f"{self.review.pack}-corrected"
        name, ok = QInputDialog.getText(self, "Fine-tune on corrections", "Name of the new pack:", text=default)
        if not ok:
            return
        if problem := new_pack_problem(self, name.strip()):
            self.progress_label.setText(problem)
            return
        self.fine_tune(name.strip())

    def busy(self) -> bool:
        return self.worker is not None

    def cancel(self) -> None:
        if self.worker is not None:
            self._stop.set()

    def _on_progress(self, stage: str, done: int, total: int, metrics: dict) -> None:
        what = {"features": "reading the cells", "heads": f"training {MODEL_TITLES.get(metrics.get('model'), '')}"}
        self.progress_label.setText(f"Fine-tuning: {what.get(stage, stage)} {done}/{total}")

    def _fine_tuned(self, path: str) -> None:
        from ..core.build import left_out_note
        from ..core.packs import read_card

        notes = [note for note in (self._corrections_note, left_out_note(read_card(Path(path)))) if note]
        self.progress_label.setText(" ".join([f"Saved the pack {Path(path).name}; it is now in the pack selector.",
                                              *notes]))
        self.pack_ready.emit(path, True)

    def _fine_tune_failed(self, exc: Exception) -> None:
        from ..core.packs import PackError
        from ..core.train import TrainingCancelled

        if isinstance(exc, TrainingCancelled):
            self.progress_label.setText("Fine-tuning cancelled; no pack was written.")
        elif isinstance(exc, (ValueError, PackError)):  # bad corrections, a diverged run, a full disk
            self.progress_label.setText(str(exc))
        else:
            self.error.emit("Fine-tuning stopped because of an unexpected problem.", repr(exc))

    def _fine_tune_finished(self) -> None:
        self.worker = None
        self.cancel_button.setEnabled(False)
        self._set_enabled()
