"""Near-duplicate detection's settings and helpers: candidates from the catalog, verified on fingerprints.

The service proposes candidates from two channels of the catalog (CLIP video embeddings and
pixel descriptors) and verifies each on pixel fingerprints (`indexer.fingerprint.compare`).
Fingerprints of library videos are computed from their files on first use and kept here.
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

DEFAULT_THRESHOLD = 0.8  # a pair is a duplicate at or above this verified score
CANDIDATES = 32  # nearest videos checked per query and channel
MIN_CANDIDATE_SCORE = 0.3  # cosine (CLIP or pixel descriptor) below which a video is not even checked


class FingerprintCache:
    """Fingerprints of library videos, computed from their files on first use (LRU)."""

    def __init__(self, read: Callable[[Path], tuple[np.ndarray, np.ndarray]], max_bytes: int = 2 << 30):
        self._read, self._max_bytes, self._bytes = read, max_bytes, 0
        self._items: OrderedDict[str, Fingerprint] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, video_id: str, path: Path) -> Fingerprint:
        with self._lock:
            if video_id in self._items:
                self._items.move_to_end(video_id)
                return self._items[video_id]
        from indexer.fingerprint import fingerprint

        frames, times = self._read(path)
        fp = fingerprint(frames, times)
        with self._lock:
            if video_id not in self._items:
                self._items[video_id] = fp
                self._bytes += fp.variants.nbytes
            while self._bytes > self._max_bytes and len(self._items) > 1:
                self._bytes -= self._items.popitem(last=False)[1].variants.nbytes
        return fp

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
