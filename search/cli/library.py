"""`reelbase ingest`, `optimize` and `stats`: filling the library and what it holds."""

from __future__ import annotations

import json
import sys
import time

from search.cli.output import IngestBar

OPTIMIZE_SHARE = 0.1  # an ingest adding this share of the library's frames rebuilds Milvus Lite's indexes


def open_service():
    """The service over the configured library, imported only by a command that needs it (`--help` stays fast)."""
    from search.service import Reelbase

    return Reelbase()


def cmd_ingest(args) -> int:
    bar = IngestBar(quiet=args.json)
    with open_service() as service:
        try:
            report = service.library.ingest(args.paths, progress=bar)
        finally:
            bar.close()
        print(json.dumps(report.to_dict(), indent=2) if args.json else report.summary())
        optimize_if_grown(service, report, quiet=args.json)
    if report.nothing_taken:
        print("reelbase: nothing asked for could be added (see the reasons above)", file=sys.stderr)
        return 1
    return 0


def optimize_if_grown(service, report, quiet: bool = False) -> None:
    """After an ingest that added a good share of the library's frames, rebuild the indexes."""
    if report.frames and report.frames >= OPTIMIZE_SHARE * service.library.count_frames():
        t0 = time.perf_counter()
        service.library.optimize()
        if not quiet:
            print(f"rebuilt the search indexes in {time.perf_counter() - t0:.1f} s", file=sys.stderr)


def cmd_optimize(args) -> int:
    with open_service() as service:
        t0 = time.perf_counter()
        frames = service.library.optimize()
        print(f"rebuilt the search indexes over {frames} frames "
              f"in {time.perf_counter() - t0:.1f} s")
    return 0


def cmd_stats(args) -> int:
    with open_service() as service:
        stats = service.stats()
    if args.json:
        print(json.dumps(stats, indent=2))
    else:
        for key, value in stats.items():
            print(f"{key}: {value}")
    return 0
