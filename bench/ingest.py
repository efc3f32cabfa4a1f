"""Ingest throughput beside the encoder alone on the same frames, in one run.

For each model: render world clips, time the whole `ingest` (hashing, crash-isolated decoding,
encoding, Milvus Lite writes), then time the encoder alone on exactly the frames the ingest
sampled, batched the same way. Target: the whole ingest at 80% of the encoder-only rate or
better. ViT-B-32 runs with random weights (speed only). The ingest keeps each video's fingerprint
thumbnails, made in its decode pass, as the service's does (`--no-fingerprints`: as before they were kept).
The built-in model is measured twice, without and with windows (the temporal model's, for motion
search), so the cost of the windows is the ratio of the two rates in one run.

    python3 bench/ingest.py [--clips 200] [--vit-clips 40] [--no-fingerprints]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from common.device import resolve_device
from generator import world
from indexer.encoder import ClipEncoder
from indexer.fingerprint_files import FingerprintFiles
from indexer.ingest import ingest
from indexer.models import load_clip, random_clip
from indexer.reader import read_frames
from indexer.store import VideoStore
from indexer.temporal_models import TemporalEncoder, find_temporal_model
from indexer.writer import IndexWriter


def measure(name: str, encoder: ClipEncoder, clips: int, tmp: Path, fingerprints: bool = True,
            temporal: TemporalEncoder | None = None) -> float:
    """Ingest `clips` world clips and time the encoder alone on their frames; print both; the ingest rate."""
    folder = tmp / f"world-{name}"
    paths = world.write_dataset(folder, clips, seed=31337)
    store = VideoStore(str(tmp / f"{name}.db"), clip_model=encoder.name, dim=encoder.dim,
                       temporal=(temporal.identity, temporal.dim) if temporal else None)
    encoder.encode_images(np.zeros((8, 64, 64, 3), np.uint8))  # warm up
    started = time.perf_counter()
    writer = IndexWriter(store, encoder, FingerprintFiles(tmp / f"fingerprints-{name}") if fingerprints else None,
                         temporal=temporal)
    report = ingest([folder], writer, tmp / f"library-{name}")
    ingest_s = time.perf_counter() - started
    store.close()
    frames = np.concatenate([read_frames(p).frames for p in paths])
    started = time.perf_counter()
    for i in range(0, len(frames), 128):
        encoder.encode_images(frames[i : i + 128])
    encode_s = time.perf_counter() - started
    ingest_fps, encode_fps = report.frames / ingest_s, len(frames) / encode_s
    print(f"{name:14s} {len(report.added):4d} videos {report.frames:5d} frames | ingest {ingest_fps:7.1f} frames/s | "
          f"encoder alone {encode_fps:7.1f} frames/s | ratio {ingest_fps / encode_fps:.2f}")
    return ingest_fps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=200)
    parser.add_argument("--vit-clips", type=int, default=40)
    parser.add_argument("--no-fingerprints", action="store_true", help="keep no fingerprint thumbnails")
    args = parser.parse_args()
    device = resolve_device("auto")
    print(f"device {device}")
    with tempfile.TemporaryDirectory() as tmp:
        keep = not args.no_fingerprints
        tiny = ClipEncoder(load_clip("reelbase-tiny", device), device)
        without = measure("reelbase-tiny", tiny, args.clips, Path(tmp), keep)
        found = find_temporal_model("auto", tiny.name)
        if found:
            temporal = TemporalEncoder.load(tiny, found)
            with_windows = measure("+ windows", tiny, args.clips, Path(tmp), keep, temporal)
            print(f"windows ({found.identity}): ingest rate with them / without them {with_windows / without:.2f}")
        if args.vit_clips:  # 0: the built-in model alone
            measure("ViT-B-32", ClipEncoder(random_clip("ViT-B-32", device), device), args.vit_clips, Path(tmp), keep)


if __name__ == "__main__":
    main()
