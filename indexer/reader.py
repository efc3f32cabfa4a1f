"""The in-process decoder of the indexing pipeline: video files in, sampled and downscaled frames out.

Files are checked before decoding (`indexer.probe`: size, magic bytes, stream metadata against `ReadLimits`).
Decoding here is in-process: a broken file can crash or hang the caller. The crash-isolated reader,
`indexer.isolated_reader.FrameReader`, runs this in a child process so that none can; this module
imports only numpy, av and decord (and the numpy-only `indexer.thumbnails`), so it starts fast.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import av
import decord
import numpy as np

from indexer.probe import BadVideo, ReadLimits, VideoInfo, probe
from indexer.thumbnails import thumbnails

log = logging.getLogger(__name__)

CHUNK = 32  # frames per decord get_batch call; the child reports progress after each


@dataclass
class SampledFrames:
    """The frames sampled from one video: the batch the reader hands to the encoder."""

    path: Path
    info: VideoInfo
    indices: np.ndarray  # (N,) int frame indices
    times: np.ndarray  # (N,) float seconds
    frames: np.ndarray  # (N, H, W, 3) uint8, shorter side <= max_side
    # the fingerprint's frames, when asked for, from the same decode pass (indexer.thumbnails)
    fingerprint_times: np.ndarray | None = None  # (M,) float seconds
    fingerprint_frames: np.ndarray | None = None  # (M, SIDE, SIDE, 3) uint8 thumbnails


# ---------------------------------------------------------------------------------------------
# Sampling and decoding


def sample_indices(num_frames: int, fps: float, rate: float = 2.0, cap: int = 512) -> np.ndarray:
    """About `rate` frames per second, always the first and last frame, at most `cap`, sorted."""
    if cap < 2 or rate <= 0 or fps <= 0:
        raise ValueError(f"need cap >= 2, rate > 0 and fps > 0, got {cap}, {rate}, {fps}")
    if num_frames <= 0:
        return np.zeros(0, dtype=np.int64)
    last = num_frames - 1
    picks = np.arange(0, num_frames, fps / rate)
    if len(picks) + 1 > cap:
        picks = np.linspace(0, last, cap)
    picks = np.append(np.round(picks), last).clip(0, last)
    return np.unique(picks.astype(np.int64))


def _target_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """Width and height with the shorter side at most `max_side`, aspect kept, never upscaled."""
    scale = max_side / min(width, height)
    if scale >= 1:
        return width, height
    return max(1, round(width * scale)), max(1, round(height * scale))


def _decode_decord(
    path: Path, info: VideoInfo, rate: float, cap: int, size: tuple[int, int], progress: Callable[[], None],
    fingerprint: tuple[float, int] | None = None,
) -> SampledFrames:
    """Decode the sampled frames (and the fingerprint's, at its (rate, cap)) with decord, downscaled by its decoder."""
    width, height = _as_shown(size, info.turns)  # decord shows a rotated video upright, then scales it
    # one decoder thread: the reader runs beside the encoder, and thread start-up costs more
    # than it saves on short clips (8.3 -> 3.8 ms per 16-frame world clip, measured)
    reader = decord.VideoReader(str(path), width=width, height=height, num_threads=1)
    if len(reader) != info.num_frames:
        log.info("%s: decord counts %d frames, PyAV %d", path, len(reader), info.num_frames)
        info = replace(info, num_frames=len(reader))
    if info.num_frames == 0:
        raise ValueError("decord finds no frames")
    indices = sample_indices(info.num_frames, info.fps, rate, cap)
    extra = sample_indices(info.num_frames, info.fps, *fingerprint) if fingerprint else indices[:0]
    wanted = np.union1d(indices, extra)
    batches = []
    for start in range(0, len(wanted), CHUNK):
        batches.append(reader.get_batch(wanted[start : start + CHUNK].tolist()).asnumpy())
        progress()
    return _sampled(path, info, dict(zip(wanted.tolist(), np.concatenate(batches))), indices,
                    extra if fingerprint else None, turns=0)


def _sampled(path: Path, info: VideoInfo, decoded: dict[int, np.ndarray], indices: np.ndarray,
             fingerprint_indices: np.ndarray | None, turns: int) -> SampledFrames:
    """The sampled frames out of those decoded by frame number (and turned `turns` quarter turns to be shown
    upright), with the fingerprint's thumbnails when asked for."""
    def upright(among: np.ndarray) -> np.ndarray:
        return _turned(np.stack([decoded[i] for i in among.tolist()]), turns)

    sampled = SampledFrames(path, info, indices, indices / info.fps, upright(indices))
    if fingerprint_indices is not None:
        sampled.fingerprint_times = fingerprint_indices / info.fps
        sampled.fingerprint_frames = thumbnails(upright(fingerprint_indices))
    return sampled


def _as_shown(size: tuple[int, int], turns: int) -> tuple[int, int]:
    """A coded (width, height) as it is shown after `turns` quarter turns."""
    return (size[1], size[0]) if turns % 2 else size


def _turned(frames: np.ndarray, turns: int) -> np.ndarray:
    """(N, H, W, C) frames turned `turns` quarter turns counterclockwise (as the video is shown)."""
    return np.ascontiguousarray(np.rot90(frames, turns, axes=(1, 2))) if turns % 4 else frames


def _decode_pyav(
    path: Path, info: VideoInfo, rate: float, cap: int, size: tuple[int, int], progress: Callable[[], None],
    fingerprint: tuple[float, int] | None = None,
) -> SampledFrames:
    """Decode sequentially with PyAV, skipping packets it rejects; the fallback for decord."""
    wanted = set(sample_indices(info.num_frames, info.fps, rate, cap).tolist())
    extra = set(sample_indices(info.num_frames, info.fps, *fingerprint).tolist()) if fingerprint else set()
    kept, count, last = _pyav_frames(path, wanted | extra, size, progress)
    if count < max(1, info.num_frames / 2):
        raise BadVideo(path, f"truncated or corrupt: only {count} of {info.num_frames} frames decodable")
    kept[count - 1] = last  # the final frame is always kept

    def decoded(among: set[int]) -> np.ndarray:
        return np.array(sorted({i for i in kept if i in among} | {count - 1}), dtype=np.int64)

    return _sampled(path, replace(info, num_frames=count), kept, decoded(wanted),
                    decoded(extra) if fingerprint else None, turns=info.turns)  # PyAV never turns the picture


def _pyav_frames(path: Path, wanted: set[int], size: tuple[int, int], progress: Callable[[], None] = lambda: None,
                 until: int | None = None) -> tuple[dict[int, np.ndarray], int, np.ndarray | None]:
    """Decode in order with PyAV, skipping packets it rejects (as players do), stopping once frame `until`
    is passed: the `wanted` frames by number, how many frames were decoded, and the last one (None if none)."""
    def rgb(frame) -> np.ndarray:
        return frame.to_ndarray(width=size[0], height=size[1], format="rgb24")

    kept, count, last = {}, 0, None
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for n, packet in enumerate(container.demux(stream), start=1):
            if n % (CHUNK * 8) == 0:
                progress()
            try:
                frames = packet.decode()
            except av.error.FFmpegError:
                continue
            for last in frames:  # `last` stays the final frame decoded
                if count in wanted:
                    kept[count] = rgb(last)
                count += 1
            if until is not None and count > until:
                break
    return kept, count, None if last is None else rgb(last)


def _read(
    path: Path, rate: float, cap: int, max_side: int, limits: ReadLimits, progress: Callable[[], None] = lambda: None,
    fingerprint: tuple[float, int] | None = None,
) -> SampledFrames:
    """Probe, then decode with decord, falling back to PyAV where decord fails; `fingerprint`: the (rate, cap) of
    fingerprint thumbnails to make in the same pass (`SampledFrames.fingerprint_frames`)."""
    info = probe(path, limits)
    size = _target_size(info.width, info.height, max_side)
    try:
        return _decode_decord(path, info, rate, cap, size, progress, fingerprint)
    except (decord.DECORDError, RuntimeError, IndexError, ValueError) as e:
        message = re.sub(r"\[[\d:]+\] \S+:\d+: ", "", str(e)).strip()  # no "[time] file:line: "
        log.warning("%s: decord failed (%s); decoding with PyAV", path, message or type(e).__name__)
    try:
        return _decode_pyav(path, info, rate, cap, size, progress, fingerprint)
    except av.error.FFmpegError as e:
        raise BadVideo(path, f"truncated or corrupt: {e.strerror or e}") from e


def read_frames(
    path: str | Path, rate: float = 2.0, cap: int = 512, max_side: int = 256, limits: ReadLimits = ReadLimits(),
    fingerprint: tuple[float, int] | None = None,
) -> SampledFrames:
    """Read sampled frames (and fingerprint thumbnails at `fingerprint`'s (rate, cap)) in this process; raises
    BadVideo (a decoder crash is not contained)."""
    return _read(Path(path), rate, cap, max_side, limits, fingerprint=fingerprint)


def read_frame_at(path: str | Path, t: float, max_side: int | None = None) -> tuple[np.ndarray, float]:
    """The frame shown at `t` seconds (clamped to the video) as (H, W, 3) uint8, and its time.

    For files already in the library (they were read once by the crash-isolated reader).
    """
    frames, times = read_span(path, t, t, 1.0, max_side)
    return frames[0], float(times[0])


def read_span(path: str | Path, start: float, end: float, rate: float, max_side: int | None = None
              ) -> tuple[np.ndarray, np.ndarray]:
    """The frames shown every 1/rate s from `start` to `end` (clamped to the video), (n, H, W, 3) uint8,
    and their times; only those frames are decoded, however long the video.

    For files already in the library (they were read once by the crash-isolated reader).
    """
    path = Path(path)
    info = probe(path)
    size = _target_size(info.width, info.height, max_side) if max_side else (info.width, info.height)
    width, height = _as_shown(size, info.turns)  # decord shows it upright, then scales (see _decode_decord)
    wanted = np.arange(max(0.0, start), max(start, end) + 1e-6, 1.0 / rate)  # (n,) seconds
    indices = np.floor(wanted * info.fps + 1e-6).astype(np.int64)
    try:
        reader = decord.VideoReader(str(path), width=width, height=height, num_threads=1)
        indices = indices.clip(0, len(reader) - 1)
        return reader.get_batch(indices.tolist()).asnumpy(), indices / info.fps
    except (decord.DECORDError, RuntimeError, IndexError, ValueError) as e:
        log.warning("%s: decord failed (%s); decoding the span with PyAV", path, type(e).__name__)
    try:
        frames, times = _span_pyav(path, indices, size, info.fps)
        return _turned(frames, info.turns), times
    except av.error.FFmpegError as e:
        raise BadVideo(path, f"cannot decode the frames at {start:.2f}..{end:.2f} s: {e.strerror or e}") from e


def _span_pyav(path: Path, indices: np.ndarray, size: tuple[int, int], fps: float) -> tuple[np.ndarray, np.ndarray]:
    """Frames `indices` (sorted) decoded in order with PyAV, the last decodable frame standing in past the end."""
    kept, count, last = _pyav_frames(path, set(indices.tolist()), size, until=int(indices[-1]))
    if last is None:
        raise BadVideo(path, "no decodable frames")
    indices = indices.clip(0, count - 1)
    return np.stack([kept.get(i, last) for i in indices.tolist()]), indices / fps
