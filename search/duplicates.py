"""Near-duplicates: candidates from the catalog, verified on fingerprints.

`DuplicateFinder` proposes candidates from two channels of the catalog (CLIP video embeddings and
pixel descriptors) and verifies each on pixel fingerprints (`indexer.fingerprint_match`).
Fingerprints of library videos are made from the thumbnails kept per video at ingest
(`indexer.fingerprint_files`), so verifying decodes no video; a video without them (a library
from before they were kept) is read once, and its thumbnails kept from then on.

A library-wide scan reads every video's two vectors once and finds each video's candidates in
memory (`nearest`: exact, as a search finds them), rather than searching once per video; and it
rules out most candidate pairs on a bound of their score before comparing their fingerprints
(`indexer.fingerprint_match.matches`).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from common.tasks import LibraryTasks
from indexer.expressions import in_list
from indexer.fingerprint import Fingerprint, describe, fingerprint
from indexer.fingerprint_match import matches
from indexer.milvus import BATCH
from indexer.records import VideoRecord
from indexer.store import VideoStore
from indexer.thumbnails import MAX_FRAMES, RATE, thumbnails
from search.library import Library

if TYPE_CHECKING:  # the encoder imports torch: only for image and frame queries
    from indexer.encoder import ClipEncoder
    from indexer.fingerprint_files import FingerprintFiles

DEFAULT_THRESHOLD = 0.8  # a pair is a duplicate at or above this verified score
CANDIDATES = 32  # nearest videos checked per query and channel
MIN_CANDIDATE_SCORE = 0.3  # cosine (CLIP or pixel descriptor) below which a video is not even checked
SCAN_BATCH = 256  # videos of a scan whose nearest are found in one matrix product (memory: 1 KB per video)
CHANNELS = ("videos", "descriptors")  # the collections candidates come from: CLIP video embeddings, pixel descriptors


@dataclass
class DuplicateHit:
    """A library video that duplicates the query, with its verified score and matching frames."""

    video: VideoRecord
    score: float
    offset_s: float  # t in the query minus t in this video
    pairs: list  # indexer.fingerprint_match.FramePair


@dataclass
class DuplicateGroup:
    """Videos that are copies of each other, and the verified pairs that join them."""

    videos: list[VideoRecord]
    links: list[dict] = field(default_factory=list)  # {a, b, score, offset_s, pairs: [{t_a, t_b, score}]}


class DuplicateFinder:
    """Near-copies of an image, a frame or a video in one library, and library-wide groups of them."""

    def __init__(self, store: VideoStore, encoder: Callable[[], ClipEncoder], library: Library,
                 fingerprints: FingerprintCache, tasks: LibraryTasks):
        self.store = store
        self._encoder = encoder  # loaded for image and frame queries only: a video's candidates are in the catalog
        self.library = library
        self.fingerprints = fingerprints
        self._tasks = tasks

    def of_image(self, image: np.ndarray, threshold: float = DEFAULT_THRESHOLD, top_k: int = 10) -> list[DuplicateHit]:
        """Library videos holding a near-copy of the image, with the matching frame's time."""
        image = np.asarray(image)
        query = fingerprint(image[None], [0.0])
        hits = self.store.search_frames(self._encoder().encode_images(image[None])[0], top_k=CANDIDATES,
                                        frames_per_video=1)
        near = [(h.video.video_id, h.score) for h in hits]
        near += self.store.search_descriptors(describe(image[None]), CANDIDATES)
        candidates = dict.fromkeys(v for v, s in near if s >= MIN_CANDIDATE_SCORE)
        return self._verified(query, list(candidates), threshold)[:top_k]

    def of_frame(self, video_id: str, t: float, threshold: float = DEFAULT_THRESHOLD,
                 top_k: int = 10) -> list[DuplicateHit]:
        """Other library videos holding a near-copy of a library video's frame at t."""
        video_id = self.library.resolve_id(video_id)
        frame, _ = self.library.frame_at(video_id, t)
        hits = self.of_image(frame, threshold, top_k + 1)
        return [h for h in hits if h.video.video_id != video_id][:top_k]

    def of_video(self, video_id: str, threshold: float = DEFAULT_THRESHOLD, top_k: int = 10) -> list[DuplicateHit]:
        """Library videos that are near-copies of a library video (re-encoded, resized, cropped, trimmed, ...)."""
        record = self.library.get(video_id)
        query = self.fingerprints.get(record.video_id, self.library.file_of(record))
        return self._verified(query, self._candidates(record.video_id), threshold)[:top_k]

    def groups(self, threshold: float = DEFAULT_THRESHOLD,
               progress: Callable[[int, int], None] | None = None) -> list[DuplicateGroup]:
        """Library-wide: groups of videos that are copies of each other, with their matching frame pairs."""
        with self._tasks.running("duplicate scan"):
            records = {r.video_id: r for r in self.store.iter_videos()}
            files = {v: p for v, r in records.items() if (p := self.library.folder.existing_file(r.uri))}
            near, links, seen = self._candidates_of_all(sorted(records)), [], set()
            for n, video_id in enumerate(sorted(files), 1):
                others = [o for o in near[video_id] if o in files and tuple(sorted((video_id, o))) not in seen]
                seen.update(tuple(sorted((video_id, o))) for o in others)
                for other, match in self._verify_pairs(video_id, others, files, threshold):
                    a, b = sorted((video_id, other))
                    links.append({"a": a, "b": b, "score": round(match.score, 4),
                                  "offset_s": round(match.offset_s, 4), "pairs": [vars(p) for p in match.pairs]})
                if progress:
                    progress(n, len(files))
            groups = []
            for members in group_pairs((link["a"], link["b"]) for link in links):
                inside = set(members)
                groups.append(DuplicateGroup([records[v] for v in members], [k for k in links if k["a"] in inside]))
            return groups

    def _candidates(self, video_id: str) -> list[str]:
        """Ids to verify against a library video: its nearest by CLIP embedding and by pixel descriptor."""
        near = [(r.video_id, s) for r, s in self.store.search_videos(self.store.video_embedding(video_id),
                                                                       CANDIDATES + 1)]
        descriptor = self.store.descriptor_of(video_id)
        if descriptor is not None:
            near += self.store.search_descriptors(descriptor, CANDIDATES + 1)
        return _worth_checking(video_id, near)

    def _candidates_of_all(self, video_ids: list[str]) -> dict[str, list[str]]:
        """`_candidates` of every library video at once: each channel's vectors read once and compared in memory,
        exactly (`nearest`), where a search per video would cost a round trip each and, on Milvus Lite, reading
        every hit's row: most of a scan's time."""
        near: dict[str, list[tuple[str, float]]] = {v: [] for v in video_ids}
        for channel in CHANNELS:
            for video_id, hits in nearest(*self._vectors(channel, video_ids), CANDIDATES + 1).items():
                near[video_id] += hits
        return {video_id: _worth_checking(video_id, hits) for video_id, hits in near.items()}

    def _vectors(self, channel: str, video_ids: list[str]) -> tuple[list[str], np.ndarray]:
        """The ids among video_ids that have a vector in a channel's collection, and those vectors (unit length)."""
        rows = [r for start in range(0, len(video_ids), BATCH) for r in self.store.query_rows(
            channel, in_list("video_id", video_ids[start:start + BATCH]), ["video_id", "embedding"], limit=BATCH)]
        vectors = np.array([r["embedding"] for r in rows], dtype=np.float32)
        lengths = np.maximum(np.linalg.norm(vectors, axis=-1, keepdims=True), 1e-12)
        return [r["video_id"] for r in rows], vectors / lengths

    def _verified(self, query: Fingerprint, candidates: list[str], threshold: float) -> list[DuplicateHit]:
        found = [(record, path) for record in self.store.get_videos(candidates).values()
                 if (path := self.library.folder.existing_file(record.uri)) is not None]
        verdicts = matches(query, [self.fingerprints.get(r.video_id, path) for r, path in found], threshold)
        hits = [DuplicateHit(record, match.score, match.offset_s, match.pairs)
                for (record, _), match in zip(found, verdicts) if match is not None]
        return sorted(hits, key=lambda h: h.score, reverse=True)

    def _verify_pairs(self, video_id: str, others: list[str], files: dict[str, Path], threshold: float) -> list:
        """(other, Match) for each of `others` that is a copy of the video, compared as the pair sorted by id:
        those after it in one batch, those before it (seldom: candidates are mostly mutual) one by one."""
        def fp(v: str) -> Fingerprint:
            return self.fingerprints.get(v, files[v])

        after = [o for o in others if o > video_id]
        verdicts = dict(zip(after, matches(fp(video_id), [fp(o) for o in after], threshold)))
        verdicts.update((o, matches(fp(o), [fp(video_id)], threshold)[0]) for o in others if o < video_id)
        return [(o, verdicts[o]) for o in others if verdicts[o] is not None]


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


