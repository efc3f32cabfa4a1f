"""Fingerprint thumbnails: video frames squashed to SIDE x SIDE pixels, what a pixel fingerprint is made of.

numpy only, so that the reader's child process (`indexer.reader`) makes them in the same decode
pass as the CLIP frames, and small enough to keep per library video (`indexer.fingerprint_files`):
a duplicate scan then fingerprints the kept thumbnails instead of decoding the library again.
The filter is the antialiased bilinear (triangle) one of PIL and torch, so a frame already
SIDE x SIDE is kept as it is.
"""

from __future__ import annotations

import numpy as np

SIDE = 64  # thumbnail width and height in pixels (the aspect ratio is squashed, as the fingerprint does)
RATE = 8.0  # fingerprint frames per second of video
MAX_FRAMES = 64  # frames fingerprinted per video at most (longer videos are sampled more sparsely)


def thumbnails(frames: np.ndarray, side: int = SIDE) -> np.ndarray:
    """(n, H, W, 3) uint8 frames as (n, side, side, 3) uint8 thumbnails."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be (n, H, W, 3), got {frames.shape}")
    height, width = frames.shape[1:3]
    if (height, width) == (side, side):
        return frames.astype(np.uint8, copy=False)
    rows, cols = resample_weights(height, side), resample_weights(width, side)  # (side, H), (side, W)
    x = frames.astype(np.float32).transpose(0, 3, 1, 2)  # (n, 3, H, W)
    small = rows @ x @ cols.T  # (n, 3, side, side)
    return np.clip(np.rint(small), 0, 255).astype(np.uint8).transpose(0, 2, 3, 1).copy()


def resample_weights(size_in: int, size_out: int) -> np.ndarray:
    """(size_out, size_in) rows of the triangle filter, widened by the scale when shrinking, each summing to 1."""
    scale = size_in / size_out
    support = max(scale, 1.0)  # half-width of the filter in input pixels
    centres = (np.arange(size_out) + 0.5) * scale
    taps = np.arange(size_in) + 0.5  # input pixel centres
    w = np.maximum(0.0, 1.0 - np.abs(taps[None, :] - centres[:, None]) / support)
    return (w / w.sum(axis=1, keepdims=True)).astype(np.float32)
