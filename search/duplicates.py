"""Near-duplicate detection's settings and helpers: candidates from the catalog, verified on fingerprints.

The service proposes candidates from two channels of the catalog (CLIP video embeddings and
pixel descriptors) and verifies each on pixel fingerprints (`indexer.fingerprint.compare`).
Fingerprints of library videos are made from the thumbnails kept per video at ingest
(`indexer.fingerprint_files`), so verifying decodes no video; a video without them (a library
from before they were kept) is read once, and its thumbnails kept from then on.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # indexer.fingerprint imports torch: only when a fingerprint is made
    from indexer.fingerprint import Fingerprint
    from indexer.fingerprint_files import FingerprintFiles

DEFAULT_THRESHOLD = 0.8  # a pair is a duplicate at or above this verified score
CANDIDATES = 32  # nearest videos checked per query and channel
MIN_CANDIDATE_SCORE = 0.3  # cosine (CLIP or pixel descriptor) below which a video is not even checked


class FingerprintCache:
    """Fingerprints of library videos (LRU), made from their kept thumbnails.

    `read(path)` gives a video file's fingerprint frames and times, for a video whose thumbnails are not
    kept in `files`; they are kept there once made. Without `files`, every fingerprint is made from its
    video file (as before thumbnails were kept; `bench/duplicates.py` times both).
    """

    def __init__(self, read: Callable[[Path], tuple[np.ndarray, np.ndarray]], files: FingerprintFiles | None = None,
                 max_bytes: int = 2 << 30):
        self._read, self._files, self._max_bytes, self._bytes = read, files, max_bytes, 0
        self._items: OrderedDict[str, Fingerprint] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, video_id: str, path: Path) -> Fingerprint:
        with self._lock:
            if video_id in self._items:
                self._items.move_to_end(video_id)
                return self._items[video_id]
        from indexer.fingerprint import fingerprint

        fp = fingerprint(*self._thumbnails(video_id, path))
        with self._lock:
            if video_id not in self._items:
                self._items[video_id] = fp
                self._bytes += fp.variants.nbytes
            while self._bytes > self._max_bytes and len(self._items) > 1:
                self._bytes -= self._items.popitem(last=False)[1].variants.nbytes
        return fp

    def _thumbnails(self, video_id: str, path: Path) -> tuple[np.ndarray, np.ndarray]:
        """The video's kept thumbnails and times, else made from its file (and kept)."""
        kept = self._files.read(video_id) if self._files else None
        if kept is not None:
            return kept
        from indexer.thumbnails import thumbnails

        frames, times = self._read(path)
        thumbs = thumbnails(frames)
        if self._files:
            self._files.write(video_id, thumbs, times)
        return thumbs, times

    def forget(self, video_id: str) -> None:
        with self._lock:
            fp = self._items.pop(video_id, None)
            if fp is not None:
                self._bytes -= fp.variants.nbytes


def group_pairs(pairs: Iterable[tuple[str, str]]) -> list[list[str]]:
    """Connected components of the duplicate relation, each sorted, largest group first."""
    parent: dict[str, str] = {}

    def root(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in pairs:
        parent[root(a)] = root(b)
    groups: dict[str, list[str]] = {}
    for x in parent:
        groups.setdefault(root(x), []).append(x)
    return sorted((sorted(g) for g in groups.values()), key=lambda g: (-len(g), g[0]))
