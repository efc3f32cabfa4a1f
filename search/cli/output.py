"""What the commands show: progress bars on stderr, and results as text lines or JSON on stdout."""

from __future__ import annotations

import json
import sys


class StepBar:
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


class IngestBar:
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


def display_name(record) -> str:
    """How a line of output names a video."""
    return record.title


def groups_phrase(n: int) -> str:
    return f"{n} group" if n == 1 else f"{n} groups"


def hit_dict(hit) -> dict:
    """A search hit as JSON: its score, best moment, matching frames and the video's record."""
    return {
        "score": hit.score,
        "best_t": hit.best_t,
        "frames": [{"index": f.index, "t": f.t, "score": f.score} | ({"end": f.end} if f.end is not None else {})
                   for f in hit.frames],
        "video": hit.video.to_dict(),
    }


def print_scored(scored, as_json: bool) -> int:
    if as_json:
        print(json.dumps([{"score": s, "video": r.to_dict()} for r, s in scored], indent=2))
        return 0
    if not scored:
        print("no matches")
    for rank, (record, score) in enumerate(scored, 1):
        print(f"{rank:2d}. {score:.3f}  {display_name(record)}  [{record.video_id}]")
    return 0


def print_duplicate_hits(hits, as_json: bool) -> int:
    if as_json:
        print(json.dumps([{"score": h.score, "offset_s": h.offset_s, "video": h.video.to_dict(),
                           "pairs": [vars(p) for p in h.pairs]} for h in hits], indent=2))
        return 0
    if not hits:
        print("no near-duplicates")
    for hit in hits:
        frames = ", ".join(f"{p.t_a:.2f}s~{p.t_b:.2f}s" for p in hit.pairs[:4])
        print(f"{hit.score:.3f}  {display_name(hit.video)}  [{hit.video.video_id}]  frames {frames}")
    return 0


def print_hits(hits, offset: int, as_json: bool) -> int:
    """Search hits ranked from offset + 1, each with its best moment and matching frames."""
    if as_json:
        print(json.dumps([hit_dict(h) for h in hits], indent=2))
        return 0
    if not hits:
        print("no matches: the library is empty or nothing is close")
    for rank, hit in enumerate(hits, offset + 1):
        moments = ", ".join(f"{f.t:.2f}-{f.end:.2f}s" if f.end is not None else f"{f.t:.2f}s" for f in hit.frames)
        kind = "windows" if hit.frames and hit.frames[0].end is not None else "frames"
        print(f"{rank:2d}. {hit.score:.3f}  {display_name(hit.video)}  best at {hit.best_t:.2f}s ({kind} {moments})  "
              f"[{hit.video.video_id}]")
    return 0


def print_duplicate_groups(groups, threshold: float, as_json: bool) -> int:
    """Library-wide duplicate groups, each with its verified links and a few matching frame pairs."""
    if as_json:
        print(json.dumps([{"videos": [v.to_dict() for v in g.videos], "links": g.links} for g in groups], indent=2))
        return 0
    print(f"{groups_phrase(len(groups))} of near-duplicate videos (threshold {threshold})")
    for n, group in enumerate(groups, 1):
        print(f"group {n}: " + ", ".join(f"{display_name(v)} [{v.video_id[:8]}]" for v in group.videos))
        for link in group.links:
            frames = ", ".join(f"{p['t_a']:.2f}s~{p['t_b']:.2f}s" for p in link["pairs"][:4])
            print(f"   {link['a'][:8]} ~ {link['b'][:8]}  score {link['score']:.3f}  frames {frames}")
    return 0
