"""The Milvus catalog of reelbase: videos, their frames and prompts, on Lite, a server or Zilliz."""

from __future__ import annotations

import itertools
import json
import logging
import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields, replace

import numpy as np
from pymilvus import DataType, MilvusClient, MilvusException

from indexer.expressions import in_list
from indexer.expressions import quote as _quote
from indexer.identity import DESCRIPTOR_DIM, DESCRIPTOR_NAME

log = logging.getLogger(__name__)
# Milvus Lite has no server timestamp for iterators; pymilvus warns on every one and uses its own, which is right
logging.getLogger("pymilvus.client.iterator.query_iterator").setLevel(logging.ERROR)

COLLECTIONS = ("videos", "frames", "prompts", "fingerprints")
SOURCES = ("generated", "ingested")
MODEL_KEY, DIM_KEY = "reelbase.model", "reelbase.dim"  # the model record, in collection properties
MAX_TOPK = 16384  # Milvus' limit on search and query result windows
BATCH = 1000  # rows per write or id lookup, well under gRPC message limits
HNSW_BUILD = {"M": 16, "efConstruction": 200}  # the frame index on a Milvus server
MIN_EF = 128  # HNSW search breadth on a server; bench/scale.py, 1M frames: recall 0.93 at 64, 0.995 at 128, same 2 ms
LITE_MIN_EF = 256  # Lite's search time hardly grows with ef (bench: 12.8 ms at 64, 14.8 at 256) and recall does
ROUND_VIDEOS = 16  # videos the first round of a frame search asks for; each next round asks twice as many
EXACT_ROWS = MAX_TOPK - 1  # frames a search scores exactly when the index search starves on a narrow filter
IDS_IN_FILTER = 2000  # a video filter keeping at most this many videos becomes a list of ids in the frame filter
SORTABLE = ("created_at", "duration_s", "num_frames", "width", "height", "fps")


@dataclass
class VideoRecord:
    """One row of the `videos` collection, without its embedding."""

    video_id: str
    uri: str
    source: str  # "generated" | "ingested"
    prompt: str = ""
    parent_id: str = ""  # the video this one was re-seeded from
    duration_s: float = 0.0
    fps: float = 0.0
    width: int = 0
    height: int = 0
    num_frames: int = 0
    created_at: float = 0.0  # unix seconds
    meta: dict = field(default_factory=dict)  # JSON: generation parameters, original file name, ...

    def to_dict(self) -> dict:
        """Return the record as a plain dict, one key per field."""
        return asdict(self)

    @property
    def title(self) -> str:
        """What to call the video: its prompt, caption or original file name, else its file."""
        return self.prompt or self.meta.get("caption") or self.meta.get("original_name", self.uri)


VIDEO_FIELDS = [f.name for f in fields(VideoRecord)]


def _to_record(row: dict) -> VideoRecord:
    """Build a VideoRecord from a `videos` row, leaving out the embedding and anything else."""
    return VideoRecord(**{k: row[k] for k in VIDEO_FIELDS})


@dataclass
class VideoEntry:
    """A video ready to write: its record and its sampled frames' indices, times and vectors."""

    record: VideoRecord
    frame_indices: Sequence[int]
    frame_times: Sequence[float]
    frame_embeddings: np.ndarray  # (N, dim), unit length
    prompt_embedding: np.ndarray | None = None  # (dim,), generated videos
    descriptor: np.ndarray | None = None  # (DESCRIPTOR_DIM,) pixel descriptor, for near-duplicate candidates


@dataclass
class FrameHit:
    """One matching frame of a video: its index, time in seconds and cosine score."""

    index: int
    t: float
    score: float


@dataclass
class VideoHit:
    """One video found by a frame search, with its best frames."""

    video: VideoRecord
    score: float  # score of the best frame
    best_t: float
    frames: list[FrameHit]  # best first


class StoreError(Exception):
    """A catalog problem the user can act on."""


class ModelMismatch(StoreError):
    """The collections were written by another embedding model or dimension."""


class StoreLocked(StoreError):
    """The Milvus Lite database is held by another process."""


