"""`reelbase search`, `similar` and `dups`: questions asked of the library."""

from __future__ import annotations

import sys

from search.cli.library import open_service
from search.cli.output import print_duplicate_groups, print_duplicate_hits, print_hits, print_scored


def cmd_search(args) -> int:
    from search.params import Filters

    filters = Filters(source=args.source, min_duration=args.min_duration, max_duration=args.max_duration)
    if args.prompts and (args.image or args.offset or filters.expression()):
        raise ValueError("--prompts searches the prompts of generated clips by text; it takes --top-k only")
    with open_service() as service:
        if args.prompts:
            scored = service.queries.prompts(args.text, args.top_k)
        elif args.image:
            hits = service.queries.image(service.images.read(args.image, args.image), args.top_k, filters, args.offset)
        else:
            hits = service.queries.text(args.text, args.top_k, filters, args.offset)
        notices = [] if args.image else [service.queries.vocabulary_notice(args.text),
                                         None if args.prompts else service.queries.frames_notice]
    for notice in filter(None, notices):
        print(f"reelbase: note: {notice}", file=sys.stderr)
    if args.prompts:
        return print_scored(scored, args.json)
    return print_hits(hits, args.offset, args.json)


def cmd_similar(args) -> int:
    with open_service() as service:
        scored = service.queries.similar(args.video_id, args.top_k)
    return print_scored(scored, args.json)


def cmd_dups(args) -> int:
    from search.duplicates import DEFAULT_THRESHOLD

    threshold = DEFAULT_THRESHOLD if args.threshold is None else args.threshold
    if not 0 <= threshold <= 1:
        raise ValueError(f"--threshold must be within 0..1, got {threshold}")
    with open_service() as service:
        if args.video_id or args.image:
            hits = (service.duplicates.of_image(service.images.read(args.image, args.image), threshold) if args.image
                    else service.duplicates.of_video(args.video_id, threshold))
            return print_duplicate_hits(hits, args.json)
        from tqdm import tqdm

        with tqdm(desc="dups", unit="video", file=sys.stderr, disable=args.json) as bar:
            groups = service.duplicates.groups(threshold, progress=lambda n, total: (
                setattr(bar, "total", total), bar.update(n - bar.n)))
    return print_duplicate_groups(groups, threshold, args.json)

