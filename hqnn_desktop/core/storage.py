"""Atomic file writes: write to a temporary name in the same folder, fsync, rename.

A crash or a cancel at any moment leaves either the old file or the new one,
never a half-written mix. Used for packs, checkpoints, settings, reports.
:func:`exclusive` serialises read-merge-write updates of one file between
processes (two copies of the app on one review).
"""

from __future__ import annotations

import glob
import json
import logging
import os
import shutil
import stat
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

log = logging.getLogger(__name__)

#: seconds to wait for another process's update of the same file (each takes milliseconds)
LOCK_WAIT_S = 2.0


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


#: Permissions of files we create (mkstemp makes them private; we honour the user's umask instead).
FILE_MODE = 0o666 & ~_current_umask()
DIR_MODE = 0o777 & ~_current_umask()


def remove_tree(folder: str | os.PathLike, ignore_errors: bool = False) -> None:
    """Delete a folder and everything in it, read-only parts included.

    An old copy of a pack a user made read-only (to protect it) must still go once
    its replacement is in place; plain ``shutil.rmtree`` would stop at the first
    write-protected folder and leave a half-deleted copy behind.
    """

    def writable_then_retry(func, path, _exc) -> None:
        try:
            os.chmod(os.path.dirname(path), stat.S_IRWXU)
            if os.path.isdir(path) and not os.path.islink(path):
                os.chmod(path, stat.S_IRWXU)
            func(path)
        except OSError:
            if not ignore_errors:
                raise

    if sys.version_info >= (3, 12):
        shutil.rmtree(folder, onexc=writable_then_retry)
    else:
        shutil.rmtree(folder, onerror=writable_then_retry)


@contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; on success it replaces ``target``."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp_path, FILE_MODE)
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def remove_leftover_temporaries(target: str | os.PathLike) -> int:
    """Delete temporary files a killed :func:`atomic_path` left next to ``target``; how many.

    Only names of the form ``.<target name>.<random>.tmp`` are touched; call it
    where no other process writes ``target`` at the same moment (at start-up).
    """
    target = Path(target)
    removed = 0
    for leftover in target.parent.glob(f".{glob.escape(target.name)}.*.tmp"):
        try:
            leftover.unlink()
            removed += 1
        except OSError:
            continue
    return removed


def atomic_write_bytes(target: str | os.PathLike, data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(target: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(target, text.encode("utf-8"))


def json_text(obj: Any) -> str:
    """How every JSON file of the app is written: indented, UTF-8 as it is, one final newline."""
    return json.dumps(obj, indent=2, ensure_ascii=False) + "\n"


def atomic_write_json(target: str | os.PathLike, obj: Any) -> None:
    atomic_write_text(target, json_text(obj))


def atomic_torch_save(obj: Any, target: str | os.PathLike) -> None:
    import torch

    with atomic_path(target) as tmp:
        torch.save(obj, tmp)


def damaged_backup_name(path: str | os.PathLike) -> Path:
    """Where to set a damaged ``X.json`` aside: ``X.damaged.json``, or ``X.damaged-2.json`` and so
    on when earlier backups exist, so that a second damage never replaces the first backup."""
    path = Path(path)
    backup, n = path.with_suffix(".damaged.json"), 1
    while backup.exists():
        n += 1
        backup = path.with_suffix(f".damaged-{n}.json")
    return backup


@contextmanager
def exclusive(target: str | os.PathLike) -> Iterator[None]:
    """Hold ``target``'s lock file (``NAME.lock`` beside it) for a read-merge-write update, so
    that two processes updating the file at once cannot overwrite each other's change.

    The operating system releases the lock when its holder exits, so a crashed copy never
    blocks the others. A lock still held after :data:`LOCK_WAIT_S` means the holder hangs, and a
    lock file that cannot be opened (left by another user) means no copy can take turns; the
    update then goes ahead without it rather than leaving the user's change unsaved.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(target.with_name(target.name + ".lock"))
    try:
        lock.acquire(timeout=LOCK_WAIT_S)
    except (Timeout, OSError) as exc:
        log.warning("%s could not be locked (%s); updating it without the lock", target, exc)
    try:
        yield
    finally:
        if lock.is_locked:
            lock.release()
