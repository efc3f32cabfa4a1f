"""Text search latency and throughput, through the service and through the HTTP API, at 10k and 100k frames.

The library is filled with synthetic catalog rows (5 frames a video, clustered unit vectors of
the CLIP model's dimension, so the index sees data shaped like real embeddings); queries are
world captions encoded by the built-in CLIP model, as a user's would be. Each size is measured
in one run: the service called directly, then the API (uvicorn on loopback, httpx), each with
one client (latency) and with 4 concurrent clients (throughput); then the service again after
`optimize` (on Milvus Lite: its indexes rebuilt over every row).

    python3 bench/search_speed.py [--sizes 10000 100000] [--queries 200]
"""

from __future__ import annotations

import argparse
import functools
import socket
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import uvicorn

sys.path.insert(0, str(Path(__file__).parents[1]))

from generator import world  # noqa: E402
from indexer.records import VideoEntry, VideoRecord  # noqa: E402
from search.api import create_app  # noqa: E402
from search.service import Reelbase  # noqa: E402
from search.settings import Settings  # noqa: E402

FRAMES_PER_VIDEO = 5
CLUSTERS = 200


def fill(service: Reelbase, start_video: int, videos: int, rng: np.random.Generator, centres: np.ndarray) -> None:
    """Add `videos` synthetic videos (ids from start_video) in batches."""
    dim = service.encoder.dim
    for first in range(start_video, start_video + videos, 500):
        entries = []
        for v in range(first, min(first + 500, start_video + videos)):
            centre = centres[rng.integers(len(centres))]
            emb = centre + 0.35 * rng.normal(size=(FRAMES_PER_VIDEO, dim)) / np.sqrt(dim)
            emb /= np.linalg.norm(emb, axis=1, keepdims=True)
            record = VideoRecord(video_id=f"{v:032x}", uri=f"{v:032x}.mp4", source="ingested", duration_s=2.0,
                                 fps=8.0, width=64, height=64, num_frames=16, created_at=time.time())
            entries.append(VideoEntry(record, list(range(0, 16, 4))[:4] + [15], [0, 0.5, 1.0, 1.5, 1.875],
                                      emb.astype(np.float32)))
        service.store.add_videos(entries)


def measure(call, queries: list[str], clients: int) -> tuple[float, float, float]:
    """(median ms, p99 ms, queries per second) for the queries spread over `clients` threads."""
    latencies = []

    def one(q):
        t0 = time.perf_counter()
        call(q)
        latencies.append((time.perf_counter() - t0) * 1000)

    t0 = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(one, queries))
    wall = time.perf_counter() - t0
    return float(np.median(latencies)), float(np.percentile(latencies, 99)), len(queries) / wall


def serve(settings: Settings):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.1)
    return server, thread, f"http://127.0.0.1:{port}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000], help="frames")
    ap.add_argument("--queries", type=int, default=200)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    queries = [c.caption for c in world.sample_clips(909, 0, args.queries)]
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp) / "data", device="cpu")
        videos = 0
        print(f"{'frames':>8} {'path':>9} {'clients':>7} {'median ms':>10} {'p99 ms':>8} {'queries/s':>10}")
        for frames in sorted(args.sizes):
            service = Reelbase(settings)
            centres = rng.normal(size=(CLUSTERS, service.encoder.dim))
            centres /= np.linalg.norm(centres, axis=1, keepdims=True)
            t0 = time.time()
            fill(service, videos, frames // FRAMES_PER_VIDEO - videos, rng, centres)
            videos = frames // FRAMES_PER_VIDEO
            fill_s = time.time() - t0
            assert service.store.count_frames() == frames
            service.close()  # flushed and indexed, as a library is between ingests
            service = Reelbase(settings)
            for q in queries[:5]:  # warm up
                service.queries.text(q)
            search = functools.partial(service.queries.text, top_k=10)
            rows = [("service", c, *measure(search, queries, c)) for c in (1, 4)]
            service.close()
            server, thread, url = serve(settings)
            with httpx.Client(base_url=url, timeout=60) as client:
                post = lambda q: client.post("/search/text", json={"text": q, "top_k": 10}).raise_for_status()  # noqa: E731
                for q in queries[:5]:
                    post(q)
                rows += [("api", c, *measure(post, queries, c)) for c in (1, 4)]
            server.should_exit = True
            thread.join()
            service = Reelbase(settings)
            t0 = time.time()
            service.store.optimize()  # as `reelbase optimize` (or a large `reelbase ingest`) does
            optimize_s = time.time() - t0
            search = functools.partial(service.queries.text, top_k=10)
            rows += [("optimized", 1, *measure(search, queries, 1))]
            service.close()
            for path, clients, median, p99, qps in rows:
                print(f"{frames:>8} {path:>9} {clients:>7} {median:>10.1f} {p99:>8.1f} {qps:>10.1f}")
            print(f"{'':>8} (filled {frames} frames in {fill_s:.0f} s; optimize took {optimize_s:.0f} s)")


if __name__ == "__main__":
    main()
