"""The crash-isolated reader: files decoded in a child process that may die without harm.

decord can abort the whole process on broken input (a corrupt `stts` box makes it throw
`std::bad_alloc`, which ends in SIGABRT), so `FrameReader` runs `indexer.reader` (the in-process
decoder) in one spawned child, restarts it when it dies or stalls, and reports that file as bad.
Whatever reads files a user handed in goes through here. This module and `indexer.reader` import
only numpy, av and decord, so the child starts fast.
"""

from __future__ import annotations

import itertools
import logging
import multiprocessing as mp
import signal
import sys
import time
import types
from collections import deque
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from functools import partial
from multiprocessing.connection import wait
from pathlib import Path

from indexer.probe import BadVideo, ReadLimits
from indexer.reader import SampledFrames, _read, sample_indices

log = logging.getLogger(__name__)


def _child_main(conn, rate: float, cap: int, max_side: int, limits: ReadLimits,
                fingerprint: tuple[float, int] | None = None) -> None:
    """Serve (seq, path) jobs from the parent until it sends None or goes away.

    Each result is sent before the next file is opened, so a crash on one file never takes
    an earlier file's finished result with it.
    """
    try:
        while (job := conn.recv()) is not None:
            seq, path = job
            progress = partial(conn.send, (seq, "progress", None))
            try:
                result = ("ok", _read(Path(path), rate, cap, max_side, limits, progress, fingerprint))
            except BadVideo as e:
                result = ("bad", e.reason)
            except Exception as e:  # a bug or an unexpected library error: report, keep serving
                log.exception("%s: unexpected error", path)
                result = ("bad", f"unexpected error: {type(e).__name__}: {e}")
            conn.send((seq, *result))
    except (EOFError, BrokenPipeError, KeyboardInterrupt):
        pass


class _ChildLost(Exception):
    """The child died or stalled; the message is the reason for the file it was reading."""


@contextmanager
def _main_module_hidden():
    """Hide the caller's __main__ from spawn, so the child does not re-run the app's script."""
    main = sys.modules["__main__"]
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        sys.modules["__main__"] = main


class FrameReader:
    """Reads files in one child process, in order, surviving decoder crashes and hangs."""

    def __init__(
        self,
        rate: float = 2.0,
        cap: int = 512,
        max_side: int = 256,
        limits: ReadLimits = ReadLimits(),
        prefetch: int = 2,
        fingerprint: tuple[float, int] | None = None,
    ):
        """`fingerprint`: also make fingerprint thumbnails at this (rate, cap), in the same decode pass."""
        for sampling in (rate, cap), *([fingerprint] if fingerprint else []):
            sample_indices(2, 1.0, *sampling)  # fail here on bad options, not once per file in the child
        self.options = (rate, cap, max_side, limits, fingerprint)
        self.limits, self.prefetch = limits, max(0, prefetch)
        self._process, self._conn = None, None
        self._seqs = itertools.count()  # job numbers, never reused, so stale results are ignored

    def __enter__(self) -> FrameReader:
        self._start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def pid(self) -> int | None:
        """The child's process id, None while no child runs."""
        return self._process.pid if self._process else None

    def read(self, paths: Iterable[str | Path]) -> Iterator[SampledFrames | BadVideo]:
        """Yield one result per path, in input order; the child works up to `prefetch` ahead."""
        todo = ((next(self._seqs), Path(p)) for p in paths)
        sent = deque()  # (seq, path) handed to the child, results not yet yielded
        try:
            self._send_more(sent, todo)
            while sent:
                seq, path = sent.popleft()
                try:
                    result = self._receive(seq, path)
                except _ChildLost as lost:
                    log.warning("%s: %s; restarting the reader process", path, lost)
                    result = BadVideo(path, str(lost))
                    for job in sent:  # the new child gets the files the dead one had queued
                        self._send(job)
                self._send_more(sent, todo)
                yield result
        finally:
            if sent:  # the caller stopped early: drop the child with its queued work
                self.close()

    def close(self) -> None:
        """Stop the child process."""
        if self._process is not None:
            self._send(None)
            self._drop_child(grace_s=2.0)

    def _start(self) -> None:
        if self._process is not None:
            return
        ctx = mp.get_context("spawn")
        self._conn, child_conn = ctx.Pipe()
        self._process = ctx.Process(
            target=_child_main, args=(child_conn, *self.options), name="reelbase-reader", daemon=True
        )
        with _main_module_hidden():
            self._process.start()
        child_conn.close()

    def _send(self, job: tuple[int, Path] | None) -> None:
        """Hand a job (None: stop) to the child; a dead child is noticed when receiving."""
        self._start()
        try:
            self._conn.send(job and (job[0], str(job[1])))
        except OSError:
            pass

    def _send_more(self, sent: deque, todo: Iterator[tuple[int, Path]]) -> None:
        while len(sent) < self.prefetch + 1 and (job := next(todo, None)) is not None:
            self._send(job)
            sent.append(job)

    def _receive(self, seq: int, path: Path) -> SampledFrames | BadVideo:
        """Wait for the result of `seq`; raise _ChildLost when the child dies or stalls."""
        timeout = self.limits.timeout_s
        deadline = time.monotonic() + timeout
        while True:
            ready = wait([self._conn, self._process.sentinel], max(0, deadline - time.monotonic()))
            if not ready:
                self._drop_child()
                raise _ChildLost(f"timed out after {timeout:g} s")
            try:
                got, kind, payload = self._conn.recv() if self._conn in ready else (None,) * 3
            except (EOFError, OSError):
                got = kind = None
            if kind is None:
                raise _ChildLost(_death_reason(self._drop_child(grace_s=1.0)))
            if kind == "progress":
                deadline = time.monotonic() + timeout
            elif got == seq:
                return payload if kind == "ok" else BadVideo(path, payload)

    def _drop_child(self, grace_s: float = 0.0) -> int:
        """Forget the child, killing it if it still runs after `grace_s`; its exit code."""
        process, self._process = self._process, None
        process.join(timeout=grace_s)
        if process.is_alive():
            process.kill()
            process.join()
        self._conn.close()
        self._conn = None
        return process.exitcode


def _death_reason(exitcode: int) -> str:
    """How a child process ended, as the reason text for the file it was reading."""
    if exitcode < 0:
        return f"decoder crashed (signal {signal.Signals(-exitcode).name})"
    return f"decoder exited with code {exitcode}"
