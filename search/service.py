"""The application: the indexer and the generator joined over one library and one store.

`Reelbase` is what both faces (the HTTP API and the CLI) call. It owns the library folder,
the Milvus catalog, the CLIP encoder and the generator, and composes them: generate -> save ->
index, hit -> condition -> generate, and the queries (text, image, frame, similar, prompt,
near-duplicates).
"""

from __future__ import annotations

import functools
import io
import json
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from generator.video import square_frames, write_mp4
from indexer import thumbnails
from indexer.expressions import quote
from indexer.fingerprint_files import FingerprintFiles
from indexer.frame_reader import FrameReader
from indexer.identity import ID_LENGTH, model_identity
from indexer.ingest import IngestReport, Progress, content_id, ingest, remove_stale_temp_files, temp_path
from indexer.reader import BadVideo, read_frame_at, read_frames, read_span, sample_indices
from indexer.store import ModelMismatch, VideoEntry, VideoHit, VideoRecord, VideoStore, drop_catalog, read_catalog
from search import duplicates
from search.params import ID_PATTERN, MIN_ID_PREFIX, Filters, GenerationParams
from search.settings import Settings

if TYPE_CHECKING:  # torch and open_clip load with the first command that embeds or fingerprints, not before
    from indexer.encoder import ClipEncoder
    from indexer.fingerprint import Fingerprint

log = logging.getLogger(__name__)

INDEX_RATE = 2.0  # frames per second embedded, as the ingest samples them
THUMB_SIDE = 320  # thumbnails are at most this wide or high
ORPHAN_FILE_AGE_S = 3600.0  # a library file with no catalog row this long is left from a dead process
MAX_SAME_PROMPT = 1000  # clips of one prompt looked through for one made with the same parameters
CONTINUE_FROM_S = 120.0  # seconds of a source before t that "continue" keeps (the clip starts with them)
CANDIDATES_SHOWN = 10  # videos an ambiguous id prefix lists


class NotFound(LookupError):
    """An id that is not in the library."""


class AmbiguousId(ValueError):
    """An id prefix that more than one library video's id starts with."""

    def __init__(self, prefix: str, candidates: list[VideoRecord], more: bool):
        self.candidates = candidates
        listed = "; ".join(f"{r.video_id} ({r.title})" for r in candidates)
        super().__init__(f"id prefix {prefix!r} is ambiguous: {len(candidates)}{' or more' if more else ''} videos "
                         f"start with it: {listed}. Give more of the id")


class Busy(RuntimeError):
    """A library-wide task (re-index, duplicate scan, repair) is already running in this process."""


def library_wide(task: str):
    """One library-wide task at a time per service: a second (a client asking again after a timeout,
    say) is refused with Busy rather than run beside the first."""
    def wrap(method):
        @functools.wraps(method)
        def run(self, *args, **kwargs):
            if not self._library_wide_lock.acquire(blocking=False):
                raise Busy(f"a library-wide task is already running; this {task} can start when it ends")
            try:
                return method(self, *args, **kwargs)
            finally:
                self._library_wide_lock.release()
        return run
    return wrap


@dataclass
class DuplicateHit:
    """A library video that duplicates the query, with its verified score and matching frames."""

    video: VideoRecord
    score: float
    offset_s: float  # t in the query minus t in this video
    pairs: list  # indexer.fingerprint.FramePair


@dataclass
class DuplicateGroup:
    """Videos that are copies of each other, and the verified pairs that join them."""

    videos: list[VideoRecord]
    links: list[dict] = field(default_factory=list)  # {a, b, score, offset_s, pairs: [{t_a, t_b, score}]}


