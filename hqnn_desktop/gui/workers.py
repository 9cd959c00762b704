"""One way to run core work off the GUI thread (superqt workers), used by every tab."""

from __future__ import annotations

import functools
import inspect
import os
import sys
import threading
from collections.abc import Callable

#: How much lower than the window the background work runs (Unix nice steps).
BACKGROUND_NICENESS = 5


def lower_thread_priority() -> None:
    """Give the calling thread, and the threads it starts (decoders, torch's compute threads), a
    lower CPU priority than the window's thread.

    On a machine with few cores the compute threads otherwise keep every core busy and the window
    waits its turn for a tenth of a second or more whenever a batch of results arrives. Linux
    lets a thread's priority be lowered alone; elsewhere this does nothing.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        base = os.getpriority(os.PRIO_PROCESS, os.getpid())
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), min(19, base + BACKGROUND_NICENESS))
    except OSError:
        pass


def _in_background(func: Callable) -> Callable:
    """``func`` (a function or a generator function) run at background priority."""
    if inspect.isgeneratorfunction(func):
        @functools.wraps(func)
        def generator(*args, **kwargs):
            lower_thread_priority()
            return (yield from func(*args, **kwargs))
        return generator

    @functools.wraps(func)
    def function(*args, **kwargs):
        lower_thread_priority()
        return func(*args, **kwargs)
    return function


def start_worker(func: Callable, *args, yielded: Callable | None = None, returned: Callable | None = None,
                 errored: Callable | None = None, finished: Callable | None = None):
    """Run ``func(*args)`` (a function or a generator) in a thread pool, below the window's priority;
    results come back as signals.

    Errors go to ``errored`` instead of being re-raised in the event loop, so a
    failure becomes a message in the window, never a crash. superqt is imported
    here, not at start-up: importing it loads all its widgets (~0.2 s), and the
    first worker starts only after the window is shown.
    """
    from superqt.utils import create_worker

    worker = create_worker(_in_background(func), *args, _start_thread=False, _ignore_errors=True)
    for signal, slot in (("yielded", yielded), ("returned", returned), ("errored", errored),
                         ("finished", finished)):
        if slot is not None:
            getattr(worker, signal).connect(slot)
    worker.start()
    return worker
