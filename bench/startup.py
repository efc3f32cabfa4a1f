"""Start-up time of the common `reelbase` commands, each run as a fresh process.

A small library (a few synthetic world clips, ingested once in a temporary data folder) is
set up first; then each command is run `--repeat` times as a subprocess and its wall times
are printed (median and best). What a command costs before its work is Python's imports and
what it loads: the CLIP model for a text search, only the store for `stats`.

    python3 bench/startup.py [--repeat 3] [--clips 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REELBASE = [sys.executable, "-m", "search.cli"]


def run(args: list[str], env: dict, expect: int = 0) -> float:
    """Run `reelbase ARGS` once; its wall time in seconds (an unexpected exit status stops the bench)."""
    t0 = time.perf_counter()
    done = subprocess.run(REELBASE + args, cwd=ROOT, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    if done.returncode != expect:
        raise SystemExit(f"reelbase {' '.join(args)} exited {done.returncode}, not {expect}:\n{done.stderr}")
    return elapsed


def library(data_dir: Path, clips: int, env: dict) -> str:
    """Ingest `clips` world clips into the data folder; the id of one library video."""
    from generator.world import write_dataset

    write_dataset(data_dir / "clips", clips, seed=3)
    run(["ingest", str(data_dir / "clips")], env)
    return next((data_dir / "library").glob("*.mp4")).stem


def commands(video_id: str) -> list[tuple[str, list[str], int]]:
    """(label, arguments, expected exit status) of each command timed."""
    return [
        ("--help", ["--help"], 0),
        ("argument error", ["search", "--top-k", "0", "x"], 2),
        ("stats", ["stats"], 0),
        ("search TEXT", ["search", "a red ball"], 0),
        ("similar ID", ["similar", video_id], 0),
        ("generate --help", ["generate", "--help"], 0),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs of each command")
    parser.add_argument("--clips", type=int, default=3, help="world clips in the library")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        env = {**os.environ, "REELBASE_DATA_DIR": str(data_dir), "REELBASE_MILVUS_URI": "",
               "REELBASE_API_URL": "http://127.0.0.1:9"}  # no API answers there
        t0 = time.perf_counter()
        video_id = library(data_dir, args.clips, env)
        print(f"library: {args.clips} world clips ingested in {time.perf_counter() - t0:.1f} s; "
              f"each command run {args.repeat} times")
        print(f"{'command':<18}{'median s':>10}{'best s':>9}")
        for label, argv, expect in commands(video_id):
            times = [run(argv, env, expect) for _ in range(args.repeat)]
            print(f"{label:<18}{statistics.median(times):>10.2f}{min(times):>9.2f}", flush=True)


if __name__ == "__main__":
    main()
