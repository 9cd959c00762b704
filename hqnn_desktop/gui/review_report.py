"""Paint the one-page review report (A4 at 150 dpi) as PDF or an image (PNG, JPEG...) with QPainter.

Counts table, a bar chart of pre-classified beside verified percentages, a few
thumbnails per class, the pack's card summary, and the research-use notice.
Pictures no longer where they were are left out, and a line says how many
(``core.review_report``). The same painting code serves both formats, so they
always match.
"""

from __future__ import annotations

import datetime as _dt
import os
from pathlib import Path

from PySide6.QtCore import QMarginsF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QImage, QImageWriter, QPageSize, QPainter, QPdfWriter, QPen

from ..core.differential import Differential, differential
from ..core.inputs import Window
from ..core.kinds import MODEL_TITLES
from ..core.review import Review
from ..core.review_report import NOTICE, card_summary_lines, report_thumbnails, summary_lines
from ..core.storage import atomic_path
from .classify_tab import MODEL_COLORS
from .thumbnails import read_thumbnail

WIDTH, HEIGHT, DPI = 1240, 1754, 150
MARGIN = 60
VERIFIED_COLOR = QColor(200, 60, 40)
NOTICE_COLOR = QColor(170, 30, 30)


def _font(size: int, bold: bool = False) -> QFont:
    font = QFont()
    font.setPixelSize(size)
    font.setBold(bold)
    return font


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f} %"


def _share(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f} %"


