"""Frame-vector search at scale: Milvus Lite and a Milvus server beside an exact NumPy scan, in one run.

One million 512-d unit vectors shaped like frame embeddings (topics -> videos -> 5 frames each,
clustered, so an index meets the structure real CLIP frames have) go into each backend as a bulk
load, the way Milvus' own benchmarks load one: insert and flush, compact (a server), then build
the index reelbase's store gives its `frames` collection (AUTOINDEX on Lite, HNSW M=16
efConstruction=200 on a server, cosine). Queries are frames of held-out videos of the same
topics. Printed per backend: insert rate, index build time, load time, search median / p99
latency one query at a time (top 10, at the store's ef and a few others) and recall@10 against
the exact answer; and the exact scan's own latency on the same vectors.

    python3 bench/scale.py [--n 1000000] [--dim 512] [--queries 200] [--backends lite server]

The server is the `milvus` package's Milvus 2.3 standalone on loopback (`pip install milvus`), with
segments sealed when full (BULK_LOAD_CONFIG); `--default-segments` keeps Milvus' defaults.
Searches are timed at Bounded consistency (Milvus' default); the server's Strong latency is
printed beside it, since a strong read waits for the next time tick.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import numpy as np
from pymilvus import DataType, MilvusClient, MilvusException

sys.path.insert(0, str(Path(__file__).parents[1]))

from indexer.milvus import HNSW_BUILD, MIN_EF  # noqa: E402
from tests.fixtures import milvus_server  # noqa: E402

FRAMES_PER_VIDEO = 5
TOPICS = 2000
VIDEO_SPREAD, FRAME_SPREAD = 1.0, 0.5  # noise norms relative to a unit vector
TOP_K = 10
INSERT_BATCH = 10_000
EXACT_TIMED = 20  # exact scans timed one query at a time (each reads every vector)
# A server set up for a bulk load of one collection: by default Milvus 2.3 seals a segment at 23%
# of 512 MiB or at 32 binlog files (one per 16 MiB buffer flushed), so a million frames become
# pieces of ~60k rows that compaction merges and re-indexes for half an hour, and a search then
# visits every piece. Here a segment takes up to 4 GiB in 64 MiB binlogs: the load is one segment.
BULK_LOAD_CONFIG = {"dataCoord.segment.maxSize": 4096, "dataCoord.segment.sealProportion": 1.0,
                    "dataCoord.segment.maxBinlogFileNumber": 256, "dataNode.segment.insertBufSize": 67108864}


# ---------------------------------------------------------------------------------------------
# Data


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def frame_vectors(n: int, dim: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(n, dim) float32 frames of n / 5 videos, and the topic centres they were drawn about."""
    rng = np.random.default_rng(seed)
    topics = unit(rng.standard_normal((TOPICS, dim), dtype=np.float32))
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, 100_000):
        out[start:start + 100_000] = _frames(rng, topics, min(100_000, n - start))
    return out, topics


