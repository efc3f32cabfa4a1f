"""Generation into the library: a clip is made from its parameters (re-seeded from a library video at t for
every mode but text), saved as an mp4 and indexed by the one index writer, like any other file."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from generator.video import square_frames, write_mp4
from indexer.expressions import quote
from indexer.ingest import content_id, temp_path
from indexer.reader import read_span
from indexer.store import VideoRecord, VideoStore
from indexer.writer import IndexWriter, Item
from search.library import Library, check_time
from search.params import GenerationParams

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
        g = self.generator
        common = dict(negative_prompt=params.negative_prompt, seed=params.seed, steps=params.steps,
                      guidance=params.guidance, callback=callback)
        with self._lock:
            if params.mode == "text":
                clip = g.generate(params.prompt, frames=params.frames, **common)
            elif params.mode == "animate":
                frame, _ = self.library.frame_at(params.video_id, params.t)
                clip = g.animate(square_frames(frame[None], g.frame_size)[0], params.prompt, frames=params.frames,
                                 **common)
            elif params.mode == "continue":
                given = self._source_frames(params.video_id, end=params.t)
                clip = g.extend(given, params.prompt, new_frames=params.frames, **common)
            else:
                window = self._source_frames(params.video_id, start=params.t, count=g.window)
                if params.mode == "variation":
                    clip = g.vary(window, params.prompt, strength=params.strength, **common)
                else:
                    mask = _region_mask(params.region, window.shape[1:3])
                    edit = g.inpaint if params.mode == "inpaint" else g.outpaint
                    clip = edit(window, mask, params.prompt, **common)
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
        tmp = write_mp4(temp_path(folder / f"generating-{threading.get_ident()}.mp4"), frames, int(fps))
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

    def _source_frames(self, video_id: str, start: float = 0.0, end: float | None = None,
                       count: int | None = None) -> np.ndarray:
        """Frames of a library video at the generator's size and rate: `count` from `start` (a short source
        holds its last frame), or those up to `end` (its last CONTINUE_FROM_S seconds). Only these are decoded."""
        from generator.world import FPS

        record = self.library.get(video_id)
        if end is not None:
            check_time(record, end)
            start = max(0.0, end - CONTINUE_FROM_S)
        else:
            check_time(record, start)
            end = start + (count - 1) / FPS
        frames, _ = read_span(self.library.file_of(record), start, end, FPS, max_side=self.generator.frame_size)
        return square_frames(frames, self.generator.frame_size)


def _region_mask(region, shape: tuple[int, int]) -> np.ndarray:
    """A boolean (H, W) mask of a Region given in fractions of the frame."""
    h, w = shape
    mask = np.zeros((h, w), bool)
    top, left = round(region.y * h), round(region.x * w)
    mask[top:max(top + 1, round((region.y + region.height) * h)),
         left:max(left + 1, round((region.x + region.width) * w))] = True
    return mask
