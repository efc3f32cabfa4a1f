"""`reelbase reindex` and `repair`: re-embedding the library, and removing what interrupted work left."""

from __future__ import annotations

import json
import sys

from search.cli.library import open_service
from search.cli.servers import api_answers


def cmd_reindex(args) -> int:
    from tqdm import tqdm

    with open_service() as service:
        with tqdm(desc="reindex", unit="video", file=sys.stderr, disable=args.json) as bar:
            result = service.maintenance.reindex(
                progress=lambda n, total: (setattr(bar, "total", total), bar.update(n - bar.n)))
    print(json.dumps(result, indent=2) if args.json else
          f"re-indexed {result['reindexed']} videos with {result['model']}; {len(result['failed'])} failed")
    return 0


def cmd_repair(args) -> int:
    from search.settings import Settings

    api = Settings().api_url
    if api_answers(api):
        raise ValueError(f"an API answers at {api}: stop it first, so that nothing writes while repair runs")
    with open_service() as service:
        result = service.maintenance.repair(min_age_s=0.0)  # no API answers, and Milvus Lite lets this process alone in
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"removed the vectors of {result['orphaned_vectors']} videos without a catalog row and "
          f"{len(result['stray_files'])} library files without one")
    for video_id in result["missing_files"]:
        print(f"missing file: video {video_id} (delete it with DELETE /videos/{video_id} if it is gone for good)")
    return 0
