"""The installed Qt binding keeps Python's reference counts right.

PySide6 6.12.0 under Python 3.11 dropped a reference to None on every call returning nothing;
after some thousands of calls the app (and the test run) died with "Fatal Python error:
none_dealloc". pyproject.toml keeps that version out; this test catches any other that does it.
"""

from __future__ import annotations

import sys

from PySide6.QtWidgets import QApplication, QCheckBox, QWidget


def test_calls_into_qt_keep_the_reference_counts_of_none_and_booleans(qtbot):
    widget, box = QWidget(), QCheckBox()
    qtbot.addWidget(widget)
    qtbot.addWidget(box)
    app = QApplication.instance()
    before = {v: sys.getrefcount(v) for v in (None, False, True)}
    for _ in range(500):
        widget.update()
        app.processEvents()
        box.isChecked()
    assert all(sys.getrefcount(v) - before[v] > -50 for v in before)
