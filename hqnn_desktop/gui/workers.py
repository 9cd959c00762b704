"""One way to run core work off the GUI thread (superqt workers), used by every tab."""

from __future__ import annotations

from collections.abc import Callable

from superqt.utils import create_worker


def start_worker(func: Callable, *args, yielded: Callable | None = None, returned: Callable | None = None,
                 errored: Callable | None = None, finished: Callable | None = None):
    """Run ``func(*args)`` (a function or a generator) in a thread pool; results come back as signals.

    Errors go to ``errored`` instead of being re-raised in the event loop, so a
    failure becomes a message in the window, never a crash.
    """
    worker = create_worker(func, *args, _start_thread=False, _ignore_errors=True)
    for signal, slot in (("yielded", yielded), ("returned", returned), ("errored", errored),
                         ("finished", finished)):
        if slot is not None:
            getattr(worker, signal).connect(slot)
    worker.start()
    return worker
