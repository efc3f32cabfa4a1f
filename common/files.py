"""Atomic file writes: a file is written under a temp name beside it, then renamed into place.

A reader (another process, a crash-restarted one) sees the old file or the new one, never half of
either: a rename within one folder is atomic. Every writer uses the one temp-name scheme below,
so that a restart finds what a killed writer left (`remove_stale_temp_files`), and so that
listings of a folder leave writes in progress out (temp names are hidden: they start with a dot).
"""

from __future__ import annotations

import logging
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger(__name__)

STALE_AFTER_S = 24 * 3600  # a pid can be reused (pid 1 in a container), so old temp files go anyway


def temp_path(path: str | Path) -> Path:
    """Where this process writes `path` before renaming it into place: `.NAME.TOKEN.PID.tmp` beside it.

    Hidden; a random token of its own, so two writers of the same file (two threads saving one
    upload, say) do not meet; and the writer's pid, which tells `remove_stale_temp_files` whether
    the writer is still alive.
    """
    path = Path(path)
    return path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.{os.getpid()}.tmp")


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temp path to write `path`'s new content to (for writers that take a path or stream
    into a file); when the block ends it is renamed onto `path`, and if the block fails it is removed."""
    tmp = temp_path(path)
    try:
        yield tmp
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def write_atomic(path: str | Path, data: bytes | str) -> None:
    """Replace `path` with `data` (text as UTF-8): an interrupted write leaves the old file whole."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data.encode() if isinstance(data, str) else data)


def remove_stale_temp_files(folder: str | Path) -> list[str]:
    """Delete the temp files and folders (see `temp_path`) that a killed process left in `folder`.

    A temp name is stale when the process named in it is gone, or when it names none (older
    schemes: `.NAME.tmp`), or when it is a day old; those of live writers (an API beside a CLI
    ingest, say) are left alone. Returns the names removed.
    """
    folder = Path(folder)
    removed = []
    for path in folder.glob(".*.tmp") if folder.is_dir() else ():
        try:
            if _is_stale(path):
                shutil.rmtree(path) if path.is_dir() else path.unlink()
                removed.append(path.name)
        except FileNotFoundError:  # its writer renamed or removed it meanwhile
            continue
    if removed:
        log.info("removed %d temp files left by killed processes in %s", len(removed), folder)
    return removed


def _is_stale(path: Path) -> bool:
    pid = path.name.rsplit(".", 2)[-2]
    return not pid.isdigit() or not _alive(int(pid)) or time.time() - path.stat().st_mtime > STALE_AFTER_S


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True
