"""Generation into the library: a clip is made from its parameters (re-seeded from a library video at t for
every mode but text), saved as an mp4 and indexed by the one index writer, like any other file."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from common.files import temp_path
from generator.params import GenerationParams
from generator.video import write_mp4
from indexer.expressions import quote
from indexer.ingest import content_id
from indexer.reader import read_span
from indexer.records import VideoRecord
from indexer.store import VideoStore
from indexer.writer import IndexWriter, Item
from search.library import Library, check_time

if TYPE_CHECKING:  # torch loads with the first generation
    from generator.pipeline import Generator

log = logging.getLogger(__name__)

MAX_SAME_PROMPT = 1000  # clips of one prompt looked through for one made with the same parameters
CONTINUE_FROM_S = 120.0  # seconds of a source before t that "continue" keeps (the clip starts with them)


class Generation:
    """One generator making clips into one library. `writer` gives the index writer (the CLIP model)."""

    def __init__(self, generator: Generator, model: str, library: Library, writer: Callable[[], IndexWriter]):
        self.generator = generator
        self.model = model  # as the settings name it: what a clip's record says made it
        self.library = library
        self._writer = writer
        self._lock = threading.Lock()  # one clip at a time per model

    @property
    def store(self) -> VideoStore:
        return self.library.store

    def generate(self, params: GenerationParams, callback: Callable[[int, int], bool | None] | None = None,
                 on_saving: Callable[[str], None] | None = None) -> VideoRecord:
        """Run one generation (any mode), save the clip into the library and index it.

        `on_saving(video_id)` is told the clip's id before its file enters the library, so a
        process killed while saving can be repaired by `recover_clip` at the next start.
        """
        with self._lock:
            clip = self.generator.make(params, self._source_frames(params), callback)
        meta = {**clip.record, "job": params.model_dump(mode="json")}
        return self.add_clip(clip.frames, clip.fps, params.prompt, meta, parent_id=params.video_id or "",
                             on_saving=on_saving)

    def generated_with(self, params: GenerationParams) -> VideoRecord | None:
        """A library clip this generator already made with exactly these parameters, if any (a seed makes a clip
        reproducible, so making it again would only add a copy)."""
        expression = f"source == {quote('generated')} and prompt == {quote(params.prompt)}"
        _, records = self.store.browse(filter=expression, limit=MAX_SAME_PROMPT)
        job = params.model_dump(mode="json")
        return next((r for r in records if r.meta.get("job") == job and r.meta.get("model") == self.model), None)

    def check_source(self, params: GenerationParams) -> None:
        """Raise NotFound or ValueError now, not in a failed job later, if the source video or time is wrong."""
        if params.video_id:
            check_time(self.library.get(params.video_id), params.t)

    def add_clip(self, frames: np.ndarray, fps: float, prompt: str, meta: dict, parent_id: str = "",
                 on_saving: Callable[[str], None] | None = None) -> VideoRecord:
        """Save generated frames into the library as an mp4 and index the file (frames and prompt)."""
        folder = self.library.folder.videos
        folder.mkdir(parents=True, exist_ok=True)
        tmp = write_mp4(temp_path(folder / "generating.mp4"), frames, int(fps))  # named by its hash once written
        video_id = content_id(tmp)
        if on_saving:
            on_saving(video_id)
        path = folder / f"{video_id}.mp4"
        tmp.replace(path)
        existing = self.store.get_video(video_id)
        if existing is not None:  # the same parameters made the same bytes
            return existing
        T, H, W = frames.shape[:3]
        record = VideoRecord(video_id=video_id, uri=path.name, source="generated", prompt=prompt, parent_id=parent_id,
                             duration_s=T / fps, fps=float(fps), width=W, height=H, num_frames=T,
                             created_at=time.time(), meta=meta)
        self._writer().write_one(Item.known(path, record), isolated=False)  # our own bytes: decoding cannot crash
        return record

    def recover_clip(self, video_id: str) -> bool:
        """After a crash while saving a generated clip: True if it was saved completely, else
        remove what part of it was written (its file and any vectors) and return False."""
        if self.store.has_video(video_id):  # the commit marker is there: complete
            return True
        self.store.delete_video(video_id)  # frames, prompt or descriptor written before the crash
        (self.library.folder.videos / f"{video_id}.mp4").unlink(missing_ok=True)
        self.library.folder.fingerprints.delete(video_id)
        log.info("removed the half-saved clip %s", video_id)
        return False

    def _source_frames(self, params: GenerationParams) -> np.ndarray | None:
        """The frames a generation starts from, decoded from its library video at the generator's rate (the
        generator squares them to its size): none for text, the frame at t for animate, the last
        CONTINUE_FROM_S seconds up to t for continue, one window from t for the others (a short source
        holds its last frame). Only these are decoded."""
        if params.mode == "text":
            return None
        record = self.library.get(params.video_id)
        if params.mode == "animate":
            frame, _ = self.library.frame_of(record, params.t)
            return frame[None]
        check_time(record, params.t)
        g = self.generator
        if params.mode == "continue":
            start, end = max(0.0, params.t - CONTINUE_FROM_S), params.t
        else:
            start, end = params.t, params.t + (g.window - 1) / g.fps
        frames, _ = read_span(self.library.file_of(record), start, end, g.fps, max_side=g.frame_size)
        return frames
