"""Request and response bodies of the HTTP API (requests refuse unknown fields)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from common.ids import ID_PATTERN
from generator.params import (
    MAX_PROMPT,
    Candidates,
    Frames,
    GenerationParams,
    Guidance,
    NegativePrompt,
    RegionField,
    Seed,
    SourceTime,
    Steps,
    Strength,
)
from search.duplicates import DEFAULT_THRESHOLD
from search.params import Filters, Strict

VIDEO_ID = ID_PATTERN  # a video id or a unique prefix of it, resolved by the service


# --- requests ----------------------------------------------------------------------------------


class PagedQuery(Strict):
    """A page of hits: how many, from where, and which videos may be among them."""

    top_k: int = Field(default=10, ge=1, le=200)
    offset: int = Field(default=0, ge=0, le=10_000)
    filters: Filters = Filters()


class TextQuery(PagedQuery):
    text: str = Field(min_length=1, max_length=1000)


class FrameQuery(PagedQuery):
    video_id: str = Field(pattern=VIDEO_ID)
    t: float = Field(default=0.0, ge=0, le=86_400)


class SimilarQuery(Strict):
    video_id: str = Field(pattern=VIDEO_ID)
    top_k: int = Field(default=10, ge=1, le=200)
    filters: Filters = Filters()


class PromptQuery(Strict):
    text: str = Field(min_length=1, max_length=1000)
    top_k: int = Field(default=10, ge=1, le=200)


class DuplicateFrameQuery(Strict):
    video_id: str = Field(pattern=VIDEO_ID)
    t: float = Field(default=0.0, ge=0, le=86_400)
    threshold: float = Field(default=DEFAULT_THRESHOLD, ge=0, le=1)
    top_k: int = Field(default=10, ge=1, le=100)


class DuplicateVideoQuery(Strict):
    video_id: str = Field(pattern=VIDEO_ID)
    threshold: float = Field(default=DEFAULT_THRESHOLD, ge=0, le=1)
    top_k: int = Field(default=10, ge=1, le=100)


class Reseed(Strict):
    """Start a generation from a search hit: its video and time, a mode, and (optionally) a new prompt."""

    video_id: str = Field(pattern=VIDEO_ID)
    t: SourceTime
    mode: Literal["continue", "animate", "variation", "inpaint", "outpaint"] = "continue"
    prompt: str | None = Field(default=None, min_length=1, max_length=MAX_PROMPT,
                               description="default: the hit's own prompt or caption")
    negative_prompt: NegativePrompt
    seed: Seed
    steps: Steps
    guidance: Guidance
    candidates: Candidates
    frames: Frames
    strength: Strength
    region: RegionField


# --- responses ---------------------------------------------------------------------------------
# A media link (`links`, `*_url`) is a path on the API. When the API has a key it carries a signature
# (`expires`, `sig` in its query) that works for an hour at least, so a browser opens it without the key.


class VideoLinks(BaseModel):
    video: str
    thumbnail: str


class VideoOut(BaseModel):
    video_id: str
    uri: str
    source: str
    prompt: str
    parent_id: str
    duration_s: float
    fps: float
    width: int
    height: int
    num_frames: int
    created_at: float
    meta: dict[str, Any]
    links: VideoLinks


class FrameOut(BaseModel):
    index: int
    t: float
    score: float
    frame_url: str
    end: float | None = Field(None, description="for a window of frames (a text search's hits), its last frame's time")


class HitOut(BaseModel):
    video: VideoOut
    score: float
    best_t: float
    frames: list[FrameOut]
    media_url: str  # the video, starting at the best moment
    thumbnail_url: str  # the best frame


class SearchOut(BaseModel):
    offset: int
    top_k: int
    hits: list[HitOut]
    unknown_words: list[str] = Field(default_factory=list, description=(
        "words of the text query the CLIP model was never taught (the built-in model knows only the synthetic "
        "world); the ranking ignores what they mean. Empty when every word is known or for an image query"))
    notice: str | None = Field(None, description="a one-line notice naming those words and how to use a real CLIP")
    matched: Literal["windows", "frames"] = Field("frames", description=(
        "what a text query was matched against: windows of frames by the temporal model (motion counts), or "
        "single frames (where no temporal model serves the CLIP model); image and frame queries match frames"))
    frames_notice: str | None = Field(None, description="why a text query was matched against single frames, "
                                      "and what makes windows")


class ScoredVideo(BaseModel):
    video: VideoOut
    score: float


class FramePairOut(BaseModel):
    t_a: float
    t_b: float
    score: float


class DuplicateHitOut(BaseModel):
    video: VideoOut
    score: float
    offset_s: float  # t in the query minus t in this video
    pairs: list[FramePairOut]  # t_a: in the query, t_b: in this video


class LinkPairOut(FramePairOut):
    """A frame pair of a duplicate link, with both frames to show side by side."""

    frame_a_url: str  # the frame at t_a in video a
    frame_b_url: str  # the frame at t_b in video b


class LinkOut(BaseModel):
    a: str
    b: str
    score: float
    offset_s: float
    pairs: list[LinkPairOut]


class DuplicateGroupOut(BaseModel):
    videos: list[VideoOut]
    links: list[LinkOut]


class DuplicateGroupsOut(BaseModel):
    threshold: float
    groups: list[DuplicateGroupOut]


class LibraryPage(BaseModel):
    total: int
    offset: int
    limit: int
    videos: list[VideoOut]


class VideoDetail(BaseModel):
    video: VideoOut
    parent: VideoOut | None
    children: list[VideoOut]


class IngestOut(BaseModel):
    added: list[str]
    present: list[str]
    video: VideoOut | None


class JobOut(BaseModel):
    job_id: str
    params: GenerationParams
    status: str
    step: int
    total_steps: int
    video_id: str | None
    error: str | None
    created_at: float
    started_at: float | None
    finished_at: float | None
    video: VideoOut | None = None


class JobList(BaseModel):
    jobs: list[JobOut]


class Health(BaseModel):
    status: str
    version: str


class StatsOut(BaseModel):
    videos: int
    videos_by_source: dict[str, int]
    frames: int
    prompts: int
    model: str
    dim: int
    server: str
    library_dir: str
    library_files: int
    library_bytes: int
    milvus_uri: str
    generator: str
    jobs: dict[str, int]
    recent: list[VideoOut]


class ReindexOut(BaseModel):
    reindexed: int
    failed: list[dict[str, str]]
    model: str
