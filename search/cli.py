"""The `reelbase` command line."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time

OPTIMIZE_SHARE = 0.1  # an ingest adding this share of the library's frames rebuilds Milvus Lite's indexes


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
        print(f"reelbase: error: {_one_line(exc)}", file=sys.stderr)
        return 2


def _one_line(exc: Exception) -> str:
    """A user error as one line; pydantic's validation errors as 'field: what is wrong; ...'."""
    from pydantic import ValidationError

    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'input'}: {e['msg']}" for e in exc.errors())
    return str(exc)


def _int_in(low: int, high: int):
    """An argparse type: an integer within low..high, else a usage error naming the range."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be within {low}..{high}, got {value}")
        return value

    return parse


def _user_errors() -> tuple[type[Exception], ...]:
    """Errors that are the user's to fix: shown as one line, not a traceback."""
    from common.weights import UnknownModel
    from indexer.reader import BadVideo
    from indexer.store import StoreError
    from search.library import NotFound

    return (UnknownModel, StoreError, FileNotFoundError, PermissionError, ValueError, NotFound, BadVideo)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="reelbase", description=__doc__)
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    p = sub.add_parser("demo", help="generate clips and ingest world clips into a library, then search it")
    p.add_argument("--clips", type=int, default=24, help="world clips to ingest")
    p.add_argument("--generate", type=int, default=4, help="clips to generate")
    p.add_argument("--steps", type=int, default=20, help="sampling steps per generated clip")
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
    p.add_argument("--library", action="store_true", help="save the clip into the library and index it (not --out)")
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

    p = sub.add_parser("search", help="find videos by text (or by an image, or generated clips by prompt)")
    p.add_argument("text", nargs="?", default="")
    p.add_argument("--image", help="search by this image file instead of text")
    p.add_argument("--prompts", action="store_true", help="search the prompts of generated clips")
    p.add_argument("--top-k", type=_int_in(1, 1000), default=10)
    p.add_argument("--offset", type=_int_in(0, 1_000_000), default=0)
    p.add_argument("--source", choices=["generated", "ingested"])
    p.add_argument("--min-duration", type=float)
    p.add_argument("--max-duration", type=float)
    p.add_argument("--json", action="store_true", help="print the hits as JSON")
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("similar", help="the videos nearest to a library video")
    p.add_argument("video_id")
    p.add_argument("--top-k", type=_int_in(1, 1000), default=10)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_similar)

    p = sub.add_parser("dups", help="near-duplicate videos: library-wide groups, or copies of one video or image")
    p.add_argument("video_id", nargs="?", help="only copies of this video")
    p.add_argument("--image", help="only videos holding a copy of this image")
    p.add_argument("--threshold", type=float, default=None, help="verified score for a duplicate (0..1)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_dups)

    p = sub.add_parser("optimize", help="rebuild the search indexes over every frame (when `serve` is not running)")
    p.set_defaults(func=cmd_optimize)

    p = sub.add_parser("repair", help="remove what interrupted work left (vectors or files without a video), "
                                      "report videos whose file is gone (while nothing else writes)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_repair)

    p = sub.add_parser("reindex", help="re-embed every library video with the configured CLIP model")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_reindex)

    p = sub.add_parser("serve", help="run the HTTP API (it then owns the Milvus Lite file)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("ui", help="run the Streamlit UI (and the API, when none answers on this machine)")
    p.add_argument("--port", type=int, default=8501)
    p.add_argument("--api", default=None, help="the API's address (default REELBASE_API_URL or http://127.0.0.1:8000)")
    p.set_defaults(func=cmd_ui)

    p = sub.add_parser("stats", help="what the library holds")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_stats)

    p = sub.add_parser("train", help="train a built-in model")
    p.add_argument("what", choices=["clip", "autoencoder", "generator"])
    p.add_argument("--steps", type=int, default=None, help="total steps (default: the model's own)")
    p.add_argument("--minutes", type=float, default=None,
                   help="generator: train for this long instead of a step count (learning rate over the time; "
                        "checkpoints and exports every few minutes and at the end; resumes from the run dir)")
    p.add_argument("--config", default="tiny", help="generator size: tiny, base")
    p.add_argument("--batch", type=int, default=None)
    p.add_argument("--run-dir", default=None, help="checkpoints, default runs/WHAT; training resumes from here")
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    p.add_argument("--no-export", action="store_true", help="do not overwrite the shipped weights")
    p.add_argument("--lr", type=float, default=None,
                   help="generator: peak learning rate (default 6e-4; lower it to go on from trained weights)")
    p.add_argument("--object-weight", type=float, default=None,
                   help="generator: extra loss weight on the latent cells objects cover (default 0)")
    p.add_argument("--time-shift", type=float, default=None,
                   help="generator: shift training times toward noise, t -> s t / (1 + (s - 1) t) (SD3); the model "
                        "keeps it and samples the same way (default 1: none)")
    p.add_argument("--init", default=None, help="generator: start a new run from these weights (e.g. the shipped ones)")
    p.add_argument("--data", default=None,
                   help="generator: a folder of videos with captions (clip.json or clip.txt) instead of the world")
    p.set_defaults(func=cmd_train)
    return parser


DEMO_PROMPTS = ("a red ball moving right on black", "a blue square falling in a forest",
                "a yellow ball moving quickly up at sunset", "a white square moving left on black",
                "a green ball and a purple square colliding at sunset", "a purple ball moving slowly down in a forest")
DEMO_QUERIES = ("a red ball", "a blue square in a forest", "something at sunset")


def cmd_demo(args) -> int:
    from generator.params import GenerationParams
    from generator.world import write_dataset

    with _service() as service:
        data = service.settings.data_dir
        print(f"1. generating {args.generate} clips with the built-in ST-DiT into the library ({data})")
        for i in range(args.generate):
            params = GenerationParams(prompt=DEMO_PROMPTS[i % len(DEMO_PROMPTS)], seed=i, steps=args.steps)
            if record := service.generation.generated_with(params):  # a second demo adds nothing
                print(f"   {record.video_id}  {params.prompt!r} (in the library already)")
                continue
            with _StepBar(f"clip {i + 1}/{args.generate}") as bar:
                record = service.generation.generate(params, bar.update)
            print(f"   {record.video_id}  {params.prompt!r}")
        folder = data / "demo-world"
        print(f"2. rendering {args.clips} synthetic world clips into {folder} and ingesting them")
        write_dataset(folder, args.clips, seed=2024)
        _write_copy(folder / "00000.json", folder / "copy-of-00000.mp4")
        bar = _Bar(quiet=False)
        try:
            report = service.library.ingest([folder], progress=bar)
        finally:
            bar.close()
        print("   " + report.summary())
        _optimize_if_grown(service, report)
        for query in DEMO_QUERIES:
            print(f"3. text search {query!r}:")
            for hit in service.queries.text(query, top_k=3):
                print(f"   {hit.score:.3f}  {_name(hit.video)}  (best moment {hit.best_t:.2f}s)")
        first = service.library.browse(limit=1, descending=False)[1][0]
        print(f"4. clips similar to {_name(first)!r}:")
        for record, score in service.queries.similar(first.video_id, top_k=3):
            print(f"   {score:.3f}  {_name(record)}")
        groups = service.duplicates.groups()
        print(f"5. duplicate scan: {_groups(len(groups))} of near-duplicate videos")
        stats = service.stats()
        print(f"6. the library holds {stats['videos']} videos ({stats['videos_by_source']}), {stats['frames']} frames, "
              f"{stats['library_bytes'] / 1e6:.1f} MB, embedded with {stats['model']}")
    print("Next: `reelbase serve` for the HTTP API (docs at http://127.0.0.1:8000/docs), `reelbase ui` for the UI, "
          "or `reelbase search \"a yellow ball falling\"`.")
    return 0


def _write_copy(truth_path, out) -> None:
    """A brightened, re-encoded copy of a world clip, for the duplicate scan to find."""
    import numpy as np

    from generator.video import write_mp4
    from generator.world import FPS
    from indexer.reader import read_frames

    frames = read_frames(truth_path.with_suffix(".mp4"), rate=FPS).frames
    write_mp4(out, np.clip(frames.astype(np.int16) + 40, 0, 255).astype(np.uint8), FPS, crf=30)


def _name(record) -> str:
    return record.title


class _StepBar:
    """Sampling steps as a tqdm bar; usable as a generator callback."""

    def __init__(self, desc: str, quiet: bool = False):
        from tqdm import tqdm

        self.bar = tqdm(desc=desc, unit="step", file=sys.stderr, disable=quiet, leave=False)

    def update(self, step: int, total: int) -> None:
        self.bar.total = total
        self.bar.n = step
        self.bar.refresh()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.bar.close()


def cmd_generate(args) -> int:
    from pathlib import Path

    from generator.params import GenerationParams

    params = GenerationParams(prompt=args.prompt, negative_prompt=args.negative, seed=args.seed, steps=args.steps,
                              guidance=args.guidance, frames=args.frames)  # the API's bounds, before any work
    if args.library:
        with _service() as service:
            with _StepBar("generate", quiet=args.json) as bar:
                record = service.generation.generate(params, bar.update)
        print(json.dumps(record.to_dict(), indent=2) if args.json else
              f"saved {record.video_id} into the library ({record.num_frames} frames); "
              f"`reelbase similar {record.video_id}` finds clips like it")
        return 0

    from generator.pipeline import Generator
    from generator.video import write_mp4

    Path(args.out).parent.mkdir(parents=True, exist_ok=True)  # before the work, not after it
    generator = Generator.load(args.model, args.device)
    with _StepBar("generate", quiet=args.json) as bar:
        clip = generator.make(params, callback=bar.update)
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
    bar = _Bar(quiet=args.json)
    with _service() as service:
        try:
            report = service.library.ingest(args.paths, progress=bar)
        finally:
            bar.close()
        print(json.dumps(report.to_dict(), indent=2) if args.json else report.summary())
        _optimize_if_grown(service, report, quiet=args.json)
    if report.nothing_taken:
        print("reelbase: nothing asked for could be added (see the reasons above)", file=sys.stderr)
        return 1
    return 0


def _optimize_if_grown(service, report, quiet: bool = False) -> None:
    """After an ingest that added a good share of the library's frames, rebuild the indexes."""
    if report.frames and report.frames >= OPTIMIZE_SHARE * service.library.count_frames():
        t0 = time.perf_counter()
        service.library.optimize()
        if not quiet:
            print(f"rebuilt the search indexes in {time.perf_counter() - t0:.1f} s", file=sys.stderr)


def cmd_optimize(args) -> int:
    with _service() as service:
        t0 = time.perf_counter()
        frames = service.library.optimize()
        print(f"rebuilt the search indexes over {frames} frames "
              f"in {time.perf_counter() - t0:.1f} s")
    return 0


def cmd_search(args) -> int:
    from search.params import Filters

    filters = Filters(source=args.source, min_duration=args.min_duration, max_duration=args.max_duration)
    if args.prompts and (args.image or args.offset or filters.expression()):
        raise ValueError("--prompts searches the prompts of generated clips by text; it takes --top-k only")
    with _service() as service:
        if args.prompts:
            scored = service.queries.prompts(args.text, args.top_k)
        elif args.image:
            hits = service.queries.image(_read_image(args.image), args.top_k, filters, args.offset)
        else:
            hits = service.queries.text(args.text, args.top_k, filters, args.offset)
        notice = None if args.image else service.queries.vocabulary_notice(args.text)
    if notice:
        print(f"reelbase: note: {notice}", file=sys.stderr)
    if args.prompts:
        return _print_scored(scored, args.json)
    if args.json:
        print(json.dumps([_hit_dict(h) for h in hits], indent=2))
        return 0
    if not hits:
        print("no matches: the library is empty or nothing is close")
    for rank, hit in enumerate(hits, args.offset + 1):
        moments = ", ".join(f"{f.t:.2f}s" for f in hit.frames)
        print(f"{rank:2d}. {hit.score:.3f}  {_name(hit.video)}  best at {hit.best_t:.2f}s (frames {moments})  "
              f"[{hit.video.video_id}]")
    return 0


def _read_image(path: str):
    from search.images import read_image

    return read_image(path, path)


def _print_scored(scored, as_json: bool) -> int:
    if as_json:
        print(json.dumps([{"score": s, "video": r.to_dict()} for r, s in scored], indent=2))
        return 0
    if not scored:
        print("no matches")
    for rank, (record, score) in enumerate(scored, 1):
        print(f"{rank:2d}. {score:.3f}  {_name(record)}  [{record.video_id}]")
    return 0


def cmd_similar(args) -> int:
    with _service() as service:
        scored = service.queries.similar(args.video_id, args.top_k)
    return _print_scored(scored, args.json)


def cmd_dups(args) -> int:
    from search.duplicates import DEFAULT_THRESHOLD

    threshold = DEFAULT_THRESHOLD if args.threshold is None else args.threshold
    if not 0 <= threshold <= 1:
        raise ValueError(f"--threshold must be within 0..1, got {threshold}")
    with _service() as service:
        if args.video_id or args.image:
            hits = (service.duplicates.of_image(_read_image(args.image), threshold) if args.image
                    else service.duplicates.of_video(args.video_id, threshold))
            return _print_duplicate_hits(hits, args.json)
        from tqdm import tqdm

        with tqdm(desc="dups", unit="video", file=sys.stderr, disable=args.json) as bar:
            groups = service.duplicates.groups(threshold, progress=lambda n, total: (
                setattr(bar, "total", total), bar.update(n - bar.n)))
    if args.json:
        print(json.dumps([{"videos": [v.to_dict() for v in g.videos], "links": g.links} for g in groups], indent=2))
        return 0
    print(f"{_groups(len(groups))} of near-duplicate videos (threshold {threshold})")
    for n, group in enumerate(groups, 1):
        print(f"group {n}: " + ", ".join(f"{_name(v)} [{v.video_id[:8]}]" for v in group.videos))
        for link in group.links:
            frames = ", ".join(f"{p['t_a']:.2f}s~{p['t_b']:.2f}s" for p in link["pairs"][:4])
            print(f"   {link['a'][:8]} ~ {link['b'][:8]}  score {link['score']:.3f}  frames {frames}")
    return 0


def _groups(n: int) -> str:
    return f"{n} group" if n == 1 else f"{n} groups"


def _print_duplicate_hits(hits, as_json: bool) -> int:
    if as_json:
        print(json.dumps([{"score": h.score, "offset_s": h.offset_s, "video": h.video.to_dict(),
                           "pairs": [vars(p) for p in h.pairs]} for h in hits], indent=2))
        return 0
    if not hits:
        print("no near-duplicates")
    for hit in hits:
        frames = ", ".join(f"{p.t_a:.2f}s~{p.t_b:.2f}s" for p in hit.pairs[:4])
        print(f"{hit.score:.3f}  {_name(hit.video)}  [{hit.video.video_id}]  frames {frames}")
    return 0


def cmd_reindex(args) -> int:
    from tqdm import tqdm

    with _service() as service:
        with tqdm(desc="reindex", unit="video", file=sys.stderr, disable=args.json) as bar:
            result = service.maintenance.reindex(
                progress=lambda n, total: (setattr(bar, "total", total), bar.update(n - bar.n)))
    print(json.dumps(result, indent=2) if args.json else
          f"re-indexed {result['reindexed']} videos with {result['model']}; {len(result['failed'])} failed")
    return 0


def cmd_repair(args) -> int:
    from search.settings import Settings

    api = Settings().api_url
    if _answers(api):
        raise ValueError(f"an API answers at {api}: stop it first, so that nothing writes while repair runs")
    with _service() as service:
        result = service.maintenance.repair(min_age_s=0.0)  # no API answers, and Milvus Lite lets this process alone in
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"removed the vectors of {result['orphaned_vectors']} videos without a catalog row and "
          f"{len(result['stray_files'])} library files without one")
    for video_id in result["missing_files"]:
        print(f"missing file: video {video_id} (delete it with DELETE /videos/{video_id} if it is gone for good)")
    return 0


