"""The record types of the catalog, which every layer imports: a video's record, a video ready to
write, and the hits of a frame search. Plain data; nothing here talks to Milvus."""

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
class VideoEntry:
    """A video ready to write: its record and its sampled frames' indices, times and vectors."""

    record: VideoRecord
    frame_indices: Sequence[int]
    frame_times: Sequence[float]
    frame_embeddings: np.ndarray  # (N, dim), unit length
    prompt_embedding: np.ndarray | None = None  # (dim,), generated videos
    descriptor: np.ndarray | None = None  # (DESCRIPTOR_DIM,) pixel descriptor, for near-duplicate candidates


@dataclass
class FrameHit:
    """One matching frame of a video: its index, time in seconds and cosine score."""

    index: int
    t: float
    score: float


@dataclass
class VideoHit:
    """One video found by a frame search, with its best frames."""

    video: VideoRecord
    score: float  # score of the best frame
    best_t: float
    frames: list[FrameHit]  # best first