def _schema(name: str, dim: int, description: str):
    """Build the schema of one collection; each has exactly one vector field, `embedding`."""
    s = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False,
                                   description=description)
    text = DataType.VARCHAR
    if name == "videos":
        s.add_field("video_id", text, is_primary=True, max_length=64)
        s.add_field("uri", text, max_length=2048)
        s.add_field("source", text, max_length=16)
        s.add_field("prompt", text, max_length=8192)
        s.add_field("parent_id", text, max_length=64)
        for f in ("duration_s", "fps"):
            s.add_field(f, DataType.DOUBLE)
        for f in ("width", "height", "num_frames"):
            s.add_field(f, DataType.INT64)
        s.add_field("created_at", DataType.DOUBLE)
        s.add_field("meta", DataType.JSON)
    elif name == "frames":
        s.add_field("frame_id", text, is_primary=True, max_length=96)  # "{video_id}:{index}"
        s.add_field("video_id", text, max_length=64)
        s.add_field("index", DataType.INT64)
        s.add_field("t", DataType.DOUBLE)
    elif name == "prompts":
        s.add_field("video_id", text, is_primary=True, max_length=64)
        s.add_field("prompt", text, max_length=8192)
    else:  # fingerprints: a pixel descriptor per video
        s.add_field("video_id", text, is_primary=True, max_length=64)
    s.add_field("embedding", DataType.FLOAT_VECTOR, dim=dim)
    return s


def _model_record(desc: dict) -> tuple[str, int] | None:
    """Read (model, dim) from collection properties, else from the schema description."""
    props = desc.get("properties") or {}
    if MODEL_KEY in props:
        return props[MODEL_KEY], int(props[DIM_KEY])
    try:  # Milvus servers keep the description; Milvus Lite drops it
        record = json.loads(desc.get("description") or "")
        return record["model"], int(record["dim"])
    except (ValueError, KeyError, TypeError):
        return None


def _supports_group_by(version: str) -> bool:
    """Tell from the server version whether search has group-by (Milvus >= 2.4; 2.3 ignores it)."""
    m = re.match(r"v?(\d+)\.(\d+)", version)  # "v2.3.5", "2.4.1"; Lite and Zilliz name themselves
    return m is None or (int(m[1]), int(m[2])) >= (2, 4)


def group_frame_hits(hits: list[dict], top_k: int, per_video: int) -> dict[str, list[FrameHit]]:
    """Group raw frame hits by video, best video and best frame first, keeping top_k videos."""
    groups: dict[str, list[FrameHit]] = {}
    for h in sorted(hits, key=lambda h: h["distance"], reverse=True):
        e = h["entity"]
        if e["video_id"] not in groups and len(groups) == top_k:
            continue
        frames = groups.setdefault(e["video_id"], [])
        if len(frames) < per_video:
            frames.append(FrameHit(int(e["index"]), float(e["t"]), float(h["distance"])))
    return groups


def _is_lite(uri: str) -> bool:
    """Return whether the URI names a Milvus Lite database file rather than a server."""
    return "://" not in uri


class _LiteStartFailure(logging.Filter):
    """Catch the error Milvus Lite logs (rather than raises) when it cannot open a database."""

    def __init__(self):
        super().__init__()
        self.error: BaseException | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info:
            self.error = record.exc_info[1]
        return not record.exc_info  # we raise it plainly instead of logging a traceback


def _connect(uri: str, token: str) -> MilvusClient:
    """Open a client; a failure becomes StoreError, and a Lite file held elsewhere StoreLocked."""
    if _is_lite(uri):
        os.makedirs(os.path.dirname(os.path.abspath(uri)), exist_ok=True)
    lite_log = logging.getLogger("milvus_lite.server_manager")
    failure = _LiteStartFailure()
    lite_log.addFilter(failure)
    try:
        return MilvusClient(uri=uri, token=token)
    except MilvusException as e:
        if type(failure.error).__name__ == "DataDirLockedError":
            raise StoreLocked(
                f"the Milvus Lite database {os.path.abspath(uri)} is held by another process, "
                "such as a running `reelbase serve`; Milvus Lite allows one process per file. "
                "Stop that process, use its HTTP API, or set REELBASE_MILVUS_URI to a Milvus "
                "server that several processes can share.") from e
        raise StoreError(f"cannot open Milvus at {uri}: {failure.error or e.message}") from e
    finally:
        lite_log.removeFilter(failure)