def cmd_serve(args) -> int:
    import uvicorn

    from search.api import create_app

    uvicorn.run(create_app(), host=args.host, port=args.port, log_level="info")
    return 0


def _hit_dict(hit) -> dict:
    return {
        "score": hit.score,
        "best_t": hit.best_t,
        "frames": [{"index": f.index, "t": f.t, "score": f.score} for f in hit.frames],
        "video": hit.video.to_dict(),
    }


def cmd_stats(args) -> int:
    with _service() as service:
        stats = service.stats()
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

    from common.device import resolve_device

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
        from generator.checkpoint import AUTOENCODER, WEIGHTS_DIR

        result = train_autoencoder(run_dir, device=device, **overrides)
        if not args.no_export:
            shutil.copyfile(f"{run_dir}/autoencoder.safetensors", WEIGHTS_DIR / AUTOENCODER)
    else:
        from generator.checkpoint import builtin_path
        from generator.train import GeneratorTrainConfig, train_generator

        if args.minutes is not None and args.steps is not None:
            raise SystemExit("reelbase train generator: give --steps or --minutes, not both")
        overrides |= {k: v for k, v in (("lr", args.lr), ("object_weight", args.object_weight),
                                        ("minutes", args.minutes), ("time_shift", args.time_shift)) if v is not None}
        cfg = dataclasses.replace(GeneratorTrainConfig(config=args.config), **overrides)
        export = None if args.no_export else builtin_path(args.config)
        result = train_generator(run_dir, cfg, device, export=export, init=args.init, data=args.data)
    print(json.dumps(result, indent=2))
    return 0


