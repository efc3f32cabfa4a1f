"""Real footage for tests: videos as people bring them, made with PyAV.

reelbase was first tested on its own 64x64 world clips only, and real videos broke it (mixed
sizes in one batch, long videos, files that are not regular files). `write_corpus` writes one
folder of videos that differ in every way a real library does: resolution and aspect ratio
(96x64 to 1920x1080, odd sizes, portrait), codec (H.264, VP9, VP8, MPEG-4 Part 2), container
(mp4, mkv, webm, mov, avi), an audio track, rotation metadata, a variable frame rate, a one-frame
video and a long one. The pictures are camera-like: a lit gradient, texture and a moving
object, different for each file, so that no two files are near-duplicates by accident.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np


@dataclass(frozen=True)
class Footage:
    """One file of the corpus: how it is written."""

    name: str
    width: int
    height: int
    codec: str = "libx264"
    fps: int = 25
    frames: int = 25
    audio: bool = False
    rotate: int = 0  # display rotation in degrees, as phones record portrait video
    variable_rate: bool = False
    pix_fmt: str = "yuv420p"


CORPUS = (
    Footage("street_1280x720_audio.mp4", 1280, 720, fps=30, frames=45, audio=True),
    Footage("trailer_640x272.mp4", 640, 272, fps=24, frames=36),
    Footage("phone_176x144.3gp.mp4", 176, 144, fps=15, frames=30),
    Footage("full_hd_1920x1080.mov", 1920, 1080, fps=30, frames=12),
    Footage("tiny_96x64.mkv", 96, 64, fps=25, frames=25),
    Footage("odd_97x65.mkv", 97, 65, fps=25, frames=20, pix_fmt="yuv444p"),
    Footage("portrait_360x640.mov", 360, 640, fps=30, frames=30),
    Footage("rotated_320x180.mp4", 320, 180, fps=30, frames=30, rotate=90),
    Footage("vp9_854x480.webm", 854, 480, codec="libvpx-vp9", fps=25, frames=25),
    Footage("vp8_320x240_audio.webm", 320, 240, codec="libvpx", fps=25, frames=25, audio=True),
    Footage("vfr_400x300.mkv", 400, 300, fps=30, frames=40, variable_rate=True),
    Footage("mpeg4_352x288.avi", 352, 288, codec="mpeg4", fps=25, frames=25),
    Footage("one_frame_200x150.mp4", 200, 150, fps=25, frames=1),
)
LONG = Footage("lecture_3min_160x90.mp4", 160, 90, fps=10, frames=10 * 190)


def write_corpus(folder: str | Path, long: bool = True) -> list[Path]:
    """Write every corpus file (and the long one, unless `long` is False) into `folder`."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    items = CORPUS + ((LONG,) if long else ())
    return [write_footage(folder / item.name, item, seed) for seed, item in enumerate(items)]


def write_special_files(folder: str | Path) -> dict[str, Path]:
    """What a real folder may hold besides files: a FIFO named like a video, a symlink loop and a
    dangling link. Returns them by kind."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    fifo, loop, dangling = folder / "pipe.mp4", folder / "loop.mp4", folder / "dangling.mp4"
    os.mkfifo(fifo)
    os.symlink(loop.name, loop)  # points at itself
    os.symlink(folder / "gone" / "nowhere.mp4", dangling)
    return {"fifo": fifo, "loop": loop, "dangling": dangling}


def write_footage(path: Path, item: Footage, seed: int = 0) -> Path:
    """Encode `item` to `path` with its codec, container, audio, rotation and timing."""
    frames = scene(item.width, item.height, item.frames, seed)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(item.codec, rate=item.fps)
        stream.width, stream.height, stream.pix_fmt = item.width, item.height, item.pix_fmt
        if item.codec == "libx264":
            stream.options = {"preset": "ultrafast"}
        audio = _add_audio(container) if item.audio else None
        if item.variable_rate:
            stream.time_base = Fraction(1, 1000)
        pts = _variable_pts(item.frames, item.fps) if item.variable_rate else None
        for i, pixels in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            if pts is not None:
                frame.pts, frame.time_base = int(pts[i]), Fraction(1, 1000)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
        if audio is not None:
            _write_audio(container, audio, item.frames / item.fps)
    if item.rotate:
        _set_display_rotation(path, item.rotate)
    return path


def scene(width: int, height: int, count: int, seed: int) -> np.ndarray:
    """(count, height, width, 3) uint8: a lit two-colour gradient with texture and a disc moving across it."""
    rng = np.random.default_rng(seed)
    c0, c1, disc = rng.integers(30, 226, size=(3, 3))
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    u = (x / max(1, width - 1) * np.cos(seed) + y / max(1, height - 1) * np.sin(seed)) % 1.0
    background = c0 + (c1 - c0) * u[..., None]
    texture = rng.normal(0, 12, size=(height // 8 + 1, width // 8 + 1, 1))
    background += np.kron(texture, np.ones((8, 8, 1)))[:height, :width]
    radius = max(3.0, min(width, height) / 6)
    start, velocity = rng.uniform(0.2, 0.8, 2), rng.uniform(-0.02, 0.02, 2)
    out = np.empty((count, height, width, 3), np.uint8)
    for i in range(count):
        cx, cy = (start + velocity * i) % 1.0 * (width, height)
        inside = (x - cx) ** 2 + (y - cy) ** 2 <= radius**2
        out[i] = np.clip(np.where(inside[..., None], disc, background), 0, 255)
    return out


ROTATIONS = {90: (0, 1, -1, 0), 180: (-1, 0, 0, -1), 270: (0, -1, 1, 0)}  # (a, b, c, d) of the display matrix


def _set_display_rotation(path: Path, degrees: int) -> None:
    """Write a rotation into the video track's display matrix (the `tkhd` box), as phones do."""
    data = bytearray(path.read_bytes())
    at = data.index(b"tkhd") - 4
    version = data[at + 8]
    matrix = at + 8 + 4 + (32 if version == 1 else 20) + 8 + 8  # after times, ids, duration, layer..volume
    a, b, c, d = ROTATIONS[degrees]
    values = (a << 16, b << 16, 0, c << 16, d << 16, 0, 0, 0, 1 << 30)
    data[matrix:matrix + 36] = b"".join(int(v).to_bytes(4, "big", signed=True) for v in values)
    path.write_bytes(bytes(data))


def _variable_pts(count: int, fps: int) -> np.ndarray:
    """Presentation times in ms with gaps that vary between a half and one and a half frame intervals."""
    gaps = np.random.default_rng(count).uniform(0.5, 1.5, count) * 1000 / fps
    return np.concatenate([[0], np.cumsum(gaps[:-1])]).round()


def _add_audio(container):
    codec = "libopus" if container.format.name in ("webm", "matroska,webm") else "aac"
    return container.add_stream(codec, rate=48000, layout="mono")


def _write_audio(container, stream, seconds: float) -> None:
    """A 440 Hz tone for `seconds`, in the encoder's frame size."""
    size = stream.codec_context.frame_size or 1024
    total = int(seconds * stream.rate)
    for start in range(0, total, size):
        t = (np.arange(start, start + size) / stream.rate).astype(np.float32)
        frame = av.AudioFrame.from_ndarray((0.2 * np.sin(2 * np.pi * 440 * t))[None], format="fltp", layout="mono")
        frame.sample_rate, frame.pts = stream.rate, start
        container.mux(stream.encode(frame))
    container.mux(stream.encode())
