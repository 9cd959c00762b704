"""Small pieces of the window's wording: counted nouns and the colour keys under plots."""

from __future__ import annotations

import html
from collections.abc import Iterable

from ..core.wording import counted

__all__ = ["BAR_MARK", "DOT_MARK", "LINE_MARK", "colour_key", "counted"]

#: The mark of a bar's colour in a key (a filled square)
BAR_MARK = "&#9632;"
#: The mark of a dot's colour in a key
DOT_MARK = "&#9679;"
#: The mark of a curve's colour in a key (a short thick line)
LINE_MARK = "&#9644;"


def colour_key(entries: Iterable[tuple[str, tuple[int, int, int]]], mark: str) -> str:
    """A one-line key, as rich text, of what each colour of a plot is.

    Shown beside a plot rather than as pyqtgraph's legend inside it, which sits over the data
    wherever it is put: some image's top class or some epoch's curve always ends up under it.
    """
    return "&nbsp;&nbsp;".join(f'<span style="color: rgb{tuple(colour)}">{mark}</span>&nbsp;{html.escape(name)}'
                               for name, colour in entries)
