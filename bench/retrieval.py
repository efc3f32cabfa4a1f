"""Text-to-video retrieval precision on a held-out synthetic world library.

Renders a library from a seed never used in training, ingests it through the real pipeline
(Milvus Lite in a temporary folder) and asks canonical captions, full and partial:
precision@5 for full captions, @10 for partial ones, a hit counting when every attribute a
single frame can show (colour, shape, scene, two objects for "colliding") is true of the clip;
where fewer clips truly match than k, k is that number. The precision with motion judged too
is printed as its own figure: a text is matched against windows of frames where a temporal
model serves the CLIP model (`--temporal none`: against single frames, which cannot see motion).

Then the best moment: longer videos made of three clips one after another, the middle one two
objects colliding; asked the middle clip's caption, the video's hit should be first and its best
window within one window (two seconds) of the collision.

    python3 bench/retrieval.py [--clips 400] [--queries 200] [--model reelbase-tiny] [--temporal auto]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from generator import world
from generator.video import write_mp4
from indexer.temporal import WINDOW_FRAMES
from indexer.writer import INDEX_RATE
from search.service import Reelbase
from search.settings import Settings

HELD_OUT_SEED = 777_777  # never used by `reelbase train clip` (its seeds are steps, and 9000001 / 9000002)
NAMED_MOTION_QUERIES = (  # partial motion queries, with the world's words for them
    world.Query(motion="falling"),
    world.Query(objects=((None, "ball"),), motion="moving left"),
    world.Query(objects=((None, None), (None, None)), scene="at sunset", motion="colliding"),
)
WINDOW_SECONDS = (WINDOW_FRAMES - 1) / INDEX_RATE


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
    parser.add_argument("--temporal", default="auto", help="the temporal model: auto, none or a file")
    parser.add_argument("--long-videos", type=int, default=30, help="videos of three clips, for the best moment")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        service = Reelbase(Settings(data_dir=Path(tmp) / "data", clip_model=args.model, device="auto",
                                    temporal_model=args.temporal))
        specs = held_out_library(service, Path(tmp) / "world", args.clips)
        print(f"text matched against {'windows' if service.queries.matches_windows else 'single frames'}"
              f"{'' if service.queries.matches_windows else ' (' + str(service.queries.frames_notice) + ')'}")
        results = caption_precision(service, specs, args.queries)
        results["named partial motion queries @10"] = {
            q.text: round(precision(q, service.queries.text(q.text, top_k=10), specs, 10, visible_only=False), 3)
            for q in NAMED_MOTION_QUERIES}
        service.close()
        if args.long_videos:
            service = Reelbase(Settings(data_dir=Path(tmp) / "long", clip_model=args.model, device="auto",
                                        temporal_model=args.temporal))
            results["best moment"] = best_moments(service, Path(tmp) / "long-videos", args.long_videos)
            service.close()
    print(json.dumps(results, indent=2))


def held_out_library(service: Reelbase, folder: Path, clips: int) -> dict[str, world.ClipSpec]:
    """Ingest held-out world clips; each library video's spec, by id."""
    world.write_dataset(folder, clips, HELD_OUT_SEED)
    started = time.time()
    report = service.library.ingest([folder])
    print(f"library: {len(report.added)} held-out clips (seed {HELD_OUT_SEED}), {report.frames} frames, "
          f"ingested in {time.time() - started:.1f} s with {service.settings.clip_model}")
    specs = {}
    for video_id in report.added:
        name = service.library.get(video_id).meta["original_name"]
        specs[video_id] = world.sample_spec(world.clip_rng(HELD_OUT_SEED, int(Path(name).stem)))
    return specs


def caption_precision(service: Reelbase, specs: dict[str, world.ClipSpec], queries: int) -> dict:
    """Precision of full captions @5 and partial ones @10, by what a frame shows and with motion."""
    rng = np.random.default_rng(1)
    chosen = rng.choice(list(specs.values()), size=queries, replace=True)
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
                         "queries": len(visible), "with motion": len(motion)}
    return results


def best_moments(service: Reelbase, folder: Path, videos: int) -> dict:
    """Videos of three clips (any, two colliding, any): asked the middle clip's caption, is the video first, and
    is its best window (its centre) within one window of the collision?"""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(2)
    events = {}
    for n in range(videos):
        before, after = (_clip(rng, lambda s: len(s.objects) == 1) for _ in range(2))
        middle = _clip(rng, lambda s: len(s.objects) == 2)
        frames = np.concatenate([before.frames, middle.frames, after.frames])
        write_mp4(folder / f"{n:03d}.mp4", frames, world.FPS)
        events[f"{n:03d}.mp4"] = (world.full_query(middle.spec).text,
                                  (len(before.frames) + _collision_frame(middle)) / world.FPS)
    report = service.library.ingest([folder])
    first, near = [], []
    for video_id in report.added:
        text, event_t = events[service.library.get(video_id).meta["original_name"]]
        hits = service.queries.text(text, top_k=videos)
        hit = next((h for h in hits if h.video.video_id == video_id), None)
        first.append(bool(hits) and hits[0].video.video_id == video_id)
        if hit is not None:
            best = hit.frames[0]
            centre = (best.t + best.end) / 2 if best.end is not None else best.t
            near.append(abs(centre - event_t) <= WINDOW_SECONDS)
    return {"videos": len(report.added), "video first": round(float(np.mean(first)), 3),
            f"best moment within {WINDOW_SECONDS:g} s of the collision": round(float(np.mean(near)), 3)}


def _clip(rng: np.random.Generator, keep) -> world.WorldClip:
    """A world clip from a seed of its own whose spec `keep` accepts."""
    while True:
        spec = world.sample_spec(np.random.default_rng(rng.integers(1 << 62)))
        if keep(spec):
            return world.make_clips([spec])[0]


def _collision_frame(clip: world.WorldClip) -> int:
    """The frame where two colliding objects are closest (they touch)."""
    gaps = np.abs(clip.centres[:, 0, 0] - clip.centres[:, 1, 0])
    return int(np.argmin(gaps))


if __name__ == "__main__":
    main()
