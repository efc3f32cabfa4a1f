"""The one index writer: a file and its record in, the video's catalog rows out.

Every way into the catalog goes through `IndexWriter.write`: ingested files, generated clips and
re-index. Each file is decoded by the reader (in a crash-isolated child process unless the bytes
are this process's own), its sampled frames embedded by the CLIP encoder (videos of one frame size
in one batch) and, where the catalog keeps windows, its windows of frames by the temporal model;
its fingerprint thumbnails kept, and its rows written to the store, the `videos` row last (the
commit marker; docs/architecture.md). So a clip gets the same vectors whichever way it came in.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from indexer import thumbnails
from indexer.isolated_reader import FrameReader
from indexer.probe import BadVideo, ReadLimits
from indexer.reader import SampledFrames, read_frames
from indexer.records import VideoEntry, VideoRecord
from indexer.store import VideoStore

if TYPE_CHECKING:  # importing torch is for the commands that embed (see bench/startup.py)
    from indexer.encoder import ClipEncoder
    from indexer.fingerprint_files import FingerprintFiles
    from indexer.temporal_models import TemporalEncoder

log = logging.getLogger(__name__)

INDEX_RATE = 2.0  # frames per second sampled and embedded from every video
MAX_SAMPLED = 512  # frames sampled from one video at most (a long video is sampled more sparsely)
PREFETCH = 8  # files the reader may decode ahead of the encoder
BATCH_FRAMES = 128  # frames the encoder embeds in one call, from as many videos as fill it


class NotIndexed(RuntimeError):
    """A file that could not go into the catalog, with the reason."""


@dataclass(eq=False)  # compared and hashed as itself: callers may key what they know of an item by it
class Item:
    """A file to index, and how its record comes to be once the file is read: `record(sampled)` makes the
    record from what the reader found (an ingest copies the file into the library there) or returns the
    record the caller already has (a generated clip, a re-index)."""

    path: Path
    record: Callable[[SampledFrames], VideoRecord]

    @classmethod
    def known(cls, path: Path, record: VideoRecord) -> Item:
        return cls(path, lambda _sampled: record)


@dataclass
class Written:
    """An item whose rows are in the catalog."""

    item: Item
    entry: VideoEntry


@dataclass
class Failed:
    """An item that is not in the catalog, and why (read, embed, record or write)."""

    item: Item
    reason: str


class IndexWriter:
    """Reader -> CLIP embedder (-> temporal model) -> store, for any files with their records."""

    def __init__(self, store: VideoStore, encoder: ClipEncoder, fingerprints: FingerprintFiles | None = None, *,
                 temporal: TemporalEncoder | None = None, rate: float = INDEX_RATE, cap: int = MAX_SAMPLED,
                 limits: ReadLimits = ReadLimits()):
        self.store = store
        self.encoder = encoder
        self.temporal = temporal  # embeds the windows, where the store keeps them
        self.fingerprints = fingerprints  # where each video's fingerprint thumbnails are kept (None: not kept)
        self.rate, self.cap, self.limits = rate, cap, limits

    def write(self, items: Iterable[Item], isolated: bool = True) -> Iterator[Written | Failed]:
        """Index each item, yielding its outcome, in batches (a few writes carry many videos). Whatever goes
        wrong with one item fails only that item. `isolated=False` decodes in this process: only for files
        this process wrote itself (a generated clip), whose decoding cannot crash it."""
        items = list(items)
        read = zip(items, self._read(items, isolated))  # the reader answers in input order
        for embedded, failed in self._embedded_batches(read):
            yield from failed
            entries = []
            for item, sampled, embeddings in embedded:
                try:
                    entries.append((item, self._entry(item, sampled, embeddings)))
                except Exception as exc:
                    yield Failed(item, _reason(item.path, exc))
            yield from self._store(entries)

    def write_one(self, item: Item, isolated: bool = True) -> VideoEntry:
        """Index one item; raises NotIndexed with the reason when it cannot go in."""
        (outcome,) = self.write([item], isolated)
        if isinstance(outcome, Failed):
            raise NotIndexed(f"{item.path.name}: {outcome.reason}")
        return outcome.entry

    # --- reading and embedding ---------------------------------------------------------------------

    def _read(self, items: list[Item], isolated: bool) -> Iterator[SampledFrames | BadVideo]:
        fingerprint = (thumbnails.RATE, thumbnails.MAX_FRAMES) if self.fingerprints is not None else None
        if isolated:
            with FrameReader(rate=self.rate, cap=self.cap, limits=self.limits, prefetch=PREFETCH,
                             fingerprint=fingerprint) as reader:
                yield from reader.read(item.path for item in items)
            return
        for item in items:
            try:
                yield read_frames(item.path, self.rate, self.cap, limits=self.limits, fingerprint=fingerprint)
            except BadVideo as bad:
                yield bad

    def _embedded_batches(self, read: Iterable[tuple[Item, SampledFrames | BadVideo]]):
        """Group what was read so the encoder sees full batches; yield ([(item, sampled, embeddings)], [Failed])
        per batch."""
        pending, failed = [], []
        for item, result in read:
            if isinstance(result, BadVideo):
                failed.append(Failed(item, result.reason))
                continue
            pending.append((item, result))
            if sum(len(s.frames) for _, s in pending) >= BATCH_FRAMES:
                yield self._embed(pending, failed)
                pending, failed = [], []
        if pending or failed:
            yield self._embed(pending, failed)

    def _embed(self, batch: list[tuple[Item, SampledFrames]], failed: list[Failed]):
        """Embed a batch's frames, the videos of one frame size together (videos of every size may share a
        batch); a video whose frames cannot be embedded fails, the others go on."""
        by_size: dict[tuple, list[int]] = {}  # positions in the batch by frame size
        for n, (_, sampled) in enumerate(batch):
            by_size.setdefault(sampled.frames.shape[1:], []).append(n)
        embedded: dict[int, np.ndarray] = {}
        for group in by_size.values():
            try:
                embedded.update(zip(group, self._embed_together([batch[n][1] for n in group])))
            except Exception:
                for n in group:  # find the one that fails
                    item, sampled = batch[n]
                    try:
                        embedded[n] = self.encoder.encode_images(sampled.frames)
                    except Exception as exc:
                        failed.append(Failed(item, f"cannot embed its frames: {_reason(item.path, exc)}"))
        return [(*batch[n], embedded[n]) for n in sorted(embedded)], failed

    def _embed_together(self, group: list[SampledFrames]) -> list[np.ndarray]:
        embeddings = self.encoder.encode_images(np.concatenate([s.frames for s in group]))
        return np.split(embeddings, np.cumsum([len(s.frames) for s in group])[:-1])

    # --- records and rows --------------------------------------------------------------------------

    def _entry(self, item: Item, sampled: SampledFrames, embeddings: np.ndarray) -> VideoEntry:
        """The video's record (made by the item: an ingest copies the file into the library there), its kept
        fingerprint (before the catalog rows, as the file) and the rows to write: frames, windows, the prompt
        of a generated clip, the pixel descriptor."""
        from indexer.fingerprint import describe

        record = item.record(sampled)
        if self.fingerprints is not None and sampled.fingerprint_frames is not None:
            self.fingerprints.write(record.video_id, sampled.fingerprint_frames, sampled.fingerprint_times)
        prompt = self.encoder.encode_text(record.prompt) if record.prompt else None
        windows = (self.temporal.windows(sampled.frames, embeddings, sampled.indices, sampled.times)
                   if self.temporal is not None and self.store.has_windows else None)
        return VideoEntry(record, sampled.indices.tolist(), sampled.times.tolist(), embeddings, prompt,
                          describe(sampled.frames), windows)

    def _store(self, entries: list[tuple[Item, VideoEntry]]) -> Iterator[Written | Failed]:
        """Write a batch's rows (frames first, the video rows last: a crash is repaired by writing again); when
        the batch is refused, each video alone, so that one bad entry fails only itself."""
        if not entries:
            return
        try:
            self.store.add_videos([entry for _, entry in entries])
            yield from (Written(item, entry) for item, entry in entries)
            return
        except Exception as exc:
            if len(entries) == 1:
                yield Failed(entries[0][0], f"cannot write to the catalog: {exc}")
                return
            log.warning("writing %d videos at once failed (%s); writing them one at a time", len(entries), exc)
        for item, entry in entries:
            try:
                self.store.add_videos([entry])
                yield Written(item, entry)
            except Exception as exc:
                yield Failed(item, f"cannot write to the catalog: {exc}")


def _reason(path: Path, exc: Exception) -> str:
    """Why an item failed: an OS error as the OS says it (the file went away, the disk is full), else the
    exception, logged with its traceback (a bug)."""
    if isinstance(exc, OSError):
        return str(exc.strerror or exc)
    log.exception("%s: unexpected error", path)
    return f"unexpected error: {type(exc).__name__}: {exc}"
