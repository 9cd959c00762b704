"""The widgets of the review: a gallery of cell thumbnails driven by the keyboard, and the class groups.

The gallery shows one class group at a time, cells to check first. Keys go
straight to actions so a technologist can verify a hundred cells in a couple of
minutes without the mouse: number keys reclassify, Space accepts, Enter accepts
the whole group, Page Up/Down change group, Backspace takes a decision back,
N jumps to the next cell to check, Ctrl+Z / Ctrl+Shift+Z undo and redo. Cells
can also be dragged onto a group.
"""

from __future__ import annotations

from PySide6.QtCore import QAbstractListModel, QMimeData, QModelIndex, QRect, QSize, Qt, Signal
from PySide6.QtGui import QColor, QKeyEvent, QKeySequence, QPainter, QPen
from PySide6.QtWidgets import (
    QAbstractItemView,
    QListView,
    QListWidget,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
)

from ..core.review import Cell, Review
from .thumbnails import ThumbnailCache

CELL_MIME = "application/x-hqnn-cells"
THUMB = 128
STATE_ROLE = Qt.UserRole + 10
PATH_ROLE = Qt.UserRole + 11

#: border colour per state of a cell: not checked and flagged, accepted, reclassified
STATE_COLORS = {"flagged": QColor(230, 140, 0), "accepted": QColor(40, 160, 70), "changed": QColor(50, 110, 220)}