def _all_of(*expressions: str) -> str:
    """The conjunction of the non-empty expressions."""
    return " and ".join(f"({e})" for e in expressions if e)


def _unit(v: np.ndarray) -> np.ndarray:
    """Return v scaled to unit length (zero stays zero)."""
    n = float(np.linalg.norm(v))
    return v / n if n > 0 else v


def _pages(client: MilvusClient, name: str, output_fields: list[str], batch: int,
           filter: str = "") -> Iterator[list[dict]]:
    """Yield all rows of a collection (matching filter) in primary-key pages."""
    it = client.query_iterator(name, batch_size=batch, filter=filter, output_fields=output_fields)
    try:
        while rows := it.next():
            yield rows
    finally:
        it.close()


def read_catalog(uri: str, token: str = "") -> list[VideoRecord]:
    """Every video record in a store, whichever model wrote it (for re-indexing under another model)."""
    client = _connect(uri, token)
    try:
        if not client.has_collection("videos"):
            return []
        client.load_collection("videos")
        return [_to_record(r) for rows in _pages(client, "videos", VIDEO_FIELDS, BATCH) for r in rows]
    finally:
        client.close()


def drop_catalog(uri: str, token: str = "") -> None:
    """Drop reelbase's collections, so the next open creates them for a new model."""
    client = _connect(uri, token)
    try:
        for name in COLLECTIONS:
            if client.has_collection(name):
                client.drop_collection(name)
    finally:
        client.close()