class Reelbase:
    """One library: its folder of video files, its Milvus catalog, its CLIP model and its generator."""

    def __init__(self, settings: Settings | None = None):
        self.settings = settings or Settings()
        self._generate_lock = threading.Lock()
        self._library_wide_lock = threading.Lock()
        self.fingerprint_files = FingerprintFiles(self.settings.data_dir / "fingerprints")
        self.fingerprints = duplicates.FingerprintCache(self._read_for_fingerprint, self.fingerprint_files)
        for folder in (self.library_dir, self.thumbs_dir, self.uploads_dir,
                       self.fingerprint_files.folder):  # what a killed process left
            remove_stale_temp_files(folder)

    # --- parts ---------------------------------------------------------------------------------

    @cached_property
    def encoder(self) -> ClipEncoder:
        from indexer.encoder import ClipEncoder

        return ClipEncoder.load(self.settings.clip_model, self.settings.device)

    @cached_property
    def store(self) -> VideoStore:
        """The catalog, opened without loading the CLIP model: its identity is a digest of its weights
        file, and its dim the store's record of it (the model is loaded only for a new store)."""
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        return VideoStore(self.settings.resolved_milvus_uri, model=model_identity(self.settings.clip_model),
                          dim=lambda: self.encoder.dim, token=self.settings.milvus_token)

    @cached_property
    def generator(self):
        from generator.pipeline import Generator

        return Generator.load(self.settings.generator_model, self.settings.device)

    @property
    def library_dir(self) -> Path:
        return self.settings.library_dir

    @property
    def thumbs_dir(self) -> Path:
        return self.settings.data_dir / "thumbs"

    @property
    def uploads_dir(self) -> Path:
        return self.settings.data_dir / "uploads"

    # --- library -------------------------------------------------------------------------------

    def ingest(self, paths: list[str | Path], progress: Progress | None = None, keep_paths: bool = True
               ) -> IngestReport:
        """Add video files and folders to the library (content-addressed, idempotent)."""
        return ingest(paths, self.store, self.encoder, self.library_dir, progress=progress, keep_paths=keep_paths,
                      fingerprints=self.fingerprint_files)

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

    def resolve_id(self, video_id: str) -> str:
        """The full id of the library video an id or a unique prefix names (see `get`)."""
        return self.get(video_id).video_id

    def browse(self, filters: Filters | None = None, sort: str = "created_at", descending: bool = True,
               offset: int = 0, limit: int = 50) -> tuple[int, list[VideoRecord]]:
        """One page of the library, filtered and sorted, and how many videos match."""
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
        self.fingerprints.forget(record.video_id)
        for path in (self._library_file(record.uri), self._thumb_path(record.video_id),
                     self.fingerprint_files.path(record.video_id)):
            if path is not None:
                path.unlink(missing_ok=True)
        return record

    def video_path(self, video_id: str) -> Path:
        """The library file of a video: the path comes from the catalog only, and stays inside the library."""
        return self._file_of(self.get(video_id))

    def _file_of(self, record: VideoRecord) -> Path:
        path = self._library_file(record.uri)
        if path is None or not path.is_file():
            raise NotFound(f"the file of video {record.video_id} is missing from the library")
        return path

    def _library_file(self, uri: str) -> Path | None:
        root = self.library_dir.resolve()
        path = (root / uri).resolve()
        return path if path.parent == root else None

    def frame_at(self, video_id: str, t: float) -> tuple[np.ndarray, float]:
        """The frame of a library video shown at t seconds (within its duration), and its exact time."""
        return self._frame_at(self.get(video_id), t)

    def _frame_at(self, record: VideoRecord, t: float) -> tuple[np.ndarray, float]:
        _check_time(record, t)
        return read_frame_at(self._file_of(record), t)

    def thumbnail(self, video_id: str, t: float | None = None) -> bytes:
        """A PNG of the frame at t (default: the middle), at most THUMB_SIDE a side; the default is cached."""
        record = self.get(video_id)
        cached = self._thumb_path(record.video_id)
        if t is None and cached.is_file():
            return cached.read_bytes()
        frame, _ = self._frame_at(record, record.duration_s / 2 if t is None else t)
        png = png_bytes(frame, THUMB_SIDE)
        if t is None:
            cached.parent.mkdir(parents=True, exist_ok=True)
            tmp = temp_path(cached.with_name(f"{cached.name}.{threading.get_ident()}"))
            tmp.write_bytes(png)
            tmp.replace(cached)
        return png

    def _thumb_path(self, video_id: str) -> Path:
        return self.thumbs_dir / f"{video_id}.png"

    def _library_files(self) -> list[Path]:
        """The files in the library folder, leaving out hidden ones (temp files of writes in progress)."""
        library = self.library_dir
        return [p for p in library.iterdir() if p.is_file() and not p.name.startswith(".")] if library.is_dir() else []

    def stats(self) -> dict:
        """Counts from the catalog and the bytes used by the library folder."""
        files = self._library_files()
        return {
            **self.store.stats(),
            "library_dir": str(self.library_dir),
            "library_files": len(files),
            "library_bytes": sum(p.stat().st_size for p in files),
            "milvus_uri": self.settings.resolved_milvus_uri,
            "generator": self.settings.generator_model,
        }

    @library_wide("repair")
    def repair(self, min_age_s: float = ORPHAN_FILE_AGE_S) -> dict:
        """Remove what interrupted work left behind, and report videos whose file is gone.

        Vectors with no video row (an add or a delete that died half-way), and library files and
        kept fingerprints that no record names (a save or an ingest that died before its commit,
        a kill -9 during an upload). Every such file is listed; those at least `min_age_s` old are
        removed: a caller that holds the library (the CLI, with no API running) passes 0, as
        nothing else can be writing; the default leaves files young enough to be a write in
        progress. Records kept out of the catalog by a re-index count: a re-index that died
        half-way is finished first (`reindex`), and files kept in `reindex-failed.json` stay. Rows
        whose file is missing are only reported: a library on a share may be away for a while
        (delete them with DELETE /videos/{id}).
        """
        if self._reindex_pending.is_file():
            raise ValueError(f"a re-index is unfinished ({self._reindex_pending}); run `reelbase reindex` first")
        orphaned_vectors = self.store.delete_orphans()
        records = list(self.store.iter_videos())
        kept = records + _read_records(self._reindex_failed)
        named, ids = {r.uri for r in kept}, {r.video_id for r in kept}
        stray = [p for p in self._library_files() if p.name not in named]
        stray_fingerprints = [p for p in self.fingerprint_files.files() if p.stem not in ids]
        removed = {p for p in stray + stray_fingerprints if _age_s(p) >= min_age_s}
        for path in removed:
            path.unlink(missing_ok=True)
        for path in removed.intersection(stray):
            self._thumb_path(path.stem).unlink(missing_ok=True)
        missing = [r.video_id for r in records if not (self._library_file(r.uri) or Path("/nonexistent")).is_file()]
        return {"orphaned_vectors": orphaned_vectors,
                "stray_files": sorted(p.name for p in stray if p in removed),
                "stray_fingerprints": sorted(p.name for p in stray_fingerprints if p in removed),
                "stray_files_left": sorted(p.name for p in stray + stray_fingerprints if p not in removed),
                "missing_files": missing}

    @library_wide("re-index")
    def reindex(self, progress: Callable[[int, int], None] | None = None) -> dict:
        """Re-embed every library video with this service's CLIP model, keeping each record as it was.

        With the same model the vectors are replaced in place. After a model change the old
        vectors are worthless: the records are saved to a file in the data folder, the
        collections dropped, and every file embedded again; a run that dies half-way resumes
        from that file when run again. A video whose file cannot be read keeps its record in
        `reindex-failed.json`, out of the catalog, and the next re-index tries it again.
        """
        records = _read_records(self._reindex_failed) + self._records_to_reindex()
        records = list({r.video_id: r for r in records}.values())  # the catalog's record wins
        done, failed, kept = 0, [], []
        with FrameReader(rate=INDEX_RATE, fingerprint=(thumbnails.RATE, thumbnails.MAX_FRAMES)) as reader:
            paths = (self._library_file(r.uri) or Path("/nonexistent") for r in records)
            for record, result in zip(records, reader.read(paths)):
                if isinstance(result, BadVideo):
                    failed.append({"video_id": record.video_id, "reason": result.reason})
                    if self.store.get_video(record.video_id) is None:  # not in the catalog: keep its record
                        kept.append(record)
                else:
                    self.fingerprint_files.write(record.video_id, result.fingerprint_frames, result.fingerprint_times)
                    self._index(record, result.frames, result.indices, result.times)
                    done += 1
                if progress:
                    progress(done + len(failed), len(records))
        _write_records(self._reindex_failed, kept)  # before the resume file goes: a crash between loses nothing
        self._reindex_pending.unlink(missing_ok=True)
        return {"reindexed": done, "failed": failed, "model": self.encoder.name}

    @property
    def _reindex_pending(self) -> Path:
        return self.settings.data_dir / "reindex-records.json"

    @property
    def _reindex_failed(self) -> Path:
        return self.settings.data_dir / "reindex-failed.json"

    def _records_to_reindex(self) -> list[VideoRecord]:
        """The catalog's records; after a model change, saved to the resume file and the catalog dropped."""
        pending = self._reindex_pending
        if pending.is_file():
            log.info("resuming an interrupted re-index from %s", pending)
        else:
            try:
                return list(self.store.iter_videos())
            except ModelMismatch as exc:
                log.info("%s; re-indexing every video with %s", exc, self.settings.clip_model)
                _write_records(pending, read_catalog(self.settings.resolved_milvus_uri, self.settings.milvus_token))
        try:  # the drop may not have finished before the last run died
            self.store  # noqa: B018
        except ModelMismatch:
            drop_catalog(self.settings.resolved_milvus_uri, self.settings.milvus_token)
        return _read_records(pending)

    def close_store(self) -> None:
        if "store" in self.__dict__:
            self.__dict__.pop("store").close()

    # --- generation ----------------------------------------------------------------------------

    def generate(self, params: GenerationParams, callback: Callable[[int, int], bool | None] | None = None,
                 on_saving: Callable[[str], None] | None = None) -> VideoRecord:
        """Run one generation (any mode), save the clip into the library and index it.

        `on_saving(video_id)` is told the clip's id before its file enters the library, so a
        process killed while saving can be repaired by `recover_clip` at the next start.
        """
        g = self.generator
        common = dict(negative_prompt=params.negative_prompt, seed=params.seed, steps=params.steps,
                      guidance=params.guidance, callback=callback)
        with self._generate_lock:  # one clip at a time per model
            if params.mode == "text":
                clip = g.generate(params.prompt, frames=params.frames, **common)
            elif params.mode == "animate":

                frame, _ = self.frame_at(params.video_id, params.t)
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
        """A library clip this service's generator already made with exactly these parameters, if any (a seed
        makes a clip reproducible, so making it again would only add a copy)."""
        expression = f"source == {quote('generated')} and prompt == {quote(params.prompt)}"
        _, records = self.store.browse(filter=expression, limit=MAX_SAME_PROMPT)
        job = params.model_dump(mode="json")
        return next((r for r in records if r.meta.get("job") == job
                     and r.meta.get("model") == self.settings.generator_model), None)

    def check_source(self, params: GenerationParams) -> None:
        """Raise NotFound or ValueError now, not in a failed job later, if the source video or time is wrong."""
        if params.video_id:
            _check_time(self.get(params.video_id), params.t)

    def _source_frames(self, video_id: str, start: float = 0.0, end: float | None = None,
                       count: int | None = None) -> np.ndarray:
        """Frames of a library video at the generator's size and rate: `count` from `start` (a short source
        holds its last frame), or those up to `end` (its last CONTINUE_FROM_S seconds). Only these are decoded."""
        from generator.world import FPS

        record = self.get(video_id)
        if end is not None:
            _check_time(record, end)
            start = max(0.0, end - CONTINUE_FROM_S)
        else:
            _check_time(record, start)
            end = start + (count - 1) / FPS
        frames, _ = read_span(self._file_of(record), start, end, FPS, max_side=self.generator.frame_size)
        return square_frames(frames, self.generator.frame_size)

    def add_clip(self, frames: np.ndarray, fps: float, prompt: str, meta: dict, parent_id: str = "",
                 on_saving: Callable[[str], None] | None = None) -> VideoRecord:
        """Save generated frames into the library as an mp4 and index them (frames and prompt)."""
        self.library_dir.mkdir(parents=True, exist_ok=True)
        tmp = write_mp4(temp_path(self.library_dir / f"generating-{threading.get_ident()}.mp4"), frames, int(fps))
        video_id = content_id(tmp)
        if on_saving:
            on_saving(video_id)
        path = self.library_dir / f"{video_id}.mp4"
        tmp.replace(path)
        existing = self.store.get_video(video_id)
        if existing is not None:  # the same parameters made the same bytes
            return existing
        T, H, W = frames.shape[:3]
        record = VideoRecord(video_id=video_id, uri=path.name, source="generated", prompt=prompt, parent_id=parent_id,
                             duration_s=T / fps, fps=float(fps), width=W, height=H, num_frames=T,
                             created_at=time.time(), meta=meta)
        shown = sample_indices(T, fps, thumbnails.RATE, thumbnails.MAX_FRAMES)  # the fingerprint's, as a reader samples
        self.fingerprint_files.write(video_id, thumbnails.thumbnails(frames[shown]), shown / fps)
        indices = sample_indices(T, fps, INDEX_RATE)
        self._index(record, frames[indices], indices, indices / fps)
        return record

    def recover_clip(self, video_id: str) -> bool:
        """After a crash while saving a generated clip: True if it was saved completely, else
        remove what part of it was written (its file and any vectors) and return False."""
        if self.store.has_video(video_id):  # the commit marker is there: complete
            return True
        self.store.delete_video(video_id)  # frames, prompt or descriptor written before the crash
        (self.library_dir / f"{video_id}.mp4").unlink(missing_ok=True)
        self.fingerprint_files.delete(video_id)
        log.info("removed the half-saved clip %s", video_id)
        return False

    def _index(self, record: VideoRecord, frames: np.ndarray, indices, times) -> None:
        """Embed frames (and the prompt of a generated video) and write the video's rows."""
        from indexer.fingerprint import describe

        embeddings = self.encoder.encode_images(frames)
        prompt = self.encoder.encode_text(record.prompt) if record.source == "generated" and record.prompt else None
        self.store.add_videos([VideoEntry(record, list(map(int, indices)), list(map(float, times)), embeddings,
                                          prompt, describe(frames))])

    # --- queries -------------------------------------------------------------------------------

    def search_text(self, text: str, top_k: int = 10, filters: Filters | None = None, offset: int = 0
                    ) -> list[VideoHit]:
        """Videos whose frames best match the text, one hit per video."""
        if not text.strip():
            raise ValueError("the search text is empty")
        return self._search(self.encoder.encode_text(text), top_k, filters, offset)

    def search_image(self, image: np.ndarray, top_k: int = 10, filters: Filters | None = None, offset: int = 0
                     ) -> list[VideoHit]:
        """Videos with frames most like an image ((H, W, 3) uint8)."""
        return self._search(self.encoder.encode_images(np.asarray(image)[None])[0], top_k, filters, offset)

    def search_frame(self, video_id: str, t: float, top_k: int = 10, filters: Filters | None = None,
                     offset: int = 0) -> list[VideoHit]:
        """Videos with frames most like the frame of a library video at t."""
        frame, _ = self.frame_at(video_id, t)
        return self.search_image(frame, top_k, filters, offset)

    def similar(self, video_id: str, top_k: int = 10,
                filters: Filters | None = None) -> list[tuple[VideoRecord, float]]:
        """The videos nearest to a library video by their video embeddings, itself left out."""
        video_id = self.resolve_id(video_id)
        query = self.store.video_embedding(video_id)
        hits = self.store.search_videos(query, top_k + 1, (filters or Filters()).expression())
        return [(r, s) for r, s in hits if r.video_id != video_id][:top_k]

    def search_prompts(self, text: str, top_k: int = 10) -> list[tuple[VideoRecord, float]]:
        """Generated videos whose prompts mean something close to the text."""
        if not text.strip():
            raise ValueError("the search text is empty")
        return self.store.search_prompts(self.encoder.encode_text(text), top_k)

    def _search(self, query: np.ndarray, top_k: int, filters: Filters | None, offset: int) -> list[VideoHit]:
        return self.store.search_frames(query, top_k=top_k, video_filter=(filters or Filters()).expression(),
                                        offset=offset)

    # --- near-duplicates -----------------------------------------------------------------------

    def duplicates_of_image(self, image: np.ndarray, threshold: float = duplicates.DEFAULT_THRESHOLD,
                            top_k: int = 10) -> list[DuplicateHit]:
        """Library videos holding a near-copy of the image, with the matching frame's time."""
        from indexer.fingerprint import describe, fingerprint

        image = np.asarray(image)
        query = fingerprint(image[None], [0.0])
        hits = self.store.search_frames(self.encoder.encode_images(image[None])[0], top_k=duplicates.CANDIDATES,
                                        frames_per_video=1)
        near = [(h.video.video_id, h.score) for h in hits]
        near += self.store.search_descriptors(describe(image[None]), duplicates.CANDIDATES)
        candidates = dict.fromkeys(v for v, s in near if s >= duplicates.MIN_CANDIDATE_SCORE)
        return self._verified(query, list(candidates), threshold)[:top_k]

    def duplicates_of_frame(self, video_id: str, t: float, threshold: float = duplicates.DEFAULT_THRESHOLD,
                            top_k: int = 10) -> list[DuplicateHit]:
        """Other library videos holding a near-copy of a library video's frame at t."""
        video_id = self.resolve_id(video_id)
        frame, _ = self.frame_at(video_id, t)
        hits = self.duplicates_of_image(frame, threshold, top_k + 1)
        return [h for h in hits if h.video.video_id != video_id][:top_k]

    def duplicates_of_video(self, video_id: str, threshold: float = duplicates.DEFAULT_THRESHOLD,
                            top_k: int = 10) -> list[DuplicateHit]:
        """Library videos that are near-copies of a library video (re-encoded, resized, cropped, trimmed, ...)."""
        record = self.get(video_id)
        query = self.fingerprints.get(record.video_id, self._file_of(record))
        return self._verified(query, self._candidates(record.video_id), threshold)[:top_k]

    def _candidates(self, video_id: str) -> list[str]:
        """Ids to verify against a library video: its nearest by CLIP embedding and by pixel descriptor."""
        near = [(r.video_id, s) for r, s in self.store.search_videos(self.store.video_embedding(video_id),
                                                                       duplicates.CANDIDATES + 1)]
        descriptor = self.store.descriptor_of(video_id)
        if descriptor is not None:
            near += self.store.search_descriptors(descriptor, duplicates.CANDIDATES + 1)
        return list(dict.fromkeys(v for v, s in near if v != video_id and s >= duplicates.MIN_CANDIDATE_SCORE))

    def _verified(self, query: Fingerprint, candidates: list[str], threshold: float) -> list[DuplicateHit]:
        from indexer.fingerprint import compare_many

        found = [(record, path) for record in self.store.get_videos(candidates).values()
                 if (path := self._library_file(record.uri)) is not None and path.is_file()]
        matches = compare_many(query, [self.fingerprints.get(r.video_id, path) for r, path in found], threshold)
        hits = [DuplicateHit(record, match.score, match.offset_s, match.pairs)
                for (record, _), match in zip(found, matches) if match.score >= threshold]
        return sorted(hits, key=lambda h: h.score, reverse=True)

    @library_wide("duplicate scan")
    def duplicate_groups(self, threshold: float = duplicates.DEFAULT_THRESHOLD,
                         progress: Callable[[int, int], None] | None = None) -> list[DuplicateGroup]:
        """Library-wide: groups of videos that are copies of each other, with their matching frame pairs."""
        records = {r.video_id: r for r in self.store.iter_videos()}
        files = {v: p for v, r in records.items() if (p := self._library_file(r.uri)) and p.is_file()}
        links, seen = [], set()
        for n, video_id in enumerate(sorted(files), 1):
            others = [o for o in self._candidates(video_id) if o in files and tuple(sorted((video_id, o))) not in seen]
            seen.update(tuple(sorted((video_id, o))) for o in others)
            for other, match in self._verify_pairs(video_id, others, files, threshold):
                if match.score >= threshold:
                    a, b = sorted((video_id, other))
                    links.append({"a": a, "b": b, "score": round(match.score, 4),
                                  "offset_s": round(match.offset_s, 4), "pairs": [vars(p) for p in match.pairs]})
            if progress:
                progress(n, len(files))
        groups = []
        for members in duplicates.group_pairs((link["a"], link["b"]) for link in links):
            inside = set(members)
            groups.append(DuplicateGroup([records[v] for v in members], [k for k in links if k["a"] in inside]))
        return groups

    def _verify_pairs(self, video_id: str, others: list[str], files: dict[str, Path], threshold: float) -> list:
        """(other, Match) for a video and each of `others`, compared as the pair sorted by id: those after it
        in one batch (`compare_many`), those before it (seldom: candidates are mostly mutual) one by one."""
        from indexer.fingerprint import compare, compare_many

        def fp(v: str) -> Fingerprint:
            return self.fingerprints.get(v, files[v])

        after = [o for o in others if o > video_id]
        matches = dict(zip(after, compare_many(fp(video_id), [fp(o) for o in after], threshold)))
        matches.update((o, compare(fp(o), fp(video_id), threshold)) for o in others if o < video_id)
        return [(o, matches[o]) for o in others]

    def _read_for_fingerprint(self, path: Path) -> tuple[np.ndarray, np.ndarray]:
        """A library file's fingerprint thumbnails and times, decoded as the ingest decodes them."""
        sampled = read_frames(path, rate=INDEX_RATE, fingerprint=(thumbnails.RATE, thumbnails.MAX_FRAMES))
        return sampled.fingerprint_frames, sampled.fingerprint_times

    # --- lifetime ------------------------------------------------------------------------------

    def close(self) -> None:
        self.close_store()

    def __enter__(self) -> Reelbase:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# --- helpers ---------------------------------------------------------------------------------------


