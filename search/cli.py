"""The `reelbase` command line."""

from __future__ import annotations

import argparse
import json
import logging
import sys


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("indexer").setLevel(logging.INFO)
    logging.getLogger("generator").setLevel(logging.INFO)
    logging.getLogger("search").setLevel(logging.INFO)
    try:
        return args.func(args) or 0
    except KeyboardInterrupt:
        print("interrupted: what was committed stays; run the same command again to finish", file=sys.stderr)
        return 130
    except Exception as exc:
        if not isinstance(exc, _user_errors()):
            raise
        print(f"reelbase: error: {exc}", file=sys.stderr)
        return 2


def _user_errors() -> tuple[type[Exception], ...]:
    """Errors that are the user's to fix: shown as one line, not a traceback."""
    from indexer.models import UnknownModel
    from indexer.store import StoreError

    return (UnknownModel, StoreError, FileNotFoundError, ValueError)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="reelbase", description=__doc__)
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    p = sub.add_parser("demo", help="build a small library from world clips and search it")
    p.add_argument("--clips", type=int, default=48)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("world", help="write a data set of synthetic world clips")
    p.add_argument("--n", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_world)

    p = sub.add_parser("ingest", help="add video files or folders (recursively) to the library")
    p.add_argument("paths", nargs="+")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("search", help="find videos by text")
    p.add_argument("text")
    p.add_argument("--top-k", type=int, default=10)
    p.add_argument("--json", action="store_true", help="print the hits as JSON")
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("stats", help="what the library holds")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_stats)

    p = sub.add_parser("train", help="train a built-in model")
    p.add_argument("what", choices=["clip"])
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--run-dir", default="runs/clip", help="checkpoints; training resumes from here")
    p.add_argument("--device", default="auto")
    p.add_argument("--no-export", action="store_true", help="do not overwrite the shipped weights")
    p.set_defaults(func=cmd_train)
    return parser


DEMO_QUERIES = ("a red ball", "a blue square in a forest", "something at sunset")


def cmd_demo(args) -> int:
    from generator.world import write_dataset

    service = _service()
    folder = service.settings.data_dir / "demo-world"
    print(f"1. rendering {args.clips} synthetic world clips into {folder}")
    write_dataset(folder, args.clips, seed=2024)
    print(f"2. ingesting them into the library ({service.settings.resolved_milvus_uri})")
    bar = _Bar(quiet=False)
    try:
        report = service.ingest([folder], progress=bar)
        bar.close()
        print(report.summary())
        for query in DEMO_QUERIES:
            print(f"3. searching: {query!r}")
            for hit in service.search_text(query, top_k=3):
                caption = hit.video.meta.get("caption", hit.video.meta.get("original_name"))
                print(f"   {hit.score:.3f}  {caption}  (best moment {hit.best_t:.2f}s)")
        print("4. the library now holds:", service.stats())
    finally:
        service.close()
    print("Try: reelbase search \"a yellow ball falling\"   ·   reelbase stats")
    return 0


def cmd_world(args) -> int:
    from tqdm import tqdm

    from generator.world import write_dataset

    with tqdm(total=args.n, desc="world", unit="clip") as bar:
        paths = write_dataset(args.out, args.n, args.seed, progress=bar.update)
    print(f"wrote {len(paths)} clips with their truth records to {args.out}")
    return 0


class _Bar:
    """Ingest progress as a tqdm bar."""

    def __init__(self, quiet: bool):
        self.quiet, self.bar, self.counts = quiet, None, {"added": 0, "present": 0, "failed": 0}

    def found(self, total: int) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=total, unit="file", desc="ingest", disable=self.quiet, file=sys.stderr)

    def done(self, path: str, outcome: str) -> None:
        self.counts[outcome] += 1
        self.bar.update(1)
        self.bar.set_postfix(self.counts)

    def close(self) -> None:
        if self.bar:
            self.bar.close()


def _service():
    from search.service import Reelbase

    return Reelbase()


def cmd_ingest(args) -> int:
    service = _service()
    bar = _Bar(quiet=args.json)
    try:
        report = service.ingest(args.paths, progress=bar)
    finally:
        bar.close()
        service.close()
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.summary())
    return 0


def cmd_search(args) -> int:
    service = _service()
    try:
        hits = service.search_text(args.text, top_k=args.top_k)
    finally:
        service.close()
    if args.json:
        print(json.dumps([_hit_dict(h) for h in hits], indent=2))
        return 0
    if not hits:
        print("no matches: the library is empty or nothing is close")
    for rank, hit in enumerate(hits, 1):
        video = hit.video
        name = video.prompt or video.meta.get("original_name", video.uri)
        moments = ", ".join(f"{f.t:.2f}s" for f in hit.frames)
        print(f"{rank:2d}. {hit.score:.3f}  {name}  best at {hit.best_t:.2f}s (frames {moments})  [{video.video_id}]")
    return 0


def _hit_dict(hit) -> dict:
    return {
        "score": hit.score,
        "best_t": hit.best_t,
        "frames": [{"index": f.index, "t": f.t, "score": f.score} for f in hit.frames],
        "video": hit.video.to_dict(),
    }


def cmd_stats(args) -> int:
    service = _service()
    try:
        stats = service.stats()
    finally:
        service.close()
    if args.json:
        print(json.dumps(stats, indent=2))
    else:
        for key, value in stats.items():
            print(f"{key}: {value}")
    return 0


def cmd_train(args) -> int:
    from indexer.encoder import resolve_device
    from indexer.train_clip import TrainConfig, train

    result = train(args.run_dir, TrainConfig(steps=args.steps), resolve_device(args.device), export=not args.no_export)
    print(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
