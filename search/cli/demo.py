"""`reelbase demo`: a library built and searched in one command (generated and ingested clips, then queries)."""

from __future__ import annotations

from search.cli.library import open_service, optimize_if_grown
from search.cli.output import IngestBar, StepBar, display_name, groups_phrase

DEMO_PROMPTS = ("a red ball moving right on black", "a blue square falling in a forest",
                "a yellow ball moving quickly up at sunset", "a white square moving left on black",
                "a green ball and a purple square colliding at sunset", "a purple ball moving slowly down in a forest")
DEMO_QUERIES = ("a red ball", "a blue square in a forest", "something at sunset")


def cmd_demo(args) -> int:
    from generator.params import GenerationParams
    from generator.world import write_dataset

    with open_service() as service:
        data = service.settings.data_dir
        print(f"1. generating {args.generate} clips with the built-in ST-DiT into the library ({data})")
        for i in range(args.generate):
            params = GenerationParams(prompt=DEMO_PROMPTS[i % len(DEMO_PROMPTS)], seed=i, steps=args.steps)
            if record := service.generation.generated_with(params):  # a second demo adds nothing
                print(f"   {record.video_id}  {params.prompt!r} (in the library already)")
                continue
            with StepBar(f"clip {i + 1}/{args.generate}") as bar:
                record = service.generation.generate(params, bar.update)
            print(f"   {record.video_id}  {params.prompt!r}")
        folder = data / "demo-world"
        print(f"2. rendering {args.clips} synthetic world clips into {folder} and ingesting them")
        write_dataset(folder, args.clips, seed=2024)
        _write_copy(folder / "00000.json", folder / "copy-of-00000.mp4")
        bar = IngestBar(quiet=False)
        try:
            report = service.library.ingest([folder], progress=bar)
        finally:
            bar.close()
        print("   " + report.summary())
        optimize_if_grown(service, report)
        for query in DEMO_QUERIES:
            print(f"3. text search {query!r}:")
            for hit in service.queries.text(query, top_k=3):
                print(f"   {hit.score:.3f}  {display_name(hit.video)}  (best moment {hit.best_t:.2f}s)")
        first = service.library.browse(limit=1, descending=False)[1][0]
        print(f"4. clips similar to {display_name(first)!r}:")
        for record, score in service.queries.similar(first.video_id, top_k=3):
            print(f"   {score:.3f}  {display_name(record)}")
        groups = service.duplicates.groups()
        print(f"5. duplicate scan: {groups_phrase(len(groups))} of near-duplicate videos")
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
