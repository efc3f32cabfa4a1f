"""Text-to-video retrieval precision on a held-out synthetic world library.

Renders a library from a seed never used in training, ingests it through the real pipeline
(Milvus Lite in a temporary folder) and asks canonical captions, full and partial:
precision@5 for full captions, @10 for partial ones, a hit counting when every attribute a
single frame can show (colour, shape, scene, two objects for "colliding") is true of the clip;
where fewer clips truly match than k, k is that number. Motion cannot be seen in one frame,
so the precision with motion judged too is printed as its own figure.

    python3 bench/retrieval.py [--clips 400] [--queries 200] [--model reelbase-tiny]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from generator import world
from search.service import Reelbase
from search.settings import Settings

HELD_OUT_SEED = 777_777  # never used by `reelbase train clip` (its seeds are steps, and 9000001)


def precision(query: world.Query, hits, specs: dict[str, world.ClipSpec], k: int, visible_only: bool) -> float:
    """Share of the top k that satisfy the query, k capped at the number of true matches."""
    true_count = sum(query.matches(s, visible_only=visible_only) for s in specs.values())
    k = min(k, true_count)
    if k == 0:
        return float("nan")
    good = sum(query.matches(specs[h.video.video_id], visible_only=visible_only) for h in hits[:k])
    return good / k


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=400)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--model", default="reelbase-tiny")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "world"
        world.write_dataset(folder, args.clips, HELD_OUT_SEED)
        service = Reelbase(Settings(data_dir=Path(tmp) / "data", clip_model=args.model, device="auto"))
        started = time.time()
        report = service.library.ingest([folder])
        print(f"library: {len(report.added)} held-out clips (seed {HELD_OUT_SEED}), {report.frames} frames, "
              f"ingested in {time.time() - started:.1f} s with {args.model}")
        specs = {}
        for video_id in report.added:
            name = service.store.get_video(video_id).meta["original_name"]
            index = int(Path(name).stem)
            specs[video_id] = world.sample_spec(world.clip_rng(HELD_OUT_SEED, index))
        rng = np.random.default_rng(1)
        chosen = rng.choice(list(specs.values()), size=args.queries, replace=True)
        results = {}
        for kind, k in (("full", 5), ("partial", 10)):
            visible, motion = [], []
            for spec in chosen:
                query = world.full_query(spec) if kind == "full" else world.partial_query(spec, rng)
                hits = service.queries.text(query.text, top_k=k)
                visible.append(precision(query, hits, specs, k, visible_only=True))
                if query.motion:
                    motion.append(precision(query, hits, specs, k, visible_only=False))
            results[kind] = {f"precision@{k} (colour, shape, scene)": round(float(np.nanmean(visible)), 3),
                             f"precision@{k} with motion": round(float(np.nanmean(motion)), 3),
                             "queries": len(visible)}
        service.close()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