def cmd_ui(args) -> int:
    import os
    import signal
    import subprocess
    import time
    from pathlib import Path
    from urllib.parse import urlparse

    from search.settings import Settings

    api = (args.api or Settings().api_url).rstrip("/")
    server = None
    if not _answers(api):
        url = urlparse(api)
        if url.hostname not in ("127.0.0.1", "localhost"):
            raise ValueError(f"no reelbase API answers at {api}; start it there (`reelbase serve`) or give --api")
        print(f"starting the API at {api} (reelbase serve)", file=sys.stderr)
        server = subprocess.Popen([sys.executable, "-m", "search.cli", "serve", "--host", url.hostname,
                                   "--port", str(url.port or 80)])
        deadline = time.time() + 180
        while not _answers(api):
            if server.poll() is not None or time.time() > deadline:
                server.kill()
                raise ValueError(f"the API did not start at {api}; see its messages above")
            time.sleep(0.5)
    app = Path(__file__).parents[1] / "ui" / "app.py"
    env = {**os.environ, "REELBASE_API_URL": api}
    print(f"reelbase UI at http://127.0.0.1:{args.port} (API {api})", file=sys.stderr)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so the children below are stopped too
    ui = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(app), "--server.port", str(args.port),
                           "--server.headless", "true", "--browser.gatherUsageStats", "false"], env=env)
    try:
        return ui.wait()
    finally:
        for child in (ui, server):
            if child is not None and child.poll() is None:
                child.terminate()
                child.wait(timeout=60)


def _answers(api: str) -> bool:
    import httpx

    try:
        return httpx.get(f"{api}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


if __name__ == "__main__":
    sys.exit(main())
