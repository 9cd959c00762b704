"""Walking a user's folder the same way everywhere: classify, evaluate, training, the window.

A folder copied from a Mac, a Windows share or a photo manager carries files no one put
there on purpose: ``__MACOSX`` and ``.AppleDouble`` copies of every picture, ``.thumbnails``,
``Thumbs.db``, ``desktop.ini``. Scored as cells they would change a report without a word;
counted as "not pictures" they would fill messages with noise. So they are never visited.
Links to folders are followed (a class folder may gather pictures kept elsewhere), each
folder once, so a link back up the tree cannot loop.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

#: Folders that operating systems and file-sharing tools create beside a user's files.
SYSTEM_FOLDERS = frozenset({"__macosx", "$recycle.bin", "system volume information", "@eadir"})
#: Files that operating systems create in picture folders (thumbnail caches, folder settings).
SYSTEM_FILES = frozenset({"thumbs.db", "ehthumbs.db", "desktop.ini", "icon\r"})


def is_system_name(name: str) -> bool:
    """True for hidden names (``.DS_Store``, ``._cell.jpg``, ``.thumbnails``) and the tools' own
    files and folders: never a user's picture or class."""
    return name.startswith(".") or name.lower() in SYSTEM_FOLDERS or name.lower() in SYSTEM_FILES


def picture_identity(path: str | os.PathLike) -> str | tuple[int, int]:
    """The file a path leads to, however it is reached: its device and inode numbers, so that
    one picture behind symbolic links and hard links alike counts once, or its real path
    where the file system gives no inode number (or the file cannot be looked up; a name no
    file can have is then its own identity, so it still gets its error row)."""
    try:
        st = os.stat(path)
        if st.st_ino:
            return st.st_dev, st.st_ino
    except (OSError, ValueError):
        pass
    try:
        return os.path.realpath(path)
    except ValueError:
        return str(path)


def walk_files(root: str | os.PathLike, above: str | os.PathLike | None = None,
               fenced: Iterable[str | os.PathLike] = ()) -> Iterator[tuple[str, bool]]:
    """Every file under ``root`` as ``(path, True)``, each folder's files sorted before its
    subfolders (sorted too), and ``(folder, False)`` for a folder that cannot be opened, in
    its place, so that the caller can say so instead of quietly finding nothing there.

    A link back to the folder ``above`` (the dataset) or to a folder holding it, or into the
    ``fenced`` folders or anywhere inside them (the other classes), is not followed: a class
    must not count another class's pictures, or the pictures beside the dataset, as its own.
    """
    seen: set[str] = {os.path.realpath(above)} if above is not None else set()
    dataset = os.path.join(os.path.realpath(above), "") if above is not None else None
    fences = tuple(os.path.join(os.path.realpath(f), "") for f in fenced)
    unreadable: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True,
                                                onerror=lambda exc: unreadable.append(exc.filename)):
        yield from ((folder, False) for folder in unreadable)
        unreadable.clear()
        real = os.path.realpath(dirpath)
        if (real in seen or os.path.join(real, "").startswith(fences)
                or (dataset is not None and dataset.startswith(os.path.join(real, "")))):
            dirnames[:] = []
            continue
        seen.add(real)
        dirnames[:] = sorted(d for d in dirnames if not is_system_name(d))
        for name in sorted(filenames):
            if not is_system_name(name):
                yield str(Path(dirpath) / name), True
    yield from ((folder, False) for folder in unreadable)
