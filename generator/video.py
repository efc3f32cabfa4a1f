"""Writing clips as browser-playable H.264 mp4 files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from common.files import atomic_path


def write_mp4(path: str | Path, frames: np.ndarray, fps: int, crf: int = 18) -> Path:
    """Write (T, H, W, 3) uint8 frames as H.264 (yuv420p, faststart); atomic via a temp file."""
    import av  # here, not above: training and sampling need none of PyAV (an accelerator machine may lack it)

    path = Path(path)
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be (T, H, W, 3) uint8, got {frames.shape} {frames.dtype}")
    T, H, W, _ = frames.shape
    if H % 2 or W % 2:
        frames = np.pad(frames, ((0, 0), (0, H % 2), (0, W % 2), (0, 0)), mode="edge")
    with atomic_path(path) as tmp, av.open(str(tmp), mode="w", format="mp4",
                                           options={"movflags": "+faststart"}) as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        # One x264 thread: its output depends on the thread count (by default, the machine's
        # cores), and a clip's id is the sha256 of these bytes.
        stream.options = {"crf": str(crf), "preset": "veryfast", "threads": "1"}
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return path


def square_frames(frames: np.ndarray, size: int) -> np.ndarray:
    """(T, H, W, 3) uint8 frames centre-cropped to a square and resized to size x size (bicubic)."""
    _, h, w, _ = frames.shape
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    frames = frames[:, top:top + side, left:left + side]
    if side == size:
        return np.ascontiguousarray(frames)
    return np.stack([np.asarray(Image.fromarray(f).resize((size, size), Image.BICUBIC)) for f in frames])