class GalleryModel(QAbstractListModel):
    """The cells of one class group of a review; thumbnails decoded in the background when first shown."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.review: Review | None = None
        self.kind = "hqnn"
        self.label = ""
        self.cells: list[Cell] = []
        self._rows: dict[str, int] = {}
        self.thumbnails = ThumbnailCache(THUMB, parent=self)
        self.thumbnails.loaded.connect(self._thumbnail_loaded)

    def show_group(self, review: Review | None, kind: str, label: str) -> None:
        self.beginResetModel()
        self.review, self.kind, self.label = review, kind, label
        self.cells = review.groups(kind)[label] if review is not None and label else []
        self._rows = {c.path: i for i, c in enumerate(self.cells)}
        self.endResetModel()

    def update(self, paths: set[str]) -> None:
        """Follow a decision on ``paths``: redraw those cells, or drop those that left the group."""
        new_paths = [c.path for c in self.review.groups(self.kind)[self.label]]
        old_paths = [c.path for c in self.cells]
        members = set(new_paths)
        kept = [p for p in old_paths if p in members]
        if kept == new_paths:
            self._rows = {p: i for i, p in enumerate(new_paths)}
            for row in reversed(range(len(old_paths))):
                if old_paths[row] not in kept:
                    self.beginRemoveRows(QModelIndex(), row, row)
                    del self.cells[row]
                    self.endRemoveRows()
                elif old_paths[row] in paths:
                    self.dataChanged.emit(self.index(row), self.index(row))
        else:
            self.show_group(self.review, self.kind, self.label)

    def state(self, cell: Cell) -> str:
        verified = self.review.verified(cell.path)
        if verified is None:
            return "flagged" if cell.flags else "todo"
        return "accepted" if verified == self.review.predicted_label(cell.path, self.kind) else "changed"

    def rowCount(self, parent: QModelIndex | None = None) -> int:
        return 0 if parent is not None and parent.isValid() else len(self.cells)

    def data(self, index: QModelIndex, role=Qt.DisplayRole):
        if not index.isValid():
            return None
        cell = self.cells[index.row()]
        if role == Qt.DecorationRole:
            return self.thumbnails.get(cell.path, cell.window)
        if role == Qt.DisplayRole:
            state = self.state(cell)
            if state == "changed":
                return f"was {self.review.predicted_label(cell.path, self.kind)}"
            if state == "flagged":
                return f"check: {cell.flags[0]}"
            return "✓ accepted" if state == "accepted" else ""
        if role == Qt.ToolTipRole:
            preds = ", ".join(f"{k}: {self.review.labels[v]} {cell.conf[k]:.0%}" for k, v in cell.pred.items())
            return f"{cell.path}\n{preds}" + (f"\n{', '.join(cell.flags)}" if cell.flags else "")
        if role == STATE_ROLE:
            return self.state(cell)
        if role == PATH_ROLE:
            return cell.path
        return None

    def flags(self, index: QModelIndex):
        base = super().flags(index)
        return base | Qt.ItemIsDragEnabled if index.isValid() else base

    def mimeTypes(self) -> list[str]:
        return [CELL_MIME]

    def mimeData(self, indexes) -> QMimeData:
        mime = QMimeData()
        mime.setData(CELL_MIME, "\n".join(self.cells[i.row()].path for i in indexes).encode("utf-8"))
        return mime

    def _thumbnail_loaded(self, path: str) -> None:
        row = self._rows.get(path)
        if row is not None:
            self.dataChanged.emit(self.index(row), self.index(row), [Qt.DecorationRole])


#: Pixels kept clear on each side of a caption, inside the cell's frame.
CAPTION_MARGIN = 10


class CellDelegate(QStyledItemDelegate):
    """Draws a coloured frame that says whether a cell is to check, accepted or reclassified."""

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex) -> QSize:
        """Every cell takes its full place at once, before its thumbnail is decoded."""
        return QSize(THUMB + 20, THUMB + 26)

    def initStyleOption(self, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        """A caption longer than the cell ends in "…" inside its frame (the whole of it is in the tooltip)."""
        super().initStyleOption(option, index)
        option.text = option.fontMetrics.elidedText(option.text, Qt.ElideRight, THUMB + 20 - CAPTION_MARGIN)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        # a selected cell is tinted whole; the style's own selection only filled the caption,
        # an empty blue bar under cells that have none
        selected = bool(option.state & QStyle.State_Selected)
        plain = QStyleOptionViewItem(option)
        plain.state &= ~QStyle.State_Selected
        super().paint(painter, plain, index)
        if selected:
            tint = QColor(option.palette.highlight().color())
            tint.setAlpha(90)
            painter.fillRect(option.rect, tint)
        color = STATE_COLORS.get(index.data(STATE_ROLE))
        if color is not None:
            painter.save()
            painter.setPen(QPen(color, 3, Qt.DashLine if index.data(STATE_ROLE) == "flagged" else Qt.SolidLine))
            painter.drawRect(QRect(option.rect).adjusted(2, 2, -2, -2))
            painter.restore()
        if option.state & QStyle.State_HasFocus:
            painter.save()
            painter.setPen(QPen(option.palette.highlight().color(), 2))
            painter.drawRect(QRect(option.rect).adjusted(0, 0, -1, -1))
            painter.restore()


class GalleryView(QListView):
    """Icon grid of cells; turns the review keys into signals."""

    classify_as = Signal(int)  # class number (0-based) typed on the keyboard
    accept_cells = Signal()
    accept_group = Signal()
    unverify = Signal()
    change_group = Signal(int)  # -1 previous, +1 next
    undo = Signal()
    redo = Signal()
    next_suggestion = Signal()

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setViewMode(QListView.IconMode)
        self.setIconSize(QSize(THUMB, THUMB))
        self.setGridSize(QSize(THUMB + 24, THUMB + 30))
        self.setResizeMode(QListView.Adjust)
        self.setMovement(QListView.Static)
        self.setUniformItemSizes(True)
        self.setWordWrap(False)
        self.setSelectionMode(QAbstractItemView.ExtendedSelection)
        self.setDragEnabled(True)
        self.setDragDropMode(QAbstractItemView.DragOnly)
        self.setItemDelegate(CellDelegate(self))

    def keyPressEvent(self, event: QKeyEvent) -> None:
        key, mods = event.key(), event.modifiers()
        if event.matches(QKeySequence.StandardKey.Undo):
            self.undo.emit()
        elif event.matches(QKeySequence.StandardKey.Redo) or (key == Qt.Key_Y and mods & Qt.ControlModifier):
            self.redo.emit()
        elif Qt.Key_1 <= key <= Qt.Key_9 and not mods & (Qt.ControlModifier | Qt.AltModifier):
            self.classify_as.emit(key - Qt.Key_1)
        elif key == Qt.Key_Space:
            self.accept_cells.emit()
        elif key in (Qt.Key_Return, Qt.Key_Enter):
            self.accept_group.emit()
        elif key in (Qt.Key_Backspace, Qt.Key_Delete):
            self.unverify.emit()
        elif key == Qt.Key_N and not mods & (Qt.ControlModifier | Qt.AltModifier):
            self.next_suggestion.emit()
        elif key in (Qt.Key_PageDown, Qt.Key_PageUp):
            self.change_group.emit(1 if key == Qt.Key_PageDown else -1)
        else:
            super().keyPressEvent(event)


class GroupList(QListWidget):
    """The class groups; cells dropped on a group are reclassified to it."""

    cells_dropped = Signal(list, int)  # paths, group row

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setAcceptDrops(True)
        self.setDropIndicatorShown(True)

    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasFormat(CELL_MIME):
            event.acceptProposedAction()

    def dragMoveEvent(self, event) -> None:
        if event.mimeData().hasFormat(CELL_MIME) and self.itemAt(event.position().toPoint()) is not None:
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event) -> None:
        item = self.itemAt(event.position().toPoint())
        if item is None or not event.mimeData().hasFormat(CELL_MIME):
            event.ignore()
            return
        paths = bytes(event.mimeData().data(CELL_MIME)).decode("utf-8").split("\n")
        event.acceptProposedAction()
        self.cells_dropped.emit(paths, self.row(item))