def _id_prefix(video_id: str) -> str:
    """A video id or a prefix of one, lower-cased; ValueError unless it is MIN_ID_PREFIX..ID_LENGTH hex digits."""
    shown = video_id if len(video_id) <= ID_LENGTH + 8 else f"{video_id[:ID_LENGTH]}..."
    if not re.fullmatch(ID_PATTERN, video_id):
        if len(video_id) < MIN_ID_PREFIX and re.fullmatch("[0-9a-fA-F]*", video_id):
            raise ValueError(f"id prefix {shown!r} is too short: give at least {MIN_ID_PREFIX} hex digits of the id")
        raise ValueError(f"{shown!r} is not a video id: an id is {ID_LENGTH} hex digits (0-9, a-f), "
                         f"or its first {MIN_ID_PREFIX} or more")
    return video_id.lower()


def _check_time(record: VideoRecord, t: float) -> None:
    if not 0 <= t <= record.duration_s + 1e-6:
        raise ValueError(f"t must be within 0..{record.duration_s:.3f} s for video {record.video_id}, got {t}")


def _age_s(path: Path) -> float:
    """Seconds since the file was last written (infinite when it is gone already)."""
    try:
        return time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return float("inf")


def _read_records(path: Path) -> list[VideoRecord]:
    return [VideoRecord(**r) for r in json.loads(path.read_text())] if path.is_file() else []


def _write_records(path: Path, records: list[VideoRecord]) -> None:
    """The records as JSON (atomically), or no file when there are none."""
    if records:
        _write_atomic(path, json.dumps([r.to_dict() for r in records]))
    else:
        path.unlink(missing_ok=True)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def png_bytes(frame: np.ndarray, max_side: int | None = None) -> bytes:
    """A frame as PNG bytes, shrunk to at most max_side a side."""
    image = Image.fromarray(np.ascontiguousarray(frame))
    if max_side and max(image.size) > max_side:
        image.thumbnail((max_side, max_side))
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def _region_mask(region, shape: tuple[int, int]) -> np.ndarray:
    """A boolean (H, W) mask of a Region given in fractions of the frame."""
    h, w = shape
    mask = np.zeros((h, w), bool)
    top, left = round(region.y * h), round(region.x * w)
    mask[top:max(top + 1, round((region.y + region.height) * h)),
         left:max(left + 1, round((region.x + region.width) * w))] = True
    return mask
