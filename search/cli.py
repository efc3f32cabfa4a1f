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

    p = sub.add_parser("generate", help="write a clip from a prompt (mp4 and a JSON record beside it)")
    p.add_argument("prompt")
    p.add_argument("--negative", default="", help="negative prompt")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--guidance", type=float, default=4.0)
    p.add_argument("--frames", type=int, default=16)
    p.add_argument("--model", default="reelbase-tiny", help="built-in name or a .safetensors checkpoint")
    p.add_argument("--device", default="auto")
    p.add_argument("--out", default="clip.mp4")
    p.add_argument("--json", action="store_true", help="print the record as JSON")
    p.set_defaults(func=cmd_generate)

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
    p.add_argument("what", choices=["clip", "autoencoder", "generator"])
    p.add_argument("--steps", type=int, default=None, help="total steps (default: the model's own)")
    p.add_argument("--config", default="tiny", help="generator size: tiny, base")
    p.add_argument("--batch", type=int, default=None)
    p.add_argument("--run-dir", default=None, help="checkpoints, default runs/WHAT; training resumes from here")
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    p.add_argument("--no-export", action="store_true", help="do not overwrite the shipped weights")
    p.add_argument("--init", default=None, help="generator: start a new run from these weights (e.g. the shipped ones)")
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
        try:
            report = service.ingest([folder], progress=bar)
        finally:
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


def cmd_generate(args) -> int:
    from pathlib import Path

    from tqdm import tqdm

    from generator.pipeline import Generator
    from generator.video import write_mp4

    generator = Generator.load(args.model, args.device)
    bar = tqdm(desc="generate", unit="step", file=sys.stderr, disable=args.json)

    def progress(step: int, total: int) -> None:
        bar.total = total
        bar.n = step
        bar.refresh()

    try:
        clip = generator.generate(args.prompt, negative_prompt=args.negative, seed=args.seed, steps=args.steps,
                                  guidance=args.guidance, frames=args.frames, callback=progress)
    finally:
        bar.close()
    out = write_mp4(args.out, clip.frames, clip.fps)
    record_path = Path(out).with_suffix(".json")
    record_path.write_text(json.dumps(clip.record, indent=2))
    for warning in clip.record["warnings"]:
        print(f"warning: {warning}", file=sys.stderr)
    print(json.dumps({**clip.record, "path": str(out)}, indent=2) if args.json else
          f"wrote {out} ({len(clip.frames)} frames at {clip.fps} fps) and its record {record_path}")
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
    import dataclasses
    import shutil

    import torch

    from indexer.encoder import resolve_device

    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    run_dir = args.run_dir or f"runs/{args.what}"
    overrides = {k: v for k, v in (("steps", args.steps), ("batch", args.batch)) if v is not None}
    if args.what == "clip":
        from indexer.train_clip import TrainConfig, train

        overrides.pop("batch", None)
        result = train(run_dir, dataclasses.replace(TrainConfig(), **overrides), device, export=not args.no_export)
    elif args.what == "autoencoder":
        from generator.autoencoder import train_autoencoder
        from generator.checkpoint import WEIGHTS_DIR

        result = train_autoencoder(run_dir, device=device, **overrides)
        if not args.no_export:
            shutil.copyfile(f"{run_dir}/autoencoder.safetensors", WEIGHTS_DIR / "autoencoder-tiny.safetensors")
    else:
        from generator.checkpoint import WEIGHTS_DIR
        from generator.train import GeneratorTrainConfig, train_generator

        cfg = dataclasses.replace(GeneratorTrainConfig(config=args.config), **overrides)
        export = None if args.no_export else WEIGHTS_DIR / f"generator-{args.config}.safetensors"
        result = train_generator(run_dir, cfg, device, export=export, init=args.init)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
