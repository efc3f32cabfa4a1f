"""The library-wide duplicate scan as it was when issue 15 was filed, timed by bench/duplicates.py beside today's.

Then a scan made every fingerprint from its video file (decoded again at up to 128 px, 8 frames a
second, at most 64) with torch, looked up each video's candidates alone, and compared every
candidate pair alone. The fingerprint module of that time imports only numpy and torch, so it is
read from git at ISSUE_COMMIT (the commit before the scan changed) rather than copied here; the
scan loop, a few lines then, is below as it was. It runs on one thread (torch's and the BLAS's),
as today's scan does: faster than it ran then, so the speed-up printed beside it is a lower bound.
"""

from __future__ import annotations

import subprocess
import sys
import types
from pathlib import Path

import torch
from threadpoolctl import threadpool_limits

from indexer.reader import read_frames
from search.duplicates import group_pairs
from search.service import Reelbase

ISSUE_COMMIT = "7cdb9fe55910e31f6c034b6e67712e7119d960dd"  # the last commit before the scan's speed-ups
ROOT = Path(__file__).resolve().parents[1]


def fingerprint_module() -> types.ModuleType:
    """indexer/fingerprint.py as it was at ISSUE_COMMIT (SystemExit when this checkout has no such history)."""
    shown = subprocess.run(["git", "-C", str(ROOT), "show", f"{ISSUE_COMMIT}:indexer/fingerprint.py"],
                           capture_output=True, text=True)
    if shown.returncode != 0:
        raise SystemExit(f"cannot read the fingerprints of issue 15's time from git ({shown.stderr.strip()}); "
                         "run with --no-issue-scan")
    module = types.ModuleType("issue15_fingerprint")
    sys.modules[module.__name__] = module  # dataclasses look their module up
    exec(compile(shown.stdout, f"{ISSUE_COMMIT[:7]}:indexer/fingerprint.py", "exec"), module.__dict__)
    return module


def groups(service: Reelbase, threshold: float) -> list[list[str]]:
    """The library's duplicate groups (lists of video ids) as the scan of issue 15's time found them."""
    old = fingerprint_module()
    records = {r.video_id: r for r in service.store.iter_videos()}
    files = {v: p for v, r in records.items() if (p := service.folder.existing_file(r.uri))}
    fingerprints = {}

    def fp(video_id: str):
        if video_id not in fingerprints:
            sampled = read_frames(files[video_id], rate=old.RATE, cap=old.MAX_FRAMES, max_side=128)
            fingerprints[video_id] = old.fingerprint(sampled.frames, sampled.times)
        return fingerprints[video_id]

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(limits=1):
            links, seen = [], set()
            for video_id in sorted(files):
                for other in service.duplicates._candidates(video_id):
                    pair = tuple(sorted((video_id, other)))
                    if pair in seen or other not in files:
                        continue
                    seen.add(pair)
                    if old.compare(*(fp(v) for v in pair), threshold).score >= threshold:
                        links.append(pair)
    finally:
        torch.set_num_threads(threads)
    return group_pairs(links)
