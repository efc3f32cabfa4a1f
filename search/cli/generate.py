"""`reelbase generate` and `world`: writing clips (one from a prompt, or a data set of synthetic world clips)."""

from __future__ import annotations

import json
import sys

from search.cli.library import open_service
from search.cli.output import StepBar


def cmd_generate(args) -> int:
    from pathlib import Path

    from generator.params import GenerationParams

    params = GenerationParams(prompt=args.prompt, negative_prompt=args.negative, seed=args.seed, steps=args.steps,
                              guidance=args.guidance, candidates=args.candidates,
                              frames=args.frames)  # the API's bounds, before any work
    if args.library:
        with open_service() as service:
            with StepBar("generate", quiet=args.json) as bar:
                record = service.generation.generate(params, bar.update)
        print(json.dumps(record.to_dict(), indent=2) if args.json else
              f"saved {record.video_id} into the library ({record.num_frames} frames); "
              f"`reelbase similar {record.video_id}` finds clips like it")
        return 0

    from generator.pipeline import Generator
    from generator.video import write_mp4

    Path(args.out).parent.mkdir(parents=True, exist_ok=True)  # before the work, not after it
    generator = Generator.load(args.model, args.device)
    with StepBar("generate", quiet=args.json) as bar:
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