def nearest(ids: list[str], vectors: np.ndarray, k: int) -> dict[str, list[tuple[str, float]]]:
    """Each id's k nearest ids (itself among them) and their cosines, best first, by (n, d) unit vectors: exact,
    SCAN_BATCH rows of the similarity matrix at a time (a library's whole matrix would not fit in memory)."""
    found = {}
    for start in range(0, len(ids), SCAN_BATCH):
        scores = vectors[start:start + SCAN_BATCH] @ vectors.T
        top = np.argpartition(-scores, min(k, len(ids)) - 1, axis=1)[:, :k]
        top = np.take_along_axis(top, np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1), axis=1)
        for row, video_id in enumerate(ids[start:start + SCAN_BATCH]):
            found[video_id] = [(ids[c], float(scores[row, c])) for c in top[row]]
    return found


def _worth_checking(video_id: str, near: list[tuple[str, float]]) -> list[str]:
    """The ids of the nearest (id, cosine) to a video, itself left out, those too far off too, each once."""
    return list(dict.fromkeys(v for v, s in near if v != video_id and s >= MIN_CANDIDATE_SCORE))


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


def read_for_fingerprint(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """A library file's fingerprint thumbnails and times, decoded as the index writer decodes them (the decoder
    is imported here: a library whose thumbnails are kept never needs it)."""
    from indexer.reader import read_frames
    from indexer.writer import INDEX_RATE

    sampled = read_frames(path, rate=INDEX_RATE, fingerprint=(RATE, MAX_FRAMES))
    return sampled.fingerprint_frames, sampled.fingerprint_times