def _kappa(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def _table(p: QPainter, diff: Differential, top: float) -> float:
    """Counts per class, then agreement and kappa per model; returns the y below it."""
    cols = ["Class", "Verified", "%"] + [c for m in diff.models for c in (MODEL_TITLES[m], "%")]
    widths = [180, 100, 80] + [170, 83] * len(diff.models)
    row_h = 26
    p.setFont(_font(16, True))
    x = MARGIN
    for text, w in zip(cols, widths):
        p.drawText(QRectF(x, top, w, row_h), Qt.AlignLeft | Qt.AlignVCenter, text)
        x += w
    p.setPen(QPen(QColor(120, 120, 120), 1))
    p.drawLine(MARGIN, int(top + row_h), WIDTH - MARGIN, int(top + row_h))
    p.setPen(Qt.black)
    p.setFont(_font(17))
    y = top + row_h + 4
    lines = [[r.label, str(r.verified), _pct(diff.verified_pct(r))]
             + [v for m in diff.models for v in (str(r.pre[m]), _pct(diff.pre_pct(r, m)))] for r in diff.rows]
    lines.append(["Total", str(diff.n_verified), ""] + [v for m in diff.models for v in (str(diff.n_cells), "")])
    lines.append(["Agreement", "", ""] + [v for m in diff.models for v in (_share(diff.agreement[m]), "")])
    lines.append(["Cohen's kappa", "", ""] + [v for m in diff.models for v in (_kappa(diff.kappa[m]), "")])
    for i, line in enumerate(lines):
        if i >= len(diff.rows):
            p.setFont(_font(17, True))
        x = MARGIN
        for text, w in zip(line, widths):
            p.drawText(QRectF(x, y, w, row_h), Qt.AlignLeft | Qt.AlignVCenter, text)
            x += w
        y += row_h
    return y


def _bars(p: QPainter, diff: Differential, rect: QRectF) -> None:
    """Grouped bars per class: verified percentage and each model's pre-classified percentage."""
    series = [("Verified", VERIFIED_COLOR, [diff.verified_pct(r) or 0.0 for r in diff.rows])]
    series += [(MODEL_TITLES[m], QColor(*MODEL_COLORS[m]), [diff.pre_pct(r, m) or 0.0 for r in diff.rows])
               for m in diff.models]
    top = max([v for _, _, vals in series for v in vals] + [1.0])
    chart = rect.adjusted(50, 30, 0, -40)
    p.setPen(QPen(QColor(120, 120, 120), 1))
    p.drawLine(chart.bottomLeft(), chart.bottomRight())
    p.setFont(_font(14))
    for frac in (0.0, 0.5, 1.0):
        y = chart.bottom() - frac * chart.height()
        p.drawText(QRectF(rect.left(), y - 10, 45, 20), Qt.AlignRight | Qt.AlignVCenter, f"{frac * top:.0f}%")
    slot = chart.width() / max(1, len(diff.rows))
    bar_w = slot * 0.8 / len(series)
    for k, row in enumerate(diff.rows):
        for s, (_, color, vals) in enumerate(series):
            h = vals[k] / top * chart.height()
            x = chart.left() + k * slot + slot * 0.1 + s * bar_w
            p.fillRect(QRectF(x, chart.bottom() - h, bar_w - 1, h), color)
        p.setPen(Qt.black)
        p.drawText(QRectF(chart.left() + k * slot, chart.bottom() + 4, slot, 30),
                   Qt.AlignHCenter | Qt.AlignTop, row.label)
    x = chart.left()
    for name, color, _ in series:
        p.fillRect(QRectF(x, rect.top() + 4, 16, 16), color)
        p.drawText(QRectF(x + 22, rect.top(), 220, 24), Qt.AlignLeft | Qt.AlignVCenter, name)
        x += 50 + p.fontMetrics().horizontalAdvance(name)


def _thumbnails(p: QPainter, thumbs: dict[str, list[str]], top: float, windows: dict[str, Window],
                size: int = 76) -> float:
    """Two columns of classes, each with its few thumbnails (the cell window of packs that have
    one), side by side with no gap where one cannot be read; returns the y below them."""
    col_w = (WIDTH - 2 * MARGIN) / 2
    block_h = size + 34
    for i, (label, paths) in enumerate(thumbs.items()):
        x = MARGIN + (i % 2) * col_w
        y = top + (i // 2) * block_h
        p.setFont(_font(16, True))
        p.drawText(QRectF(x, y, col_w, 24), Qt.AlignLeft | Qt.AlignVCenter, label)
        pixmaps = [read_thumbnail(path, size, windows.get(path)) for path in paths]
        for j, pix in enumerate(pix for pix in pixmaps if not pix.isNull()):
            p.drawPixmap(int(x + j * (size + 8)), int(y + 26), pix)
    return top + ((len(thumbs) + 1) // 2) * block_h


def paint_report(p: QPainter, review: Review, card: dict | None, model: str) -> None:
    """Paint the whole page on a WIDTH x HEIGHT surface."""
    missing = set(review.missing_pictures())
    diff = differential(review, missing)
    p.fillRect(QRectF(0, 0, WIDTH, HEIGHT), Qt.white)
    p.setPen(Qt.black)
    p.setFont(_font(30, True))
    p.drawText(QRectF(MARGIN, MARGIN, WIDTH - 2 * MARGIN, 40), Qt.AlignLeft | Qt.AlignVCenter,
               f"Differential count — {Path(review.folder).name}")
    p.setFont(_font(16))
    today = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    p.drawText(QRectF(MARGIN, MARGIN + 44, WIDTH - 2 * MARGIN, 24), Qt.AlignLeft | Qt.AlignVCenter,
               f"{review.folder} · {today}")
    y = MARGIN + 68
    for line in summary_lines(diff, model):
        p.drawText(QRectF(MARGIN, y, WIDTH - 2 * MARGIN, 24), Qt.AlignLeft | Qt.AlignVCenter, line)
        y += 24
    p.setPen(QPen(NOTICE_COLOR, 2))
    p.setFont(_font(20, True))
    notice = QRectF(MARGIN, y + 8, WIDTH - 2 * MARGIN, 36)
    p.drawRect(notice)
    p.drawText(notice, Qt.AlignCenter, NOTICE)
    p.setPen(Qt.black)
    y = _table(p, diff, y + 64)
    p.setPen(QColor(90, 90, 90))
    p.setFont(_font(14))
    p.drawText(QRectF(MARGIN, y + 2, WIDTH - 2 * MARGIN, 20), Qt.AlignLeft | Qt.AlignVCenter,
               f"Verified percentages are of the {diff.n_verified} verified cells, pre-classified ones of all "
               f"{diff.n_cells} cells; agreement and kappa compare each model with the verified cells only.")
    p.setPen(Qt.black)
    y += 20
    _bars(p, diff, QRectF(MARGIN, y + 16, WIDTH - 2 * MARGIN, 300))
    windows = {cell.path: cell.window for cell in review.cells if cell.window is not None}
    y = _thumbnails(p, report_thumbnails(review, model, missing=missing), y + 340, windows)
    p.setFont(_font(15))
    for line in card_summary_lines(card):
        text = p.fontMetrics().elidedText(line, Qt.ElideRight, WIDTH - 2 * MARGIN)
        p.drawText(QRectF(MARGIN, y + 10, WIDTH - 2 * MARGIN, 22), Qt.AlignLeft | Qt.AlignVCenter, text)
        y += 22
    p.setPen(NOTICE_COLOR)
    p.setFont(_font(15, True))
    p.drawText(QRectF(MARGIN, HEIGHT - MARGIN - 24, WIDTH - 2 * MARGIN, 24), Qt.AlignCenter,
               f"{NOTICE} Made with hqnn-desktop; the verified counts are the reviewer's.")


def report_target(path: str | os.PathLike) -> tuple[Path, str]:
    """The file and format a report is written as: PDF, or the image format its suffix names
    (PNG, JPEG, ...); a name without a suffix Qt can write gets '.png' added, so that the
    file's name always tells what is inside."""
    path = Path(path)
    suffix = path.suffix.lower().lstrip(".")
    if suffix == "pdf":
        return path, "PDF"
    if suffix and suffix in {bytes(f).decode().lower() for f in QImageWriter.supportedImageFormats()}:
        return path, suffix.upper()
    return path.with_name(path.name + ".png"), "PNG"


def export_report(path: str | os.PathLike, review: Review, card: dict | None, model: str) -> Path:
    """Write the report atomically (format by suffix, see :func:`report_target`); returns the file written."""
    path, fmt = report_target(path)
    with atomic_path(path) as tmp:
        if fmt == "PDF":
            writer = QPdfWriter(str(tmp))
            writer.setResolution(DPI)
            writer.setPageSize(QPageSize(QPageSize.A4))
            writer.setPageMargins(QMarginsF(0, 0, 0, 0))
            painter = QPainter(writer)
            painter.setWindow(0, 0, WIDTH, HEIGHT)
            paint_report(painter, review, card, model)
            painter.end()
        else:
            image = QImage(WIDTH, HEIGHT, QImage.Format_RGB32)
            painter = QPainter(image)
            painter.setRenderHint(QPainter.Antialiasing)
            paint_report(painter, review, card, model)
            painter.end()
            if not image.save(str(tmp), fmt):
                raise OSError(f"The report could not be written to {path}.")
    return path
