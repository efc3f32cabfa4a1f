"""The record types of the catalog, which every layer imports: a video's record, a video ready to
write (with its windows), and the hits of a search. Plain data; nothing here talks to Milvus."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields

import numpy as np

SOURCES = ("generated", "ingested")
SORTABLE = ("created_at", "duration_s", "num_frames", "width", "height", "fps")  # the fields a browse sorts by


@dataclass
class VideoRecord:
    """One row of the `videos` collection, without its embedding."""

    video_id: str
    uri: str
    source: str  # "generated" | "ingested"
    prompt: str = ""
    parent_id: str = ""  # the video this one was re-seeded from
    duration_s: float = 0.0
    fps: float = 0.0
    width: int = 0
    height: int = 0
    num_frames: int = 0
    created_at: float = 0.0  # unix seconds
    meta: dict = field(default_factory=dict)  # JSON: generation parameters, original file name, ...

    @classmethod
    def from_row(cls, row: dict) -> VideoRecord:
        """The record of a `videos` row, leaving out the embedding and anything else."""
        return cls(**{k: row[k] for k in VIDEO_FIELDS})

    def to_dict(self) -> dict:
        """Return the record as a plain dict, one key per field."""
        return asdict(self)

    @property
    def title(self) -> str:
        """What to call the video: its prompt, caption or original file name, else its file."""
        return self.prompt or self.meta.get("caption") or self.meta.get("original_name", self.uri)


VIDEO_FIELDS = [f.name for f in fields(VideoRecord)]  # the `videos` columns a record reads


@dataclass
class VideoWindows:
    """A video's windows of consecutive sampled frames (`indexer.temporal.window_spans`), embedded by the
    temporal model: where each starts and ends, and its vector."""

    indices: np.ndarray  # (W,) int, the video frame index of each window's first frame
    start_times: np.ndarray  # (W,) float seconds
    end_times: np.ndarray  # (W,) float seconds
    vectors: np.ndarray  # (W, D) float32 unit vectors


@dataclass
class VideoEntry:
    """A video ready to write: its record and its sampled frames' indices, times and vectors."""

    record: VideoRecord
    frame_indices: Sequence[int]
    frame_times: Sequence[float]
    frame_embeddings: np.ndarray  # (N, dim), unit length
    prompt_embedding: np.ndarray | None = None  # (dim,), generated videos
    descriptor: np.ndarray | None = None  # (DESCRIPTOR_DIM,) pixel descriptor, for near-duplicate candidates
    windows: VideoWindows | None = None  # written where the catalog keeps windows


@dataclass
class FrameHit:
    """One matching moment of a video: a frame (its index and time in seconds), or a window of frames from
    `t` to `end`; and its cosine score."""

    index: int
    t: float
    score: float
    end: float | None = None  # a window's last frame time; None for a frame


@dataclass
class VideoHit:
    """One video found by a search, with its best frames (or windows)."""

    video: VideoRecord
    score: float  # score of the best frame or window
    best_t: float
    frames: list[FrameHit]  # best first
