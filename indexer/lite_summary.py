"""The stats of a Milvus Lite catalog, kept beside it by the last process that held it, for `reelbase stats`.

Opening a Lite catalog costs about 1.8 s (pymilvus and Milvus Lite load, the database opens);
counting its rows then takes milliseconds. So a store over a Lite catalog leaves its `stats()` in
`<catalog>.stats.json` as it closes, while it still holds the catalog, signed with the catalog's
files as they are then (every file's and folder's path, size, mtime and ctime), and with what the
stats depend on besides the rows: the models the store was opened for and the Milvus Lite version
(its `server`). Every connection to a Lite catalog removes the summary (`indexer.milvus.connect`),
so there is none while a process holds the catalog. A summary is used only while its signature
matches the files and the rest matches this process. A change made by any other means (a process
that died holding the catalog, another tool, a restored backup) changes the files (ctime cannot
be set back), and `stats` then opens the catalog, whose store writes the summary again as it closes.

This module imports no pymilvus: that is what makes `stats` fast.
"""

from __future__ import annotations

import hashlib
import json
import os
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from common.files import write_atomic

STATS_FIELDS = ("videos", "videos_by_source", "frames", "prompts", "windows", "model", "dim", "temporal_model",
                "server")  # what VideoStore.stats reports, in its order; a summary with other fields is not used
SUFFIX = ".stats.json"

Writers = tuple[str, tuple[str, int] | None]  # the CLIP model's identity, and the temporal model's identity and dim


def is_lite(uri: str) -> bool:
    """Return whether the URI names a Milvus Lite database file rather than a server."""
    return "://" not in uri


def summary_path(uri: str) -> Path:
    """Where the summary of a Lite catalog lies: beside it (inside, it would change the catalog's signature)."""
    path = Path(uri)
    return path.with_name(path.name + SUFFIX)


def write_summary(uri: str, writers: Writers, stats: dict) -> None:
    """Keep `stats` of the Lite catalog at `uri`, opened for `writers`, beside it, signed with its files as they
    are now; the caller holds the catalog, so that nothing changes them between the count and the signature."""
    summary = {"signature": signature(uri), "opened_for": _opened_for(writers), "stats": stats}
    write_atomic(summary_path(uri), json.dumps(summary))


def read_summary(uri: str, writers: Writers) -> dict | None:
    """The stats kept beside a Lite catalog, where they still describe it as a store opened for `writers` would
    count it; None where they may not (or for a server URI, or when there is no summary)."""
    if not is_lite(uri):
        return None
    try:
        summary = json.loads(summary_path(uri).read_text())
    except (FileNotFoundError, ValueError):  # none; or not one this module wrote (it writes atomically)
        return None
    stats = summary.get("stats") if isinstance(summary, dict) else None
    if (not isinstance(stats, dict) or tuple(stats) != STATS_FIELDS
            or summary.get("opened_for") != _opened_for(writers)):
        return None
    current = signature(uri)
    return stats if current is not None and summary.get("signature") == current else None


def remove_summary(uri: str) -> None:
    """Remove the summary of a Lite catalog (a process now holds it and may change it)."""
    summary_path(uri).unlink(missing_ok=True)


def signature(uri: str) -> str | None:
    """A digest of the Lite catalog's files as they stand: the path, size, mtime and ctime of it and of every file
    and folder under it (Milvus Lite keeps a folder: manifests, segments, write-ahead logs); None where there is
    none, or where it changed during the walk."""
    root = Path(uri)
    digest = hashlib.sha256()
    try:
        for path in _tree(root):
            s = path.lstat()
            digest.update(f"{path.relative_to(root)}\0{s.st_size}\0{s.st_mtime_ns}\0{s.st_ctime_ns}\n".encode())
    except OSError:  # the one who opens the catalog then says what is wrong
        return None
    return digest.hexdigest()


def _tree(root: Path):
    """The path and, for a folder, everything under it, in a fixed order."""
    yield root
    if root.is_dir() and not root.is_symlink():
        for dirpath, dirnames, filenames in os.walk(root, onerror=_raise):
            dirnames.sort()
            for name in sorted(dirnames + filenames):
                yield Path(dirpath) / name


def _raise(error: OSError) -> None:
    raise error


def _opened_for(writers: Writers) -> dict:
    """What the stats depend on besides the catalog's rows, as JSON reads it back."""
    clip_model, temporal = writers
    try:
        lite = version("milvus-lite")  # the `server` Lite reports is its version
    except PackageNotFoundError:
        lite = None
    return {"clip_model": clip_model, "temporal": list(temporal) if temporal else None, "milvus_lite": lite}
