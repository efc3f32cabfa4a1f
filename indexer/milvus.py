"""Milvus for the catalog: connecting (Lite, a server or Zilliz), the collections' schemas and
indexes, the model record each collection keeps, and reading or dropping a whole catalog.

Four collections, each with one vector field `embedding`: `videos` (a record and the mean of its
frames' CLIP vectors), `frames` (a CLIP vector per sampled frame), `prompts` (the CLIP text vector
of a generated video's prompt) and `descriptors` (a pixel descriptor per video, from
`indexer.fingerprint.describe`, for near-duplicate candidates); and a fifth where a temporal model
serves the CLIP model, `windows` (a temporal model's vector per window of frames, with its start
and end). Each records in its properties the model that writes it, so vectors of two models never
mix. Milvus Lite differs from a server in ways handled here: it logs rather than raises when it
cannot open a file, and it finds nothing through an HNSW index when faiss-cpu is missing.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterator

from pymilvus import DataType, MilvusClient, MilvusException

from indexer.lite_summary import is_lite, remove_summary
from indexer.records import VIDEO_FIELDS, VideoRecord

log = logging.getLogger(__name__)
# Milvus Lite has no server timestamp for iterators; pymilvus warns on every one and uses its own, which is right
logging.getLogger("pymilvus.client.iterator.query_iterator").setLevel(logging.ERROR)

COLLECTIONS = ("videos", "frames", "prompts", "descriptors")
WINDOWS = "windows"  # the fifth collection, kept only where a temporal model writes it
RENAMED = {"fingerprints": "descriptors"}  # old name -> current name, for catalogs written before the rename
MODEL_KEY, DIM_KEY = "reelbase.model", "reelbase.dim"  # the model record, in collection properties
MAX_TOPK = 16384  # Milvus' limit on search and query result windows
BATCH = 1000  # rows per write or id lookup, well under gRPC message limits
HNSW_BUILD = {"M": 16, "efConstruction": 200}  # the frame index on a Milvus server
MIN_EF = 128  # HNSW search breadth on a server; bench/scale.py, 1M frames: recall 0.93 at 64, 0.995 at 128, same 2 ms
LITE_MIN_EF = 256  # Lite's search time hardly grows with ef (bench: 12.8 ms at 64, 14.8 at 256) and recall does


class StoreError(Exception):
    """A catalog problem the user can act on."""


class ModelMismatch(StoreError):
    """The collections were written by another embedding model or dimension."""


class StoreLocked(StoreError):
    """The Milvus Lite database is held by another process."""


# --- connecting ---


def supports_group_by(version: str) -> bool:
    """Tell from the server version whether search has group-by (Milvus >= 2.4; 2.3 ignores it)."""
    m = re.match(r"v?(\d+)\.(\d+)", version)  # "v2.3.5", "2.4.1"; Lite and Zilliz name themselves
    return m is None or (int(m[1]), int(m[2])) >= (2, 4)


class _LiteStartFailure(logging.Filter):
    """Catch the error Milvus Lite logs (rather than raises) when it cannot open a database."""

    def __init__(self):
        super().__init__()
        self.error: BaseException | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info:
            self.error = record.exc_info[1]
        return not record.exc_info  # we raise it plainly instead of logging a traceback


def connect(uri: str, token: str) -> MilvusClient:
    """Open a client; a failure becomes StoreError, and a Lite file held elsewhere StoreLocked."""
    if is_lite(uri):
        os.makedirs(os.path.dirname(os.path.abspath(uri)), exist_ok=True)
    client = _client(uri, token)
    if is_lite(uri):
        remove_summary(uri)  # held now, and it may change: no summary while it is (`indexer.lite_summary`)
    return client


def _client(uri: str, token: str) -> MilvusClient:
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


# --- the collections ---


def rename_old_collections(client: MilvusClient) -> None:
    """Give the collections of a catalog written before a rename their current names, in place."""
    for old, new in RENAMED.items():
        if not client.has_collection(old) or client.has_collection(new):
            continue
        try:
            client.rename_collection(old, new)
        except MilvusException:
            if not client.has_collection(new):  # else another process renamed it first
                raise
        log.info("renamed the collection %r to %r", old, new)


def open_collection(client: MilvusClient, uri: str, name: str, writer: tuple[str, int]) -> None:
    """Create the collection for `writer` (model, dim) on first use, else refuse it if another model
    wrote it; index and load it."""
    model, dim = writer
    if not client.has_collection(name):
        client.create_collection(name, schema=_schema(name, dim, json.dumps({"model": model, "dim": dim})),
                                 consistency_level="Strong", properties={MODEL_KEY: model, DIM_KEY: str(dim)})
    else:
        _check_writer(client.describe_collection(name), uri, name, writer)
    if not client.list_indexes(name):  # also repairs a crash between create and index
        create_vector_index(client, uri, name)
    client.load_collection(name)


def model_record(desc: dict) -> tuple[str, int] | None:
    """Read (model, dim) from collection properties, else from the schema description."""
    props = desc.get("properties") or {}
    if MODEL_KEY in props:
        return props[MODEL_KEY], int(props[DIM_KEY])
    try:  # Milvus servers keep the description; Milvus Lite drops it
        record = json.loads(desc.get("description") or "")
        return record["model"], int(record["dim"])
    except (ValueError, KeyError, TypeError):
        return None


def _check_writer(desc: dict, uri: str, name: str, writer: tuple[str, int]) -> None:
    """Raise ModelMismatch unless this collection was written by `writer` (model, dim)."""
    record = model_record(desc)
    if record is None:
        raise StoreError(f"collection '{name}' at {uri} has no reelbase model record; "
                         "it was not created by reelbase. Point REELBASE_MILVUS_URI elsewhere.")
    if record != writer:
        raise ModelMismatch(
            f"this store was written by embedding model '{record[0]}' (dim {record[1]}); "
            f"you opened it with '{writer[0]}' (dim {writer[1]}). Re-index with "
            "`reelbase reindex` or point REELBASE_DATA_DIR / REELBASE_MILVUS_URI at "
            "another store.")


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
    elif name == WINDOWS:
        s.add_field("window_id", text, is_primary=True, max_length=96)  # "{video_id}:{first frame index}"
        s.add_field("video_id", text, max_length=64)
        s.add_field("index", DataType.INT64)  # the window's first frame
        s.add_field("t", DataType.DOUBLE)  # its first and last frames' times
        s.add_field("end", DataType.DOUBLE)
    elif name == "prompts":
        s.add_field("video_id", text, is_primary=True, max_length=64)
        s.add_field("prompt", text, max_length=8192)
    else:  # descriptors: a pixel descriptor per video
        s.add_field("video_id", text, is_primary=True, max_length=64)
    s.add_field("embedding", DataType.FLOAT_VECTOR, dim=dim)
    return s


def create_vector_index(client: MilvusClient, uri: str, name: str, wait: bool = False) -> None:
    """Index `embedding` for COSINE: HNSW on servers; AUTOINDEX on Lite or if refused.

    Lite builds the index within the call, and has no AllocTimestamp for pymilvus's wait
    (it logs a traceback per call), so it is never asked to wait.
    """
    if is_lite(uri):  # Lite takes HNSW without faiss-cpu, then finds nothing
        client.create_index(name, _index_params(client, "AUTOINDEX"), sync=False)
        return
    try:
        client.create_index(name, _index_params(client, "HNSW"), sync=wait)
    except MilvusException as e:  # e.g. Zilliz Cloud serverless takes AUTOINDEX only
        log.warning("HNSW refused for %s (%s); using AUTOINDEX", name, e.message)
        client.create_index(name, _index_params(client, "AUTOINDEX"), sync=wait)


def _index_params(client: MilvusClient, index_type: str):
    """Return index params for `embedding`."""
    params = client.prepare_index_params()
    build = HNSW_BUILD if index_type == "HNSW" else {}
    params.add_index("embedding", index_type=index_type, metric_type="COSINE", params=build)
    return params


# --- whole catalogs ---


def pages(client: MilvusClient, name: str, output_fields: list[str], batch: int,
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
    client = connect(uri, token)
    try:
        if not client.has_collection("videos"):
            return []
        client.load_collection("videos")
        return [VideoRecord.from_row(r) for rows in pages(client, "videos", VIDEO_FIELDS, BATCH) for r in rows]
    finally:
        client.close()


def drop_catalog(uri: str, token: str = "") -> None:
    """Drop reelbase's collections (under old names too), so the next open creates them for a new model."""
    client = connect(uri, token)
    try:
        for name in (*COLLECTIONS, WINDOWS, *RENAMED):
            if client.has_collection(name):
                client.drop_collection(name)
    finally:
        client.close()
