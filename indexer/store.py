"""The catalog of reelbase: videos, their frames, prompts, pixel descriptors and windows, in Milvus.

`VideoStore` writes and reads them; a video is written frames (and windows) first and its `videos`
row last, the row marking it complete.

Windows are kept where a temporal model serves the CLIP model (`indexer.temporal_models`), and
only whole: the `windows` collection exists only while every committed video has its windows
from the temporal model it records. So it is made with a new catalog (a first ingest, a
re-index), and dropped when a video is written without windows (no temporal model, or another
one). Where there are none, `windows_notice` says why and what builds them.

The connection, schemas and indexes are in `indexer.milvus`, the record types in
`indexer.records`, and the paged search of frames and windows in `indexer.frame_search`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace

import numpy as np
from pymilvus import MilvusException

from indexer import milvus
from indexer.expressions import all_of, in_list, quote
from indexer.frame_search import search_frames
from indexer.identity import DESCRIPTOR_DIM, DESCRIPTOR_NAME
from indexer.lite_summary import write_summary
from indexer.milvus import BATCH, COLLECTIONS, LITE_MIN_EF, MAX_TOPK, MIN_EF, WINDOWS, StoreError
from indexer.records import SORTABLE, SOURCES, VIDEO_FIELDS, VideoEntry, VideoHit, VideoRecord, VideoWindows

log = logging.getLogger(__name__)


class VideoStore:
    """Videos, frames, prompts and pixel descriptors in four Milvus collections, windows in a fifth; the first
    three hold the vectors of one CLIP model, `clip_model` (its identity, `indexer.identity.model_identity`),
    the windows those of one temporal model, `temporal` (its identity and dim)."""

    def __init__(self, uri: str, *, clip_model: str, dim: int | Callable[[], int], token: str = "",
                 temporal: tuple[str, int] | None = None):
        """Open (or create) the collections for `clip_model`'s vectors of `dim`; `dim` may be a function
        (one that loads the model, say), called only when the store has no record of that model's dim.
        A catalog written under older collection names is renamed first. `temporal` is the temporal model
        that writes windows (None: none does)."""
        self.uri, self.clip_model, self.temporal = uri, clip_model, temporal
        self._client = milvus.connect(uri, token)
        self._closed = False
        self._deleted_since_write: set[str] = set()  # see _read
        self.server_version = self._client.get_server_version()
        self.group_by = milvus.supports_group_by(self.server_version)
        self._lite = milvus.is_lite(uri)
        try:
            milvus.rename_old_collections(self._client)
            self.dim = self._dim(dim)
            for name in COLLECTIONS:
                milvus.open_collection(self._client, uri, name, self._writer(name))
            self.windows_notice = self._open_windows()
        except BaseException:
            self._client.close()
            raise
        # Lite's AUTOINDEX is HNSW when faiss-cpu is installed (else brute force, which ignores ef)
        self._min_ef = LITE_MIN_EF if self._lite else MIN_EF if self._client.describe_index(
            "frames", "embedding")["index_type"] == "HNSW" else None
        log.info("opened %s (%s, group-by %s) for CLIP model %r dim %d",
                 uri, self.server_version, self.group_by, clip_model, self.dim)

    # --- collections ---

    def _dim(self, dim: int | Callable[[], int]) -> int:
        """The CLIP vectors' dim: as given, else as this model recorded it in the store, else dim()."""
        if not callable(dim):
            return int(dim)
        c = self._client
        record = milvus.model_record(c.describe_collection("videos")) if c.has_collection("videos") else None
        return record[1] if record and record[0] == self.clip_model else int(dim())

    def _writer(self, name: str) -> tuple[str, int]:
        """The (model, dim) that writes a collection: CLIP for all but the pixel descriptors and windows."""
        if name == WINDOWS:
            return self.temporal
        return (DESCRIPTOR_NAME, DESCRIPTOR_DIM) if name == "descriptors" else (self.clip_model, self.dim)

    def _open_windows(self) -> str | None:
        """Open the windows where they are whole and written by this store's temporal model; else None is
        returned for them, with the notice of why there are none (and what builds them)."""
        c, temporal = self._client, self.temporal
        exists = c.has_collection(WINDOWS)
        record = milvus.model_record(c.describe_collection(WINDOWS)) if exists else None
        self._stale_windows = exists and (temporal is None or record != temporal)
        if temporal is None:
            return (f"no temporal model serves the CLIP model {self.clip_model}, so text search matches single "
                    "frames and cannot tell motion (train one: `reelbase train clip --data DIR` on captioned videos)")
        if exists and record != temporal:
            return (f"the catalog's windows were made by the temporal model {record[0] if record else 'unknown'}, "
                    f"not {temporal[0]}: text search matches single frames until `reelbase reindex` makes them again")
        if not exists and self._count("videos"):
            return ("this catalog was indexed without windows (no temporal model then): text search matches single "
                    "frames and cannot tell motion until `reelbase reindex` makes them")
        milvus.open_collection(c, self.uri, WINDOWS, temporal)
        return None

    def make_windows(self) -> None:
        """Start the windows afresh where the catalog has none of this store's temporal model (or another's):
        for a re-index, which then writes every video with its windows."""
        if self.temporal is None or self.has_windows:
            return
        if self._client.has_collection(WINDOWS):
            self._client.drop_collection(WINDOWS)
        self._stale_windows = False
        milvus.open_collection(self._client, self.uri, WINDOWS, self.temporal)
        self.windows_notice = None
        log.info("made the windows collection for the temporal model %s", self.temporal[0])

    @property
    def has_windows(self) -> bool:
        """Whether every video's windows are here, from this store's temporal model."""
        return self.windows_notice is None

    def _collections(self) -> tuple[str, ...]:
        """The collections this store writes and reads."""
        return (*COLLECTIONS, WINDOWS) if self.has_windows else COLLECTIONS

    def optimize(self) -> None:
        """Make searches fast over everything written so far; searches fail while it runs.

        Milvus Lite indexes only the rows present when an index is built and scans the rest
        (at 20k frames a search takes 54 ms instead of 18), so on Lite each collection's index is
        rebuilt: flush, release, drop, build, load. A crash between drop and build is repaired
        when the store is next opened. A server indexes new segments itself; it is asked to
        merge small segments (it re-indexes them in the background).
        """
        for name in self._collections():
            if self._lite:
                self._client.flush(name)
                self._client.release_collection(name)
                self._client.drop_index(name, "embedding")
                milvus.create_vector_index(self._client, self.uri, name, wait=True)
                self._client.load_collection(name)
            else:
                self._client.compact(name)
        log.debug("optimized the indexes of %s", self.uri)

    # --- writing ---

    def _upsert(self, name: str, rows: list[dict]) -> None:
        self._client.upsert(name, rows)
        self._deleted_since_write.discard(name)  # this write's timestamp is later than any delete

    def _delete(self, name: str, **where) -> None:
        self._client.delete(name, **where)
        self._deleted_since_write.add(name)

    def _read(self, name: str) -> dict:
        """The consistency of a search or record lookup in a collection.

        Session: this process sees its own writes, and a Milvus server answers at once instead of
        waiting for its next time tick (200 ms by default) as a Strong read does. But Milvus 2.3
        returns no timestamp for a delete, so after one the collection is read Strong until the
        next write. Counts, iterations and the ingest's commit check are always Strong (the
        collections' level): repairs must see other processes' writes too. Lite ignores levels.
        """
        return {"consistency_level": "Strong" if name in self._deleted_since_write else "Session"}

    def add_video(self, record: VideoRecord, frame_indices: Sequence[int],
                  frame_times: Sequence[float], frame_embeddings: np.ndarray,
                  prompt_embedding: np.ndarray | None = None, windows: VideoWindows | None = None) -> None:
        """Write frames (and windows), then the prompt, then the video row, which marks the video complete."""
        self.add_videos([VideoEntry(record, frame_indices, frame_times, frame_embeddings, prompt_embedding,
                                    windows=windows)])

    def add_videos(self, entries: Sequence[VideoEntry]) -> None:
        """Add several videos in a few calls: all frames, then prompts, then the video rows last."""
        entries = [self._checked(e) for e in entries]
        if not entries:
            return
        self._write_frames([(e.record.video_id, e.frame_indices, e.frame_times, e.frame_embeddings) for e in entries])
        self._write_windows(entries)
        with_prompt = [e for e in entries if e.prompt_embedding is not None]
        without = [e.record.video_id for e in entries if e.prompt_embedding is None]
        if without:
            self._delete("prompts", ids=without)
        if with_prompt:
            self._upsert("prompts", [
                {"video_id": e.record.video_id, "prompt": e.record.prompt,
                 "embedding": np.asarray(e.prompt_embedding, dtype=np.float32).reshape(-1).tolist()}
                for e in with_prompt])
        with_descriptor = [e for e in entries if e.descriptor is not None]
        if undescribed := [e.record.video_id for e in entries if e.descriptor is None]:
            self._delete("descriptors", ids=undescribed)
        if with_descriptor:
            self._upsert("descriptors", [
                {"video_id": e.record.video_id, "embedding": np.asarray(e.descriptor, np.float32).reshape(-1).tolist()}
                for e in with_descriptor])
        rows = [e.record.to_dict() | {"embedding": _unit(e.frame_embeddings.mean(axis=0)).tolist()} for e in entries]
        for i in range(0, len(rows), BATCH):
            self._upsert("videos", rows[i:i + BATCH])  # last: the commit markers
        self._seal()
        log.debug("added %d videos", len(entries))

    def _seal(self) -> None:
        """On Lite, seal what was just written: Lite scans unsealed rows slowly (at 20k frames a
        search took 892 ms unsealed, 54 ms sealed), and sealing each batch also ingests faster."""
        if self._lite:
            for name in self._collections():
                self._client.flush(name)

    def _checked(self, entry: VideoEntry) -> VideoEntry:
        """The entry with float32 embeddings, or ValueError on a bad source or shapes."""
        emb = np.asarray(entry.frame_embeddings, dtype=np.float32)
        if entry.record.source not in SOURCES:
            raise ValueError(f"source must be one of {SOURCES}, not {entry.record.source!r}")
        n = len(entry.frame_indices)
        if not n or emb.shape != (n, self.dim) or len(entry.frame_times) != n:
            raise ValueError(f"need N >= 1 frame indices, N times and (N, {self.dim}) embeddings; "
                             f"got {n}, {len(entry.frame_times)} and {emb.shape}")
        windows = entry.windows
        if self.has_windows and windows is None:
            raise ValueError("this catalog keeps windows: the entry needs its windows from the temporal model "
                             f"{self.temporal[0]}")
        if windows is not None and (not len(windows.indices) or
                                    np.shape(windows.vectors) != (len(windows.indices), self.temporal[1])):
            raise ValueError(f"need W >= 1 windows with (W, {self.temporal[1]}) vectors, "
                             f"got {len(windows.indices)} and {np.shape(windows.vectors)}")
        return replace(entry, frame_embeddings=emb)

    def _write_frames(self, videos: list[tuple[str, Sequence[int], Sequence[float], np.ndarray]]) -> None:
        """Replace the frames of these videos: drop what an earlier write left, then insert by deterministic key."""
        self._delete_frames([video_id for video_id, *_ in videos])
        rows = [{"frame_id": f"{video_id}:{int(i)}", "video_id": video_id, "index": int(i), "t": float(t),
                 "embedding": e.tolist()}
                for video_id, indices, times, emb in videos for i, t, e in zip(indices, times, emb, strict=True)]
        for i in range(0, len(rows), BATCH):
            self._upsert("frames", rows[i:i + BATCH])

    def _write_windows(self, entries: list[VideoEntry]) -> None:
        """Replace the windows of these videos where the catalog keeps windows; where it holds windows that
        it no longer keeps whole (another temporal model's, or none serves), drop them (see the module)."""
        if self._stale_windows:
            self._client.drop_collection(WINDOWS)
            self._stale_windows = False
            log.info("dropped the windows of another temporal model; `reelbase reindex` makes them again")
        if not self.has_windows:
            return
        self._delete_windows([e.record.video_id for e in entries])
        rows = [{"window_id": f"{e.record.video_id}:{int(i)}", "video_id": e.record.video_id, "index": int(i),
                 "t": float(t), "end": float(end), "embedding": np.asarray(v, np.float32).tolist()}
                for e in entries
                for i, t, end, v in zip(e.windows.indices, e.windows.start_times, e.windows.end_times,
                                        e.windows.vectors, strict=True)]
        for i in range(0, len(rows), BATCH):
            self._upsert(WINDOWS, rows[i:i + BATCH])

    def _delete_windows(self, video_ids: list[str]) -> None:
        if self.has_windows:
            for i in range(0, len(video_ids), BATCH):
                self._delete(WINDOWS, filter=in_list("video_id", video_ids[i:i + BATCH]))

    def delete_video(self, video_id: str) -> None:
        """Delete the video row first (so a crash leaves only orphans), then frames, windows and prompt."""
        self._delete("videos", ids=[video_id])
        self._delete_frames([video_id])
        self._delete_windows([video_id])
        self._delete("prompts", ids=[video_id])
        self._delete("descriptors", ids=[video_id])

    def _delete_frames(self, video_ids: list[str]) -> None:
        """Delete every frame of these videos, a batch of ids per call."""
        for i in range(0, len(video_ids), BATCH):
            self._delete("frames", filter=in_list("video_id", video_ids[i:i + BATCH]))

    def orphan_frame_video_ids(self) -> set[str]:
        """Return ids with frames, a prompt or a descriptor but no video row, as an interrupted add leaves."""
        names = ["frames", "prompts", "descriptors"] + ([WINDOWS] if self.has_windows else [])
        ids = set().union(*(self._video_ids_in(name) for name in names))
        return ids - set(self.get_videos(sorted(ids)))

    def delete_orphans(self) -> int:
        """Delete frames and prompts whose video row is absent; return how many videos they were."""
        orphans = sorted(self.orphan_frame_video_ids())
        self._delete_frames(orphans)
        self._delete_windows(orphans)
        for i in range(0, len(orphans), BATCH):
            self._delete("prompts", ids=orphans[i:i + BATCH])
            self._delete("descriptors", ids=orphans[i:i + BATCH])
        if orphans:
            log.info("deleted frames and prompts of %d orphaned videos", len(orphans))
        return len(orphans)

    # --- reading ---

    def has_video(self, video_id: str) -> bool:
        """Return whether the video row (the commit marker) exists."""
        return bool(self._client.get("videos", ids=[video_id], output_fields=["video_id"]))

    def get_video(self, video_id: str) -> VideoRecord | None:
        """Return one video record, or None."""
        return self.get_videos([video_id]).get(video_id)

    def get_videos(self, ids: list[str], strong: bool = False) -> dict[str, VideoRecord]:
        """Return the records that exist among ids, by id; `strong` sees other processes' latest writes."""
        found: dict[str, VideoRecord] = {}
        read = {"consistency_level": "Strong"} if strong else self._read("videos")
        for i in range(0, len(ids), BATCH):
            rows = self._client.get("videos", ids=list(ids[i:i + BATCH]), output_fields=VIDEO_FIELDS, **read)
            found.update((r["video_id"], VideoRecord.from_row(r)) for r in rows)
        return found

    def videos_with_prefix(self, prefix: str, limit: int) -> list[VideoRecord]:
        """Return up to `limit` video records whose id starts with `prefix` (hex digits), in id order."""
        if not re.fullmatch(r"[0-9a-f]+", prefix):  # nothing for `like` to read as a wildcard
            raise ValueError(f"an id prefix is hex digits, not {prefix!r}")
        rows = self.query_rows("videos", f"video_id like {quote(prefix + '%')}", VIDEO_FIELDS, limit=limit)
        return sorted(map(VideoRecord.from_row, rows), key=lambda r: r.video_id)

    def iter_videos(self, batch: int = BATCH) -> Iterator[VideoRecord]:
        """Yield every video record, batch rows per round trip."""
        for rows in self._iterate("videos", VIDEO_FIELDS, batch):
            yield from map(VideoRecord.from_row, rows)

    def list_videos(self, offset: int = 0, limit: int = 50, filter: str = "") -> list[VideoRecord]:
        """Return one page of video records matching filter, in the order Milvus keeps them."""
        rows = self.query_rows("videos", filter, VIDEO_FIELDS, offset=offset, limit=limit)
        return [VideoRecord.from_row(r) for r in rows]

    def browse(self, filter: str = "", sort: str = "created_at", descending: bool = True,
               offset: int = 0, limit: int = 50) -> tuple[int, list[VideoRecord]]:
        """Return (how many match, one page of them sorted by a field); sorted here, as Milvus 2.3 cannot."""
        if sort not in SORTABLE:
            raise ValueError(f"sort must be one of {SORTABLE}, not {sort!r}")
        keys = [(r[sort], r["video_id"]) for rows in self._iterate("videos", ["video_id", sort], BATCH, filter)
                for r in rows]
        keys.sort(reverse=descending)
        page = [video_id for _, video_id in keys[offset:offset + limit]]
        records = self.get_videos(page)
        return len(keys), [records[v] for v in page if v in records]

    def matching_ids(self, ids: Sequence[str], filter: str) -> set[str]:
        """Return those of ids whose video row matches filter."""
        found: set[str] = set()
        for i in range(0, len(ids), BATCH):
            expr = all_of(in_list("video_id", list(ids[i:i + BATCH])), filter)
            rows = self.query_rows("videos", expr, ["video_id"])
            found |= {r["video_id"] for r in rows}
        return found

    def children_of(self, video_id: str) -> list[VideoRecord]:
        """Return the videos re-seeded from this one."""
        rows = self.query_rows("videos", f"parent_id == {quote(video_id)}", VIDEO_FIELDS, limit=MAX_TOPK)
        return [VideoRecord.from_row(r) for r in rows]

    def video_embedding(self, video_id: str) -> np.ndarray | None:
        """Return the stored video embedding (mean of its frames), or None for an unknown id."""
        rows = self._client.get("videos", ids=[video_id], output_fields=["embedding"], **self._read("videos"))
        return np.asarray(rows[0]["embedding"], dtype=np.float32) if rows else None

    def video_windows_mean(self, video_id: str) -> np.ndarray:
        """The unit mean of a video's window vectors (where the catalog keeps windows)."""
        rows = self.query_rows(WINDOWS, f"video_id == {quote(video_id)}", ["embedding"], limit=MAX_TOPK)
        if not rows:
            raise StoreError(f"video {video_id} has no windows")
        return _unit(np.asarray([r["embedding"] for r in rows], np.float32).mean(axis=0))

    def search_frames(self, query: np.ndarray, top_k: int = 10, frames_per_video: int = 3,
                      filter: str = "", *, video_filter: str = "", offset: int = 0) -> list[VideoHit]:
        """Find the videos whose frames best match query, one hit per video, best first: a page of `top_k`
        after `offset`, pages never overlapping (`indexer.frame_search`). `filter` is an expression over
        frame fields, `video_filter` one over video fields."""
        return search_frames(self, query, top_k, frames_per_video, filter, video_filter, offset)

    def search_windows(self, query: np.ndarray, top_k: int = 10, windows_per_video: int = 3, *,
                       video_filter: str = "", offset: int = 0) -> list[VideoHit]:
        """Find the videos whose windows best match query (a temporal model's text vector), one hit per video,
        best first, in pages as `search_frames`; only where the catalog keeps windows (`has_windows`)."""
        if not self.has_windows:
            raise StoreError(self.windows_notice)
        return search_frames(self, query, top_k, windows_per_video, "", video_filter, offset, collection=WINDOWS)

    def search_videos(self, query: np.ndarray, top_k: int = 10, filter: str = "") -> list[tuple[VideoRecord, float]]:
        """Find videos by their video embeddings (the mean of their frames): (record, score), best first."""
        rows = self.search_rows("videos", query, min(top_k, MAX_TOPK), filter, VIDEO_FIELDS)
        return [(VideoRecord.from_row(r["entity"]), float(r["distance"])) for r in rows]

    def descriptor_of(self, video_id: str) -> np.ndarray | None:
        """Return a video's stored pixel descriptor, or None (unknown id, or indexed before descriptors)."""
        rows = self._client.get("descriptors", ids=[video_id], output_fields=["embedding"],
                                **self._read("descriptors"))
        return np.asarray(rows[0]["embedding"], dtype=np.float32) if rows else None

    def search_descriptors(self, query: np.ndarray, top_k: int = 10) -> list[tuple[str, float]]:
        """Find videos by pixel descriptor: (video_id, score), best first."""
        rows = self.search_rows("descriptors", query, min(top_k, MAX_TOPK), "", ["video_id"])
        return [(r["entity"]["video_id"], float(r["distance"])) for r in rows]

    def search_prompts(self, query: np.ndarray, top_k: int = 10) -> list[tuple[VideoRecord, float]]:
        """Find generated videos whose prompts' text embeddings are nearest: (record, score), best first."""
        rows = self.search_rows("prompts", query, min(top_k, MAX_TOPK), "", ["video_id"])
        scores = {r["entity"]["video_id"]: float(r["distance"]) for r in rows}
        records = self.get_videos(list(scores))
        return sorted(((records[v], s) for v, s in scores.items() if v in records), key=lambda h: h[1], reverse=True)

    # --- rows, for the frame search ---

    def query_rows(self, name: str, filter: str, fields: list[str], **window) -> list[dict]:
        """The rows of a collection that match filter, with `fields` (a `limit` and `offset` in window)."""
        return self._client.query(name, filter=filter, output_fields=fields, **window, **self._read(name))

    def dim_of(self, name: str) -> int:
        """The dim of a collection's vectors."""
        return self._writer(name)[1]

    def search_rows(self, name: str, query: np.ndarray, limit: int, filter: str, fields: list[str], **extra) -> list:
        """One cosine search of a collection's embeddings: raw hits (`distance`, `entity` with `fields`)."""
        q = np.asarray(query, dtype=np.float32).reshape(-1)
        dim = self.dim_of(name)
        if q.size != dim:
            raise ValueError(f"need a query of dim {dim}, got {q.size}")
        params = {"metric_type": "COSINE"}
        if self._min_ef:
            params["params"] = {"ef": max(self._min_ef, limit)}  # HNSW needs ef >= limit
        return self._client.search(name, data=[q.tolist()], anns_field="embedding", limit=limit, filter=filter,
                                   search_params=params, output_fields=fields, **self._read(name), **extra)[0]

    # --- counting ---

    def count_videos(self) -> int:
        """Return the number of committed videos."""
        return self._count("videos")

    def count_frames(self) -> int:
        """Return the number of frame rows."""
        return self._count("frames")

    def stats(self) -> dict:
        """Return counts of videos by source, frames, prompts and windows, and the models' records (the fields
        `indexer.lite_summary.STATS_FIELDS` names, which a summary of a Lite catalog keeps)."""
        by_source = {s: self._count("videos", f"source == {quote(s)}")
                     for s in SOURCES}
        return {"videos": sum(by_source.values()), "videos_by_source": by_source,
                "frames": self.count_frames(), "prompts": self._count("prompts"),
                "windows": self._count(WINDOWS) if self.has_windows else 0,
                "model": self.clip_model, "dim": self.dim, "temporal_model": self.temporal and self.temporal[0],
                "server": self.server_version}

    def _count(self, name: str, filter: str = "") -> int:
        """Count rows matching filter with a strongly consistent count(*)."""
        rows = self._client.query(name, filter=filter, output_fields=["count(*)"])
        return int(rows[0]["count(*)"])

    def _iterate(self, name: str, output_fields: list[str], batch: int, filter: str = "") -> Iterator[list[dict]]:
        """Yield all rows of a collection (matching filter) in primary-key pages."""
        return milvus.pages(self._client, name, output_fields, batch, filter)

    def _video_ids_in(self, name: str) -> set[str]:
        """Return the distinct video ids in the frames, windows, prompts or descriptors collection."""
        return {r["video_id"] for rows in self._iterate(name, ["video_id"], BATCH) for r in rows}

    # --- lifetime ---

    def close(self) -> None:
        """Flush Milvus Lite's segments to disk, leave its stats beside it, and close the client; a second call
        does nothing."""
        if self._closed:
            return
        self._seal()  # Lite's writes already survive a kill in its WAL
        if self._lite:
            self._keep_summary()
        self._client.close()
        self._closed = True

    def _keep_summary(self) -> None:
        """Leave the catalog's stats beside it for the next `reelbase stats` (`indexer.lite_summary`), counted and
        signed while this process still holds it, so that nothing changes it in between."""
        try:
            write_summary(self.uri, (self.clip_model, self.temporal), self.stats())
        except (MilvusException, OSError) as exc:  # only a shortcut is lost: the next `stats` opens the catalog
            log.warning("could not keep the stats of %s beside it: %s", self.uri, exc)

    def __enter__(self) -> VideoStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _unit(v: np.ndarray) -> np.ndarray:
    """Return v scaled to unit length (zero stays zero)."""
    n = float(np.linalg.norm(v))
    return v / n if n > 0 else v