def _frames(rng: np.random.Generator, topics: np.ndarray, n: int) -> np.ndarray:
    """n frames: videos scattered about a random topic (cosine ~0.7), frames about their video (~0.9)."""
    dim = topics.shape[1]
    videos = -(-n // FRAMES_PER_VIDEO)
    noise = lambda rows, spread: spread / np.sqrt(dim) * rng.standard_normal((rows, dim), dtype=np.float32)  # noqa: E731
    centres = unit(topics[rng.integers(len(topics), size=videos)] + noise(videos, VIDEO_SPREAD))
    frames = np.repeat(centres, FRAMES_PER_VIDEO, axis=0)[:n]
    return unit(frames + noise(n, FRAME_SPREAD)).astype(np.float32)


def exact_top_k(data: np.ndarray, queries: np.ndarray, k: int = TOP_K) -> np.ndarray:
    """(Q, k) ids of the k highest inner products, by a blocked full scan."""
    best_scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
    best_ids = np.zeros((len(queries), k), dtype=np.int64)
    for start in range(0, len(data), 200_000):
        scores = queries @ data[start:start + 200_000].T
        part = np.argpartition(-scores, k, axis=1)[:, :k]
        merged_scores = np.concatenate([best_scores, np.take_along_axis(scores, part, 1)], axis=1)
        merged_ids = np.concatenate([best_ids, part + start], axis=1)
        order = np.argsort(-merged_scores, axis=1)[:, :k]
        best_scores, best_ids = np.take_along_axis(merged_scores, order, 1), np.take_along_axis(merged_ids, order, 1)
    return best_ids


def time_exact(data: np.ndarray, queries: np.ndarray) -> list[float]:
    """Seconds per query of the exact scan, one query at a time (what a service without an index does)."""
    times = []
    for q in queries[:EXACT_TIMED]:
        t0 = time.perf_counter()
        scores = data @ q
        np.argpartition(-scores, TOP_K)[:TOP_K]
        times.append(time.perf_counter() - t0)
    return times


# ---------------------------------------------------------------------------------------------
# Milvus


def measure(client: MilvusClient, backend: str, data: np.ndarray, queries: np.ndarray, truth: np.ndarray,
            efs: list[int], settle_s: float) -> list[dict]:
    """Insert, index, load and search one backend; one result row per search setting."""
    name = "scale"
    if client.has_collection(name):
        client.drop_collection(name)
    schema = client.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("embedding", DataType.FLOAT_VECTOR, dim=data.shape[1])
    client.create_collection(name, schema=schema, consistency_level="Bounded")

    t0 = time.perf_counter()
    for start in range(0, len(data), INSERT_BATCH):
        block = data[start:start + INSERT_BATCH]
        client.insert(name, [{"id": start + i, "embedding": v} for i, v in enumerate(block.tolist())])
    client.flush(name)
    insert_s = time.perf_counter() - t0
    log(f"{backend}: inserted and flushed {len(data):,} in {insert_s:.0f} s")
    if backend == "server":  # merge the small sealed segments first, so each is indexed once
        t0 = time.perf_counter()
        _compact(client, name)
        log(f"{backend}: compacted in {time.perf_counter() - t0:.0f} s")
    # A bulk load is indexed once it is in (as Milvus' own benchmarks do); the store instead
    # declares its index on the empty collection and a server indexes each segment as it seals.
    index_type = "AUTOINDEX" if backend == "lite" else "HNSW"  # the store's choices
    params = client.prepare_index_params()
    params.add_index("embedding", index_type=index_type, metric_type="COSINE",
                     params=HNSW_BUILD if index_type == "HNSW" else {})
    t0 = time.perf_counter()
    _create_index(client, name, params)
    _wait_for_index(client, name)
    index_s = time.perf_counter() - t0
    log(f"{backend}: {index_type} built in {index_s:.0f} s")
    settled = backend == "lite" or _wait_for_compaction(client, name, settle_s)
    log(f"{backend}: background re-indexing {'settled' if settled else 'still going'}")
    t0 = time.perf_counter()
    client.load_collection(name)
    load_s = time.perf_counter() - t0

    rows = []
    settings = [(ef, "Bounded") for ef in efs] + ([(MIN_EF, "Strong")] if backend == "server" else [])
    for ef, consistency in settings:
        latencies, found = [], []
        for q in queries if consistency == "Bounded" else queries[:50]:
            t0 = time.perf_counter()
            hits = client.search(name, data=[q.tolist()], anns_field="embedding", limit=TOP_K,
                                 search_params={"metric_type": "COSINE", "params": {"ef": ef}},
                                 consistency_level=consistency)[0]
            latencies.append(time.perf_counter() - t0)
            found.append([h["id"] for h in hits])
        recall = np.mean([len(set(f) & set(t)) / TOP_K for f, t in zip(found, truth)])
        rows.append({"backend": backend, "index": index_type, "ef": ef, "consistency": consistency,
                     "insert_per_s": len(data) / insert_s, "index_s": index_s, "load_s": load_s,
                     "settled": settled,
                     "median_ms": 1000 * float(np.median(latencies)),
                     "p99_ms": 1000 * float(np.percentile(latencies, 99)), "recall": float(recall)})
        log(f"{backend}: ef {ef} {consistency}: median {rows[-1]['median_ms']:.2f} ms, recall {recall:.3f}")
    client.drop_collection(name)
    return rows


def _times(ratio: float) -> str:
    """A speed-up as 48x, or 0.21x where the index is slower than the exact scan."""
    return f"{ratio:.0f}x" if ratio >= 10 else f"{ratio:.2g}x"


def _create_index(client: MilvusClient, name: str, params) -> None:
    """Declare the index. Milvus Lite builds it inside the call (minutes at a million rows), long
    enough for its gRPC server to drop the connection (GOAWAY too_many_pings); pymilvus then
    retries, and the retry finds the index the first call built."""
    try:
        client.create_index(name, params, sync=False)
    except MilvusException as error:
        if "index already exists" not in str(error):
            raise
        log("create_index was retried after the index was built; going on with it")


def _wait_for_index(client: MilvusClient, name: str, timeout: float = 7200) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        info = client.describe_index(name, "embedding")
        # every row searchable through an index; a server may go on re-indexing what compaction
        # merges (its pending_index_rows rise and fall for minutes), which is not counted here
        if int(info.get("indexed_rows", 0)) >= int(info.get("total_rows", 0)) > 0:
            return
        time.sleep(2)
    raise TimeoutError(f"the index on {name} was not built in {timeout} s")


def _compact(client: MilvusClient, name: str, timeout: float = 3600) -> None:
    job = client.compact(name)
    deadline = time.time() + timeout
    while str(client.get_compaction_state(job)) != "Completed":
        if time.time() > deadline:
            raise TimeoutError(f"compaction of {name} did not finish in {timeout} s")
        time.sleep(2)


def _wait_for_compaction(client: MilvusClient, name: str, timeout: float, quiet_s: float = 120) -> bool:
    """Wait (up to timeout) until a server's segments have stayed the same for quiet_s with every row
    indexed, so what compaction merged is re-indexed; True if they did. (Milvus 2.3's
    pending_index_rows stays high after every segment is indexed, so it cannot tell.)"""
    deadline = time.time() + timeout
    segments, since = None, time.time()
    while time.time() < deadline:
        now = {s.segment_id for s in client.list_persistent_segments(name)}
        if now != segments:
            segments, since = now, time.time()
        info = client.describe_index(name, "embedding")
        if time.time() - since >= quiet_s and int(info["indexed_rows"]) >= int(info["total_rows"]):
            return True
        time.sleep(10)
    return False


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--backends", nargs="+", default=["server", "lite"], choices=["lite", "server"])
    parser.add_argument("--ef", type=int, nargs="+", default=sorted({32, 64, MIN_EF, 256}))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--default-segments", action="store_true", help="the server's default segment sizes")
    parser.add_argument("--settle", type=float, default=900,
                        help="seconds to let a server finish re-indexing merged segments before searching")
    args = parser.parse_args()

    t0 = time.perf_counter()
    data, topics = frame_vectors(args.n, args.dim, args.seed)
    queries = _frames(np.random.default_rng(args.seed + 1), topics, args.queries * FRAMES_PER_VIDEO)[::FRAMES_PER_VIDEO]
    log(f"{args.n:,} vectors of dim {args.dim} ({data.nbytes / 2**30:.1f} GiB) in {time.perf_counter() - t0:.0f} s")
    truth = exact_top_k(data, queries)
    exact = time_exact(data, queries)
    exact_ms = 1000 * float(np.median(exact))
    log(f"exact scan: median {exact_ms:.1f} ms a query")

    rows = []
    server_config = None if args.default_segments else BULK_LOAD_CONFIG
    with tempfile.TemporaryDirectory(prefix="reelbase-scale-") as tmp, ExitStack() as stack:
        for backend in args.backends:
            uri = (str(Path(tmp) / "scale.db") if backend == "lite" else stack.enter_context(
                milvus_server(Path(tmp) / "server", tick_ms=200, config=server_config)))
            client = MilvusClient(uri)
            try:
                rows += measure(client, backend, data, queries, truth, args.ef, args.settle)
            finally:
                client.close()

    print(f"\n{args.n:,} frame vectors, dim {args.dim}, {args.queries} queries, top {TOP_K}; "
          f"exact NumPy scan: median {exact_ms:.1f} ms, p99 {1000 * np.percentile(exact, 99):.1f} ms "
          f"({len(exact)} queries)\n")
    print("| backend | index | ef | consistency | insert rows/s | index build s | settled | load s | median ms "
          "| p99 ms | recall@10 | speed-up vs exact |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['backend']} | {r['index']} | {r['ef']} | {r['consistency']} | {r['insert_per_s']:,.0f} "
              f"| {r['index_s']:.0f} | {'yes' if r['settled'] else 'no'} | {r['load_s']:.1f} "
              f"| {r['median_ms']:.2f} | {r['p99_ms']:.2f} | {r['recall']:.3f} | {_times(exact_ms / r['median_ms'])} |")


if __name__ == "__main__":
    main()
