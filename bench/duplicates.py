"""Near-duplicate detection: pair precision and recall at the default threshold, and frame-time accuracy.

100 world clips, each with six transformed copies (re-encoded at crf 40, resized down and up,
cropped 10%, brightened, noised, first frames trimmed), among 300 distractors: two caption twins
of every original (the same caption: objects, colour, motion and scene, at other positions and
speeds, on another path) and 100 other clips. Pairs of clips from different families that run on
the same path (within one object diameter at some time shift, same scene and colours) are the
trimmed copy of each other in all but name; they are reported and left out of the scores (see
`dup_data.same_path`). All are ingested into a fresh library (Milvus Lite, the built-in
CLIP model), then scanned three times: by `Reelbase.duplicates.groups()` from the thumbnails the
ingest kept (no video decoded), by the same with every fingerprint made from its video file (a
library from before thumbnails were kept), and as the scan was when issue 15 was filed
(`dup_issue15`: each video decoded again, each candidate pair compared alone; the slowest by far,
`--no-issue-scan` leaves it out). Two videos are a predicted pair when they land in one group.

    python3 bench/duplicates.py [--originals 100] [--threshold 0.8] [--no-issue-scan]
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1]))

import dup_issue15  # noqa: E402
from dup_data import TRANSFORMS, TRIM, caption_twin, look, same_path, write_clip  # noqa: E402

from generator import world  # noqa: E402
from indexer.ingest import content_id  # noqa: E402
from search.duplicates import DEFAULT_THRESHOLD, FingerprintCache, read_for_fingerprint  # noqa: E402
from search.service import Reelbase  # noqa: E402
from search.settings import Settings  # noqa: E402

SEED = 880_000  # never used in training (training draws from step seeds below 100k)


def build(folder: Path, originals: int) -> dict[str, dict]:
    """Write every clip; return truth by content id: family (or None), kind, and frames trimmed."""
    truth: dict[str, dict] = {}

    def add(path: Path, clip: world.WorldClip, family, kind: str, frames: np.ndarray | None = None, shift: int = 0):
        write_clip(path, clip.frames if frames is None else frames)
        truth[content_id(path)] = {"family": family, "kind": kind, "shift": shift, "name": path.name,
                                   "caption": clip.caption, "clip": clip}

    clips = world.sample_clips(SEED, 0, originals)
    rng = np.random.default_rng(SEED)
    twins = [caption_twin(clip, rng) for clip in clips for _ in range(2)]
    others = world.sample_clips(SEED + 1, 0, originals)
    for i, clip in enumerate(clips):
        add(folder / f"{i:03d}-original.mp4", clip, i, "original")
        for name, transform in TRANSFORMS.items():
            add(folder / f"{i:03d}-{name}.mp4", clip, i, name, transform(clip.frames), TRIM if name == "trimmed" else 0)
    for j, clip in enumerate(twins):
        add(folder / f"twin-{j:03d}.mp4", clip, None, "twin")
    for j, clip in enumerate(others):
        add(folder / f"other-{j:03d}.mp4", clip, None, "other")
    return truth


def ambiguous_pairs(truth: dict[str, dict]) -> set[tuple[str, str]]:
    """Pairs from different families whose clips run on the same path (see `dup_data.same_path`)."""
    by_look: dict[tuple, list[str]] = {}
    for vid, t in truth.items():
        by_look.setdefault(look(t["clip"]), []).append(vid)
    out = set()
    for members in by_look.values():
        for a, b in itertools.combinations(members, 2):
            ta, tb = truth[a], truth[b]
            if (ta["family"] is None or ta["family"] != tb["family"]) and same_path(ta["clip"], tb["clip"]):
                out.add(tuple(sorted((a, b))))
    return out


def true_pairs(truth: dict[str, dict]) -> set[tuple[str, str]]:
    families: dict[int, list[str]] = {}
    for vid, t in truth.items():
        if t["family"] is not None:
            families.setdefault(t["family"], []).append(vid)
    return {tuple(sorted(p)) for members in families.values() for p in itertools.combinations(members, 2)}


def timed(scan) -> tuple[list[list[str]], float]:
    """The groups (lists of video ids) a scan finds and the seconds it took."""
    t0 = time.time()
    groups = scan()
    return groups, time.time() - t0


def ids_of(groups: list) -> list[list[str]]:
    return [[v.video_id for v in g.videos] for g in groups]


def scored(groups: list[list[str]], ambiguous: set, expected: set) -> tuple[set, set]:
    """The predicted pairs (ambiguous ones left out) and those of them that are true."""
    predicted = {tuple(sorted(p)) for g in groups for p in itertools.combinations(g, 2)}
    predicted -= ambiguous
    return predicted, predicted & expected


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--originals", type=int, default=100)
    ap.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD)
    ap.add_argument("--no-issue-scan", action="store_true", help="leave out the scan of issue 15's time")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t0 = time.time()
        truth = build(tmp / "clips", args.originals)
        print(f"wrote {len(truth)} clips in {time.time() - t0:.1f} s")
        service = Reelbase(Settings(data_dir=tmp / "data", device="cpu"))
        report = service.library.ingest([tmp / "clips"])
        print(f"ingested {len(report.added)} videos in {report.seconds:.1f} s")
        finder, scans = service.duplicates, {}
        finder.fingerprints = FingerprintCache(read_for_fingerprint, service.folder.fingerprints)  # kept
        groups, scan_s = timed(lambda: finder.groups(args.threshold))
        scans["kept fingerprint thumbnails"] = ids_of(groups), scan_s
        finder.fingerprints = FingerprintCache(read_for_fingerprint)  # every fingerprint from its video file
        scans["fingerprints from video files"] = timed(lambda: ids_of(finder.groups(args.threshold)))
        if not args.no_issue_scan:
            scans["as at issue 15"] = timed(lambda: dup_issue15.groups(service, args.threshold))
        kept_bytes = sum(p.stat().st_size for p in service.folder.fingerprints.files())
        service.close()

    ambiguous = ambiguous_pairs(truth)
    expected = true_pairs(truth)
    print(f"\n{len(ambiguous)} pairs of clips from different families run on the same path; they are not scored")
    print(f"kept fingerprint thumbnails: {kept_bytes / len(truth) / 1024:.0f} KB a video")
    for name, (found, seconds) in scans.items():
        predicted, hits = scored(found, ambiguous, expected)
        print(f"scan of {len(truth)} videos, {name}: {seconds:.1f} s, {len(found)} groups, threshold "
              f"{args.threshold}: pair precision {len(hits) / max(1, len(predicted)):.3f}  recall "
              f"{len(hits) / max(1, len(expected)):.3f}  ({len(hits)} of {len(expected)} true pairs, "
              f"{len(predicted) - len(hits)} false)")
    faster = ", ".join(f"{seconds / scan_s:.1f}x faster than {name}" for name, (_, seconds) in list(scans.items())[1:])
    same = all(found == ids_of(groups) for found, _ in scans.values())
    print(f"the kept thumbnails scan is {faster}; the same groups: {same}")
    predicted, hits = scored(ids_of(groups), ambiguous, expected)
    precision, recall = len(hits) / max(1, len(predicted)), len(hits) / max(1, len(expected))
    by_kind = {}
    for vid, t in truth.items():
        if t["kind"] in TRANSFORMS:
            original = next(v for v, u in truth.items() if u["family"] == t["family"] and u["kind"] == "original")
            by_kind.setdefault(t["kind"], []).append(tuple(sorted((vid, original))) in predicted)
    print("recall of original~copy by transform: " + ", ".join(f"{k} {np.mean(v):.2f}" for k, v in by_kind.items()))
    wrong = [v for p in predicted - expected for v in p if truth[v]["family"] is None]
    kinds = {k: sum(truth[v]["kind"] == k for v in set(wrong)) for k in ("twin", "other")}
    print(f"distractors wrongly grouped: {kinds}")

    within, total = 0, 0
    for g in groups:
        for link in g.links:
            a, b = truth[link["a"]], truth[link["b"]]
            if a["family"] is None or a["family"] != b["family"]:
                continue
            for p in link["pairs"]:  # the same moment of the original: t + frames trimmed / fps
                gap = (p["t_a"] + a["shift"] / world.FPS) - (p["t_b"] + b["shift"] / world.FPS)
                within += abs(gap) <= 1 / world.FPS + 1e-6
                total += 1
    print(f"matching frame pairs within one frame of the truth: {within}/{total} = {within / max(1, total):.3f}")
    print(f"\ntargets: precision >= 0.95 ({'met' if precision >= 0.95 else 'MISSED'}), "
          f"recall >= 0.9 ({'met' if recall >= 0.9 else 'MISSED'})")


if __name__ == "__main__":
    main()
