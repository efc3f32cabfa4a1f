"""Checking a video file before decoding it: what it is (magic bytes, container boxes), what it holds (stream
metadata, display rotation) and whether that is within the reader's limits. `BadVideo` says why not.

Imports only av and the standard library, so the crash-isolated reader's child starts fast.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, replace
from pathlib import Path

import av


@dataclass(frozen=True)
class ReadLimits:
    """What a file may declare before we refuse to decode it."""

    max_bytes: int = 2 * 1024**3
    max_pixels: int = 4096 * 2160  # declared width * height
    max_duration_s: float = 4 * 3600
    max_frames: int = 2_000_000
    timeout_s: float = 120.0  # per file without progress


@dataclass(frozen=True)
class VideoInfo:
    """Stream metadata of one video file."""

    width: int
    height: int
    fps: float
    num_frames: int
    duration_s: float
    codec: str
    container: str
    turns: int = 0  # quarter turns counterclockwise that show the picture upright (display rotation metadata)

    @property
    def shown_size(self) -> tuple[int, int]:
        """(width, height) as the video is shown: turned by its rotation metadata."""
        return (self.height, self.width) if self.turns % 2 else (self.width, self.height)


class BadVideo(Exception):
    """A file that cannot be read as a video, with a short human reason."""

    def __init__(self, path: str | Path, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = Path(path), reason

    def __reduce__(self):
        return BadVideo, (self.path, self.reason)


# ---------------------------------------------------------------------------------------------
# Checking a file before decoding it

HEAD_BYTES = 512
QUICKTIME_BOXES = (b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot")
IMAGE_BRANDS = (b"heic", b"heix", b"mif1", b"msf1", b"avif")
MAGIC = (
    (b"\x1a\x45\xdf\xa3", "webm/mkv"),
    (b"FLV\x01", "flv"),
    (b"\x30\x26\xb2\x75\x8e\x66\xcf\x11", "asf"),
    (b"OggS", "ogg"),
    (b"\x00\x00\x01\xba", "mpeg"),
)
NOT_VIDEO = (
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a zip archive"),
)


def sniff(path: str | Path) -> str | None:
    """The container named by the file's magic bytes, or None when it is no known video."""
    return sniff_head(_read_head(Path(path)))


def _read_head(path: Path) -> bytes:
    with open(path, "rb") as f:
        return f.read(HEAD_BYTES)


def sniff_head(head: bytes) -> str | None:
    """`sniff` of a file's first HEAD_BYTES bytes (an upload's, as they arrive)."""
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        return None if brand in IMAGE_BRANDS else "mov" if brand == b"qt  " else "mp4"
    if head[4:8] in QUICKTIME_BOXES:
        return "mov"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "avi"
    if any(
        head[i : i + 1] == head[i + 188 : i + 189] == head[i + 376 : i + 377] == b"G" for i in (0, 4)
    ):  # MPEG-TS sync bytes, plain (188) or with a 4-byte prefix (M2TS)
        return "mpegts"
    return next((name for magic, name in MAGIC if head.startswith(magic)), None)


def describe_head(head: bytes) -> str:
    """What a file that is not a video seems to be, for the reason text."""
    if head[4:8] == b"ftyp":
        return "an HEIF/AVIF image"
    kind = next((name for magic, name in NOT_VIDEO if head.startswith(magic)), None)
    return kind or ("looks like text" if _looks_like_text(head) else "unrecognised content")


def _looks_like_text(head: bytes) -> bool:
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as e:
        if e.start < len(head) - 3:  # a multi-byte character cut at the end is fine
            return False
        text = head[: e.start].decode("utf-8")
    return all(c.isprintable() or c in "\t\n\r\f" for c in text)


def _check_boxes(path: Path, size: int) -> None:
    """Fail when a top-level ISO-BMFF box runs past the end of the file (a cut download)."""
    with open(path, "rb") as f:
        offset = 0
        while offset + 8 <= size:
            f.seek(offset)
            header = f.read(16)
            box_size, kind = struct.unpack(">I4s", header[:8])
            if box_size == 1 and len(header) == 16:
                box_size = struct.unpack(">Q", header[8:])[0]
            elif box_size == 0:  # the last box, running to the end of the file
                return
            name = kind.decode("latin-1")
            if box_size < 8:
                raise BadVideo(path, f"truncated or corrupt: box '{name}' has size {box_size}")
            if offset + box_size > size:
                end = offset + box_size
                raise BadVideo(path, f"truncated: box '{name}' ends at byte {end}, file has {size}")
            offset += box_size


def _stream_info(path: Path, container: str) -> VideoInfo:
    """Read the first video stream's metadata with PyAV (headers only, no full decode)."""
    try:
        with av.open(str(path)) as c:
            if not c.streams.video:
                raise BadVideo(path, "no video stream")
            s = c.streams.video[0]
            fps = float(s.average_rate or s.guessed_rate or s.base_rate or 0)
            if s.duration and s.time_base:
                duration = float(s.duration * s.time_base)
            else:
                duration = (c.duration or 0) / av.time_base
            num_frames = s.frames or round(duration * fps)
            ctx = s.codec_context
            return VideoInfo(ctx.width, ctx.height, fps, num_frames, duration, ctx.name, container)
    except av.error.FFmpegError as e:
        raise BadVideo(path, f"truncated or corrupt: {e.strerror or e}") from e


def _check_limits(path: Path, info: VideoInfo, limits: ReadLimits) -> None:
    w, h = info.width, info.height
    if w <= 0 or h <= 0:
        raise BadVideo(path, f"invalid picture size {w}x{h}")
    if w * h > limits.max_pixels:
        raise BadVideo(path, f"declared resolution {w}x{h} exceeds the limit of {limits.max_pixels} pixels")
    if info.fps <= 0:
        raise BadVideo(path, "no frame rate")
    if info.num_frames <= 0:
        raise BadVideo(path, "no frames")
    if info.num_frames > limits.max_frames:
        raise BadVideo(path, f"declares {info.num_frames} frames, over the limit of {limits.max_frames}")
    if info.duration_s > limits.max_duration_s:
        raise BadVideo(path, f"duration {info.duration_s:.0f} s exceeds the limit of {limits.max_duration_s:.0f} s")


def probe(path: str | Path, limits: ReadLimits = ReadLimits()) -> VideoInfo:
    """Check size, magic bytes and stream metadata against `limits`; raise BadVideo if unfit."""
    path = Path(path)
    if not path.is_file():
        raise BadVideo(path, "no such file" if not path.exists() else "not a regular file")
    size = path.stat().st_size
    if size == 0:
        raise BadVideo(path, "empty file (0 bytes)")
    if size > limits.max_bytes:
        raise BadVideo(path, f"file of {size} bytes exceeds the limit of {limits.max_bytes}")
    head = _read_head(path)
    container = sniff_head(head)
    if container is None:
        raise BadVideo(path, f"not a video ({describe_head(head)})")
    if container in ("mp4", "mov"):
        _check_boxes(path, size)
    info = _stream_info(path, container)
    _check_limits(path, info, limits)
    return replace(info, turns=_display_turns(path))


def _display_turns(path: Path) -> int:
    """Quarter turns counterclockwise that show the video upright, from its display matrix (as phones
    record portrait video: landscape pixels and a rotation), read off the first decoded frame."""
    try:
        with av.open(str(path)) as c:
            frame = next(c.decode(video=0), None)
    except av.error.FFmpegError:
        return 0  # the decode proper reports what is wrong
    return round(getattr(frame, "rotation", 0) / 90) % 4 if frame is not None else 0
