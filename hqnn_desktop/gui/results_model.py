"""Qt model of classification results: one row per image, columns per model, lazy thumbnails."""

from __future__ import annotations

from collections import defaultdict

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QSortFilterProxyModel, Qt
from PySide6.QtGui import QBrush, QColor

from ..core.inputs import ImageResult
from ..core.kinds import MODEL_TITLES
from ..core.results import image_flags, predicted
from .thumbnails import ThumbnailCache

SORT_ROLE = Qt.UserRole + 1
FLAGS_ROLE = Qt.UserRole + 2
THUMB = 48


#: The invisible root of a flat table (Qt's default parent).
_TOP_LEVEL = QModelIndex()


class ResultsModel(QAbstractTableModel):
    """Rows are :class:`ImageResult`; thumbnails are decoded in the background when a row is shown."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.results: list[ImageResult] = []
        self.labels: list[str] = []
        self.models: tuple[str, ...] = ()
        self.thumbnails = ThumbnailCache(THUMB, parent=self)
        self.thumbnails.loaded.connect(self._thumbnail_loaded)
        self._rows_of: defaultdict[str, list[int]] = defaultdict(list)

    def reset(self, labels: list[str], models: tuple[str, ...]) -> None:
        self.beginResetModel()
        self.results, self.labels, self.models = [], list(labels), tuple(models)
        self.thumbnails.clear()
        self._rows_of.clear()
        self.endResetModel()

    def append(self, results: list[ImageResult]) -> None:
        if not results:
            return
        start = len(self.results)
        self.beginInsertRows(QModelIndex(), start, start + len(results) - 1)
        self.results.extend(results)
        for row, r in enumerate(results, start):
            self._rows_of[r.path].append(row)
        self.endInsertRows()

    def columns(self) -> list[str]:
        return ["Image", "File"] + [MODEL_TITLES[m] for m in self.models] + ["Flags"]

    def rowCount(self, parent=_TOP_LEVEL) -> int:
        return 0 if parent.isValid() else len(self.results)

    def columnCount(self, parent=_TOP_LEVEL) -> int:
        return 0 if parent.isValid() else len(self.columns())

    def headerData(self, section, orientation, role=Qt.DisplayRole):
        if orientation == Qt.Horizontal and role == Qt.DisplayRole:
            return self.columns()[section]
        return None

    def flags_of(self, r: ImageResult) -> list[str]:
        if r.error:
            return ["unusable"]
        return image_flags(r, self.labels)

    def data(self, index: QModelIndex, role=Qt.DisplayRole):
        if not index.isValid():
            return None
        r = self.results[index.row()]
        col = index.column()
        n_models = len(self.models)
        if col == 0:
            if role == Qt.DecorationRole:
                return self.thumbnails.get(r.path)
            if role == SORT_ROLE:
                return index.row()
            return None
        if col == 1:  # coloured and explained like the Flags column, which a narrow window scrolls out of view
            name = r.path.rsplit("/", 1)[-1]
            if role in (Qt.DisplayRole, SORT_ROLE):
                return name
            if role == Qt.ToolTipRole:
                return r.path + (f"\n{r.error}" if r.error else "".join(f"\n{f}" for f in self.flags_of(r)))
            if role == Qt.ForegroundRole:
                return self._flag_brush(r)
            return None
        if col < 2 + n_models:
            kind = self.models[col - 2]
            pred = predicted(r, kind, self.labels)
            if role == Qt.DisplayRole:
                return "—" if pred is None else f"{pred[0]}  {pred[1]:.0%}"
            if role == SORT_ROLE:
                return (pred[0], pred[1]) if pred else ("~", 0.0)
            if role == Qt.ToolTipRole and r.error:
                return r.error
            return None
        flags = self.flags_of(r)
        if role == Qt.DisplayRole:
            return r.error if r.error else ", ".join(flags)
        if role in (SORT_ROLE, FLAGS_ROLE):
            return ", ".join(flags) if role == FLAGS_ROLE else len(flags)
        if role == Qt.ForegroundRole:
            return self._flag_brush(r)
        return None

    def _flag_brush(self, r: ImageResult) -> QBrush | None:
        """Red for an unusable file, orange for a flagged result, default otherwise."""
        if r.error:
            return QBrush(QColor(200, 60, 40))
        return QBrush(QColor(200, 120, 0)) if self.flags_of(r) else None

    def _thumbnail_loaded(self, path: str) -> None:
        for row in self._rows_of.get(path, ()):
            index = self.index(row, 0)
            self.dataChanged.emit(index, index, [Qt.DecorationRole])


class ResultsFilter(QSortFilterProxyModel):
    """Sort by the model's sort role; filter by predicted class (HQNN or any model) and by flag."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setSortRole(SORT_ROLE)
        self.class_name: str | None = None
        self.flag: str | None = None

    def set_filter(self, class_name: str | None, flag: str | None) -> None:
        self.beginFilterChange()
        self.class_name, self.flag = class_name, flag
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def filterAcceptsRow(self, row: int, parent) -> bool:
        model: ResultsModel = self.sourceModel()
        r = model.results[row]
        if self.class_name and not any(
                (p := predicted(r, k, model.labels)) and p[0] == self.class_name for k in model.models):
            return False
        return not self.flag or any(f.startswith(self.flag) for f in model.flags_of(r))  # with its reason too