class VideoStore:
    """Videos, frames and prompts in three Milvus collections written by one embedding model."""

    def __init__(self, uri: str, *, model: str, dim: int | Callable[[], int], token: str = ""):
        """Open (or create) the collections for `model`'s vectors of `dim`; `dim` may be a function
        (one that loads the model, say), called only when the store has no record of `model`'s dim."""
        self.uri, self.model = uri, model
        self._client = _connect(uri, token)
        self._closed = False
        self._deleted_since_write: set[str] = set()  # see _read
        self.server_version = self._client.get_server_version()
        self.group_by = _supports_group_by(self.server_version)
        self._lite = _is_lite(uri)
        try:
            self.dim = self._dim(dim)
            for name in COLLECTIONS:
                self._open_collection(name)
        except BaseException:
            self._client.close()
            raise
        # Lite's AUTOINDEX is HNSW when faiss-cpu is installed (else brute force, which ignores ef)
        self._min_ef = LITE_MIN_EF if self._lite else MIN_EF if self._client.describe_index(
            "frames", "embedding")["index_type"] == "HNSW" else None
        log.info("opened %s (%s, group-by %s) for model %r dim %d",
                 uri, self.server_version, self.group_by, model, self.dim)

    # --- collections ---

    def _dim(self, dim: int | Callable[[], int]) -> int:
        """The CLIP vectors' dim: as given, else as this model recorded it in the store, else dim()."""
        if not callable(dim):
            return int(dim)
        c = self._client
        record = _model_record(c.describe_collection("videos")) if c.has_collection("videos") else None
        return record[1] if record and record[0] == self.model else int(dim())

    def _writer(self, name: str) -> tuple[str, int]:
        """The (model, dim) that writes a collection: CLIP for all but the pixel descriptors."""
        return (DESCRIPTOR_NAME, DESCRIPTOR_DIM) if name == "fingerprints" else (self.model, self.dim)

    def _open_collection(self, name: str) -> None:
        """Create the collection on first use, else refuse it if another model wrote it."""
        c = self._client
        model, dim = self._writer(name)
        if not c.has_collection(name):
            c.create_collection(name, schema=_schema(name, dim, json.dumps({"model": model, "dim": dim})),
                                consistency_level="Strong", properties={MODEL_KEY: model, DIM_KEY: str(dim)})
        else:
            self._check_model(name, c.describe_collection(name))
        if not c.list_indexes(name):  # also repairs a crash between create and index
            self._create_vector_index(name)
        c.load_collection(name)

    def _check_model(self, name: str, desc: dict) -> None:
        """Raise ModelMismatch unless this collection was written by our model and dim."""
        record = _model_record(desc)
        if record is None:
            raise StoreError(f"collection '{name}' at {self.uri} has no reelbase model record; "
                             "it was not created by reelbase. Point REELBASE_MILVUS_URI elsewhere.")
        if record != self._writer(name):
            raise ModelMismatch(
                f"this store was written by embedding model '{record[0]}' (dim {record[1]}); "
                f"you opened it with '{self.model}' (dim {self.dim}). Re-index with "
                "`reelbase reindex` or point REELBASE_DATA_DIR / REELBASE_MILVUS_URI at "
                "another store.")

    def _create_vector_index(self, name: str, wait: bool = False) -> None:
        """Index `embedding` for COSINE: HNSW on servers; AUTOINDEX on Lite or if refused.

        Lite builds the index within the call, and has no AllocTimestamp for pymilvus's wait
        (it logs a traceback per call), so it is never asked to wait.
        """
        if self._lite:  # Lite takes HNSW without faiss-cpu, then finds nothing
            self._client.create_index(name, self._index_params("AUTOINDEX"), sync=False)
            return
        try:
            self._client.create_index(name, self._index_params("HNSW"), sync=wait)
        except MilvusException as e:  # e.g. Zilliz Cloud serverless takes AUTOINDEX only
            log.warning("HNSW refused for %s (%s); using AUTOINDEX", name, e.message)
            self._client.create_index(name, self._index_params("AUTOINDEX"), sync=wait)

    def optimize(self) -> None:
        """Make searches fast over everything written so far; searches fail while it runs.

        Milvus Lite indexes only the rows present when an index is built and scans the rest
        (at 20k frames a search takes 54 ms instead of 18), so on Lite each collection's index is
        rebuilt: flush, release, drop, build, load. A crash between drop and build is repaired
        when the store is next opened. A server indexes new segments itself; it is asked to
        merge small segments (it re-indexes them in the background).
        """
        for name in COLLECTIONS:
            if self._lite:
                self._client.flush(name)
                self._client.release_collection(name)
                self._client.drop_index(name, "embedding")
                self._create_vector_index(name, wait=True)
                self._client.load_collection(name)
            else:
                self._client.compact(name)
        log.debug("optimized the indexes of %s", self.uri)

    def _index_params(self, index_type: str):
        """Return index params for `embedding`."""
        params = self._client.prepare_index_params()
        build = HNSW_BUILD if index_type == "HNSW" else {}
        params.add_index("embedding", index_type=index_type, metric_type="COSINE", params=build)
        return params

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
                  prompt_embedding: np.ndarray | None = None) -> None:
        """Write frames, then the prompt, then the video row, which marks the video complete."""
        self.add_videos([VideoEntry(record, frame_indices, frame_times, frame_embeddings, prompt_embedding)])

    def add_videos(self, entries: Sequence[VideoEntry]) -> None:
        """Add several videos in a few calls: all frames, then prompts, then the video rows last."""
        entries = [self._checked(e) for e in entries]
        if not entries:
            return
        self._write_frames([(e.record.video_id, e.frame_indices, e.frame_times, e.frame_embeddings) for e in entries])
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
            self._delete("fingerprints", ids=undescribed)
        if with_descriptor:
            self._upsert("fingerprints", [
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
            for name in COLLECTIONS:
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
        return replace(entry, frame_embeddings=emb)

    def _write_frames(self, videos: list[tuple[str, Sequence[int], Sequence[float], np.ndarray]]) -> None:
        """Replace the frames of these videos: drop what an earlier write left, then insert by deterministic key."""
        self._delete_frames([video_id for video_id, *_ in videos])
        rows = [{"frame_id": f"{video_id}:{int(i)}", "video_id": video_id, "index": int(i), "t": float(t),
                 "embedding": e.tolist()}
                for video_id, indices, times, emb in videos for i, t, e in zip(indices, times, emb, strict=True)]
        for i in range(0, len(rows), BATCH):
            self._upsert("frames", rows[i:i + BATCH])

    def delete_video(self, video_id: str) -> None:
        """Delete the video row first (so a crash leaves only orphans), then frames and prompt."""
        self._delete("videos", ids=[video_id])
        self._delete_frames([video_id])
        self._delete("prompts", ids=[video_id])
        self._delete("fingerprints", ids=[video_id])

    def _delete_frames(self, video_ids: list[str]) -> None:
        """Delete every frame of these videos, a batch of ids per call."""
        for i in range(0, len(video_ids), BATCH):
            self._delete("frames", filter=in_list("video_id", video_ids[i:i + BATCH]))

    def orphan_frame_video_ids(self) -> set[str]:
        """Return ids with frames, a prompt or a descriptor but no video row, as an interrupted add leaves."""
        ids = self._video_ids_in("frames") | self._video_ids_in("prompts") | self._video_ids_in("fingerprints")
        return ids - set(self.get_videos(sorted(ids)))

    def delete_orphans(self) -> int:
        """Delete frames and prompts whose video row is absent; return how many videos they were."""
        orphans = sorted(self.orphan_frame_video_ids())
        self._delete_frames(orphans)
        for i in range(0, len(orphans), BATCH):
            self._delete("prompts", ids=orphans[i:i + BATCH])
            self._delete("fingerprints", ids=orphans[i:i + BATCH])
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
            found.update((r["video_id"], _to_record(r)) for r in rows)
        return found

    def videos_with_prefix(self, prefix: str, limit: int) -> list[VideoRecord]:
        """Return up to `limit` video records whose id starts with `prefix` (hex digits), in id order."""
        if not re.fullmatch(r"[0-9a-f]+", prefix):  # nothing for `like` to read as a wildcard
            raise ValueError(f"an id prefix is hex digits, not {prefix!r}")
        rows = self._client.query("videos", filter=f"video_id like {_quote(prefix + '%')}", limit=limit,
                                  output_fields=VIDEO_FIELDS, **self._read("videos"))
        return sorted(map(_to_record, rows), key=lambda r: r.video_id)

    def iter_videos(self, batch: int = BATCH) -> Iterator[VideoRecord]:
        """Yield every video record, batch rows per round trip."""
        for rows in self._iterate("videos", VIDEO_FIELDS, batch):
            yield from map(_to_record, rows)

    def list_videos(self, offset: int = 0, limit: int = 50, filter: str = "") -> list[VideoRecord]:
        """Return one page of video records matching filter, in the order Milvus keeps them."""
        rows = self._client.query("videos", filter=filter, offset=offset, limit=limit,
                                  output_fields=VIDEO_FIELDS, **self._read("videos"))
        return [_to_record(r) for r in rows]

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
            expr = _all_of(in_list("video_id", list(ids[i:i + BATCH])), filter)
            rows = self._client.query("videos", filter=expr, output_fields=["video_id"], **self._read("videos"))
            found |= {r["video_id"] for r in rows}
        return found

    def children_of(self, video_id: str) -> list[VideoRecord]:
        """Return the videos re-seeded from this one."""
        rows = self._client.query("videos", filter=f"parent_id == {_quote(video_id)}", output_fields=VIDEO_FIELDS,
                                  limit=MAX_TOPK, **self._read("videos"))
        return [_to_record(r) for r in rows]

    def video_embedding(self, video_id: str) -> np.ndarray | None:
        """Return the stored video embedding (mean of its frames), or None for an unknown id."""
        rows = self._client.get("videos", ids=[video_id], output_fields=["embedding"], **self._read("videos"))
        return np.asarray(rows[0]["embedding"], dtype=np.float32) if rows else None

    def search_frames(self, query: np.ndarray, top_k: int = 10, frames_per_video: int = 3,
                      filter: str = "", *, video_filter: str = "", offset: int = 0) -> list[VideoHit]:
        """Find the videos whose frames best match query, one hit per video, best first.

        `filter` is an expression over frame fields; `video_filter` one over video fields. A page
        holds `top_k` distinct videos after `offset` whenever that many match, however the frames
        are spread between videos (one long video's frames may fill any window of frame hits): the
        search goes on in rounds of growing size, each leaving out the videos already ranked, until
        the page is full or no frame is left. The rounds are the same whatever the offset, and each
        ranks after the ones before, so every page is a slice of one ranking: consecutive pages
        neither overlap nor skip, even where an approximate index misses a near-tie.
        """
        q = np.asarray(query, dtype=np.float32).reshape(-1)
        if q.size != self.dim or top_k < 1 or frames_per_video < 1 or offset < 0:
            raise ValueError(f"need a query of dim {self.dim} (got {q.size}), top_k >= 1, "
                             "frames_per_video >= 1 and offset >= 0")
        wanted = offset + top_k
        filter, video_filter = self._frame_filter(filter, video_filter)
        ranked: dict[str, list[FrameHit]] = {}  # every video met, in rank order (best frame first)
        kept: dict[str, VideoRecord] = {}  # those with a video row that passes video_filter
        for n in itertools.count():
            if len(kept) >= wanted:
                break
            left_out = _all_of(filter, in_list("video_id", list(ranked), negate=True) if ranked else "")
            groups = group_frame_hits(self._search_raw(q, ROUND_VIDEOS << n, frames_per_video, left_out),
                                      MAX_TOPK, frames_per_video) or self._exact_groups(q, frames_per_video, left_out)
            if not groups:
                break  # no frame left
            ranked.update(groups)  # after the rounds before: a later round's video never moves up a page
            kept.update(self._rows_passing(list(groups), video_filter))
        if len(kept) < len(ranked) and not video_filter:
            log.warning("search skipped %d videos without a video row (orphans of an "
                        "interrupted add); run `reelbase repair`", len(ranked) - len(kept))
        order = [v for v in ranked if v in kept][offset:wanted]
        self._complete_frames({v: ranked[v] for v in order}, q, frames_per_video, filter)
        return [VideoHit(kept[v], ranked[v][0].score, ranked[v][0].t, ranked[v]) for v in order]

    def _frame_filter(self, filter: str, video_filter: str) -> tuple[str, str]:
        """Move a video filter that keeps few videos into the frame filter, as the list of their ids (exact,
        one round); a broad one stays a check of each video found. Returns (frame filter, video filter)."""
        if not video_filter:
            return filter, ""
        rows = self._client.query("videos", filter=video_filter, output_fields=["video_id"],
                                  limit=IDS_IN_FILTER + 1, **self._read("videos"))
        if len(rows) > IDS_IN_FILTER:
            return filter, video_filter
        return _all_of(filter, in_list("video_id", sorted(r["video_id"] for r in rows))), ""

    def _exact_groups(self, q: np.ndarray, per_video: int, filter: str) -> dict[str, list[FrameHit]]:
        """The frames left, scored exactly, grouped by video. For when an index search finds nothing: either
        nothing is left, or a filter leaves so few frames that the graph search starves (Milvus Lite's HNSW
        returns no rows then), which makes them few enough to score here."""
        rows = self._client.query("frames", filter=filter, output_fields=["video_id", "index", "t", "embedding"],
                                  limit=EXACT_ROWS + 1, **self._read("frames"))
        if len(rows) > EXACT_ROWS:
            log.warning("the index search found none of the %d+ frames left; the results end here", EXACT_ROWS)
            return {}
        scores = np.asarray([r["embedding"] for r in rows], np.float32).reshape(len(rows), self.dim) @ q
        hits = [{"distance": float(score), "entity": row} for row, score in zip(rows, scores)]
        return group_frame_hits(hits, MAX_TOPK, per_video)

    def _rows_passing(self, ids: list[str], video_filter: str) -> dict[str, VideoRecord]:
        records = self.get_videos(ids)
        if video_filter and records:
            keep = self.matching_ids(list(records), video_filter)
            records = {v: r for v, r in records.items() if v in keep}
        return records

    def _complete_frames(self, hits: dict[str, list[FrameHit]], q: np.ndarray, per_video: int, filter: str) -> None:
        """Give each hit its `per_video` best frames where a round saw fewer (a video at the edge of an
        ungrouped round, or a short group from Milvus Lite): that video's frames scored exactly."""
        for video_id, frames in hits.items():
            if len(frames) < per_video:
                frames[:] = self._exact_groups(q, per_video, _all_of(filter, f"video_id == {_quote(video_id)}")
                                               ).get(video_id, frames)

    def _search_raw(self, q: np.ndarray, videos: int, per_video: int, filter: str) -> list:
        """Frame hits of at least the best `videos` videos: grouped by video on the server where it can
        (Milvus Lite may return fewer groups), else frames over-fetched."""
        if self.group_by:
            limit = min(videos, MAX_TOPK // per_video)
            # strict_group_size is left at its default (off): Milvus Lite 3.2 reads False as on
            extra = {"group_by_field": "video_id", "group_size": per_video}
        else:
            limit, extra = min(videos * per_video * 4, MAX_TOPK), {}
        return self._search("frames", q, limit, filter, ["video_id", "index", "t"], **extra)

    def search_videos(self, query: np.ndarray, top_k: int = 10, filter: str = "") -> list[tuple[VideoRecord, float]]:
        """Find videos by their video embeddings (the mean of their frames): (record, score), best first."""
        rows = self._search("videos", query, min(top_k, MAX_TOPK), filter, VIDEO_FIELDS)
        return [(_to_record(r["entity"]), float(r["distance"])) for r in rows]

    def descriptor_of(self, video_id: str) -> np.ndarray | None:
        """Return a video's stored pixel descriptor, or None (unknown id, or indexed before descriptors)."""
        rows = self._client.get("fingerprints", ids=[video_id], output_fields=["embedding"],
                                **self._read("fingerprints"))
        return np.asarray(rows[0]["embedding"], dtype=np.float32) if rows else None

    def search_descriptors(self, query: np.ndarray, top_k: int = 10) -> list[tuple[str, float]]:
        """Find videos by pixel descriptor: (video_id, score), best first."""
        rows = self._search("fingerprints", query, min(top_k, MAX_TOPK), "", ["video_id"])
        return [(r["entity"]["video_id"], float(r["distance"])) for r in rows]

    def search_prompts(self, query: np.ndarray, top_k: int = 10) -> list[tuple[VideoRecord, float]]:
        """Find generated videos whose prompts' text embeddings are nearest: (record, score), best first."""
        rows = self._search("prompts", query, min(top_k, MAX_TOPK), "", ["video_id"])
        scores = {r["entity"]["video_id"]: float(r["distance"]) for r in rows}
        records = self.get_videos(list(scores))
        return sorted(((records[v], s) for v, s in scores.items() if v in records), key=lambda h: h[1], reverse=True)

    def _search(self, name: str, query: np.ndarray, limit: int, filter: str, fields: list[str], **extra) -> list:
        """One cosine search of a collection's embeddings."""
        q = np.asarray(query, dtype=np.float32).reshape(-1)
        dim = self._writer(name)[1]
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
        """Return counts of videos by source, frames and prompts, and the model record."""
        by_source = {s: self._count("videos", f"source == {_quote(s)}")
                     for s in SOURCES}
        return {"videos": sum(by_source.values()), "videos_by_source": by_source,
                "frames": self.count_frames(), "prompts": self._count("prompts"),
                "model": self.model, "dim": self.dim, "server": self.server_version}

    def _count(self, name: str, filter: str = "") -> int:
        """Count rows matching filter with a strongly consistent count(*)."""
        rows = self._client.query(name, filter=filter, output_fields=["count(*)"])
        return int(rows[0]["count(*)"])

    def _iterate(self, name: str, output_fields: list[str], batch: int, filter: str = "") -> Iterator[list[dict]]:
        """Yield all rows of a collection (matching filter) in primary-key pages."""
        return _pages(self._client, name, output_fields, batch, filter)

    def _video_ids_in(self, name: str) -> set[str]:
        """Return the distinct video ids in the frames, prompts or fingerprints collection."""
        return {r["video_id"] for rows in self._iterate(name, ["video_id"], BATCH) for r in rows}

    # --- lifetime ---

    def close(self) -> None:
        """Flush Milvus Lite's segments to disk and close the client; a second call does nothing."""
        if self._closed:
            return
        self._seal()  # Lite's writes already survive a kill in its WAL
        self._client.close()
        self._closed = True

    def __enter__(self) -> VideoStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
