"""The library as the faces see it: records by id or prefix, pages of them, lineage, delete, media, ingest.

Records live in the catalog (indexer.store), files in the library folder (indexer.library_folder);
a path always comes from a record and stays inside the folder. The decoder, the ingest and the
image and filter code are imported by the methods that use them: an id look-up needs none of them.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from common.files import write_atomic
from common.ids import ID_LENGTH, ID_PATTERN, MIN_ID_PREFIX
from indexer.library_folder import LibraryFolder
from indexer.records import VideoRecord

if TYPE_CHECKING:  # torch loads with the first command that embeds
    from indexer.ingest import IngestReport, Progress
    from indexer.store import VideoStore
    from indexer.writer import IndexWriter
    from search.params import Filters

THUMB_SIDE = 320  # thumbnails are at most this wide or high
CANDIDATES_SHOWN = 10  # videos an ambiguous id prefix lists


class NotFound(LookupError):
    """An id that is not in the library, or a video whose file is gone."""


class AmbiguousId(ValueError):
    """An id prefix that more than one library video's id starts with."""

    def __init__(self, prefix: str, candidates: list[VideoRecord], more: bool):
        self.candidates = candidates
        listed = "; ".join(f"{r.video_id} ({r.title})" for r in candidates)
        super().__init__(f"id prefix {prefix!r} is ambiguous: {len(candidates)}{' or more' if more else ''} videos "
                         f"start with it: {listed}. Give more of the id")


class Library:
    """One library's records (the catalog) and files (the folder). `writer` gives the index writer (loading the
    models) only when files are added; `forget(video_id)` drops what others cache of a deleted video."""

    def __init__(self, store: VideoStore, folder: LibraryFolder, writer: Callable[[], IndexWriter],
                 forget: Callable[[str], None] = lambda video_id: None):
        self.store = store
        self.folder = folder
        self._writer = writer
        self._forget = forget

    # --- records -------------------------------------------------------------------------------

    def get(self, video_id: str) -> VideoRecord:
        """A library video's record, by its id or a unique prefix of it (MIN_ID_PREFIX hex digits or more).

        NotFound when no video matches, AmbiguousId (listing them) when several do, ValueError for
        what is no id prefix at all (too short, too long, not hex)."""
        prefix = _id_prefix(video_id)
        if len(prefix) == ID_LENGTH:
            found = [r] if (r := self.store.get_video(prefix)) else []
        else:
            found = self.store.videos_with_prefix(prefix, CANDIDATES_SHOWN + 1)
        if not found:
            raise NotFound(f"no video {video_id!r} in the library")
        if len(found) > 1:
            raise AmbiguousId(video_id, found[:CANDIDATES_SHOWN], more=len(found) > CANDIDATES_SHOWN)
        return found[0]

    def find(self, video_id: str) -> VideoRecord | None:
        """The record of a full video id, or None when it is not (or no longer) in the library."""
        return self.store.get_video(video_id)

    def resolve_id(self, video_id: str) -> str:
        """The full id of the library video an id or a unique prefix names (see `get`)."""
        return self.get(video_id).video_id

    def browse(self, filters: Filters | None = None, sort: str = "created_at", descending: bool = True,
               offset: int = 0, limit: int = 50) -> tuple[int, list[VideoRecord]]:
        """One page of the library, filtered and sorted, and how many videos match."""
        from search.params import Filters

        return self.store.browse((filters or Filters()).expression(), sort, descending, offset, limit)

    def lineage(self, video_id: str) -> tuple[VideoRecord | None, list[VideoRecord]]:
        """The video this one was re-seeded from (if still there), and those re-seeded from it."""
        record = self.get(video_id)
        parent = self.store.get_video(record.parent_id) if record.parent_id else None
        return parent, self.store.children_of(record.video_id)

    def delete(self, video_id: str) -> VideoRecord:
        """Remove a video: its catalog rows first (nothing then points at the file), then its files."""
        record = self.get(video_id)
        self.store.delete_video(record.video_id)
        self._forget(record.video_id)
        self.folder.remove(record.video_id, record.uri)
        return record

    def ingest(self, paths: list[str | Path], progress: Progress | None = None, keep_paths: bool = True
               ) -> IngestReport:
        """Add video files and folders to the library (content-addressed, idempotent)."""
        from indexer.ingest import ingest

        return ingest(paths, self._writer(), self.folder.videos, progress=progress, keep_paths=keep_paths)

    def optimize(self) -> int:
        """Rebuild the search indexes; returns the frames they cover."""
        self.store.optimize()
        return self.store.count_frames()

    def count_frames(self) -> int:
        return self.store.count_frames()

    # --- media ---------------------------------------------------------------------------------

    def video_path(self, video_id: str) -> Path:
        """The library file of a video: the path comes from the catalog only, and stays inside the library."""
        return self.file_of(self.get(video_id))

    def file_of(self, record: VideoRecord) -> Path:
        path = self.folder.existing_file(record.uri)
        if path is None:
            raise NotFound(f"the file of video {record.video_id} is missing from the library")
        return path

    def frame_at(self, video_id: str, t: float) -> tuple[np.ndarray, float]:
        """The frame of a library video shown at t seconds (within its duration), and its exact time."""
        return self.frame_of(self.get(video_id), t)

    def frame_of(self, record: VideoRecord, t: float) -> tuple[np.ndarray, float]:
        from indexer.reader import read_frame_at

        check_time(record, t)
        return read_frame_at(self.file_of(record), t)

    def thumbnail(self, video_id: str, t: float | None = None) -> bytes:
        """A PNG of the frame at t (default: the middle), at most THUMB_SIDE a side; the default is cached."""
        record = self.get(video_id)
        cached = self.folder.thumb(record.video_id)
        if t is None and cached.is_file():
            return cached.read_bytes()
        frame, _ = self.frame_of(record, record.duration_s / 2 if t is None else t)
        png = png_bytes(frame, THUMB_SIDE)
        if t is None:
            cached.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(cached, png)
        return png


def check_time(record: VideoRecord, t: float) -> None:
    """ValueError unless t lies within the video."""
    if not 0 <= t <= record.duration_s + 1e-6:
        raise ValueError(f"t must be within 0..{record.duration_s:.3f} s for video {record.video_id}, got {t}")


def png_bytes(frame: np.ndarray, max_side: int | None = None) -> bytes:
    """A frame as PNG bytes, shrunk to at most max_side a side."""
    from PIL import Image

    image = Image.fromarray(np.ascontiguousarray(frame))
    if max_side and max(image.size) > max_side:
        image.thumbnail((max_side, max_side))
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def _id_prefix(video_id: str) -> str:
    """A video id or a prefix of one, lower-cased; ValueError unless it is MIN_ID_PREFIX..ID_LENGTH hex digits."""
    shown = video_id if len(video_id) <= ID_LENGTH + 8 else f"{video_id[:ID_LENGTH]}..."
    if not re.fullmatch(ID_PATTERN, video_id):
        if len(video_id) < MIN_ID_PREFIX and re.fullmatch("[0-9a-fA-F]*", video_id):
            raise ValueError(f"id prefix {shown!r} is too short: give at least {MIN_ID_PREFIX} hex digits of the id")
        raise ValueError(f"{shown!r} is not a video id: an id is {ID_LENGTH} hex digits (0-9, a-f), "
                         f"or its first {MIN_ID_PREFIX} or more")
    return video_id.lower()
