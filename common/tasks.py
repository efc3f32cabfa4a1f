"""One library-wide task at a time: re-index, repair and duplicate scans each read or rewrite the whole
library, and a second one (a client asking again after a timeout, say) is refused rather than run beside it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class Busy(RuntimeError):
    """A library-wide task is already running in this process."""


class LibraryTasks:
    """The one lock that library-wide tasks of one service share."""

    def __init__(self):
        self._lock = threading.Lock()

    @contextmanager
    def running(self, task: str) -> Iterator[None]:
        """Hold the library for `task`, or raise Busy at once when another task holds it."""
        if not self._lock.acquire(blocking=False):
            raise Busy(f"a library-wide task is already running; this {task} can start when it ends")
        try:
            yield
        finally:
            self._lock.release()
