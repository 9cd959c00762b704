"""One way to run core work off the GUI thread (superqt workers), used by every tab."""

from __future__ import annotations

import functools
import inspect
import os
import sys
import threading
from collections.abc import Callable

import shiboken6

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


def _reporting_gone(worker) -> bool:
    """Whether the Qt object carrying ``worker``'s reports was deleted (the program is ending)."""
    return not shiboken6.isValid(worker.signals)


@functools.cache
def _quiet_worker_class(generator: bool) -> type:
    """superqt's worker class (for a generator or a function) that says nothing when it reports
    after the window is gone.

    Closing the window while a training winds down ends the program; on its way out PySide
    deletes the Qt objects that carry the worker's reports (the worker's own signals, a tab's
    progress relay), and the worker's next report raised "Signal source has been deleted" from
    a thread no one listens to: two tracebacks on the terminal after a clean close. Nobody is
    left to hear the report, so it is dropped. No Qt object is created here: the signals still
    come from superqt's constructor, in the window's thread.
    """
    from superqt.utils import FunctionWorker, GeneratorWorker

    class QuietWorker(GeneratorWorker if generator else FunctionWorker):
        def run(self) -> None:
            try:
                super().run()
            except RuntimeError:
                if not _reporting_gone(self):  # an emit fails only then: anything else is shown
                    raise

        if generator:
            def work(self) -> object:
                """superqt hands back any RuntimeError of a generator, taking it for a deleted
                worker, and run() then only warns and never says it finished (a tab would wait for
                ever). A job's own RuntimeError (torch raises them) is raised, to be reported as any
                other error; after the window is gone, the result is dropped and run() ends quietly."""
                result = super().work()
                if isinstance(result, RuntimeError):
                    if not _reporting_gone(self):
                        raise result
                    return None
                return result

    return QuietWorker


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

    worker = create_worker(_in_background(func), *args, _start_thread=False, _ignore_errors=True,
                           _worker_class=_quiet_worker_class(inspect.isgeneratorfunction(func)))
    for signal, slot in (("yielded", yielded), ("returned", returned), ("errored", errored),
                         ("finished", finished)):
        if slot is not None:
            getattr(worker, signal).connect(slot)
    worker.start()
    return worker
