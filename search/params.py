"""What a query or a generation asks for: validated once, here, for the API, the CLI and the service."""

from __future__ import annotations

import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from indexer.expressions import quote
from indexer.identity import ID_LENGTH

MODES = ("text", "continue", "animate", "variation", "inpaint", "outpaint")
SOURCES = ("generated", "ingested")

MIN_ID_PREFIX = 4  # hex digits of a video id that may stand for it, as git takes a commit's
ID_PATTERN = rf"^[0-9a-fA-F]{{{MIN_ID_PREFIX},{ID_LENGTH}}}$"  # a video id or a unique prefix of one
MAX_MODEL_FILTER = 200  # characters of a model filter
MAX_PROMPT = 500  # characters of a prompt (a longer caption re-seeds as its first MAX_PROMPT)
ECHO_LIMIT = 80  # characters of a request's value that an error message shows


def shown(value: object, limit: int = ECHO_LIMIT) -> str:
    """A value from a request as an error message may show it: text as it is, anything else as JSON, lone
    surrogates escaped (a response must encode), and at most `limit` characters, cut with an ellipsis."""
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text if len(text) <= limit else f"{text[:limit - 1]}…"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Region(Strict):
    """A box in fractions of the frame: left, top, width, height, each within 0..1."""

    x: float = Field(ge=0, le=1)
    y: float = Field(ge=0, le=1)
    width: float = Field(gt=0, le=1)
    height: float = Field(gt=0, le=1)

    @model_validator(mode="after")
    def _inside(self) -> Region:
        if self.x + self.width > 1 + 1e-9 or self.y + self.height > 1 + 1e-9:
            raise ValueError("the region must lie inside the frame (x + width <= 1, y + height <= 1)")
        return self


class GenerationParams(Strict):
    """One generation: a prompt and a mode; every mode but `text` starts from a library video at time t."""

    mode: Literal["text", "continue", "animate", "variation", "inpaint", "outpaint"] = "text"
    prompt: str = Field(min_length=1, max_length=MAX_PROMPT)
    negative_prompt: str = Field(default="", max_length=MAX_PROMPT)
    seed: int = Field(default=0, ge=0, le=2**31 - 1)
    steps: int = Field(default=30, ge=1, le=200)
    guidance: float = Field(default=4.0, ge=0, le=20)
    frames: int = Field(default=16, ge=2, le=128, description="frames to make (continue: new frames)")
    video_id: str | None = Field(default=None, pattern=ID_PATTERN,
                                 description="the source video: its id or a unique prefix of it")
    t: float = Field(default=0.0, ge=0, le=86_400, description="seconds into the source video")
    strength: float = Field(default=0.6, ge=0, le=1, description="variation: how far from the source")
    region: Region | None = Field(default=None, description="inpaint: the box to regenerate; outpaint: the box to keep")

    @model_validator(mode="after")
    def _mode_needs(self) -> GenerationParams:
        if self.mode != "text" and not self.video_id:
            raise ValueError(f"mode '{self.mode}' starts from a library video: give video_id (and t)")
        if self.mode in ("inpaint", "outpaint") and self.region is None:
            raise ValueError(f"mode '{self.mode}' needs a region")
        return self


class Filters(Strict):
    """Which videos a query or a listing may return."""

    source: Literal["generated", "ingested"] | None = None
    created_after: float | None = Field(default=None, ge=0, allow_inf_nan=False, description="unix seconds")
    created_before: float | None = Field(default=None, ge=0, allow_inf_nan=False, description="unix seconds")
    min_duration: float | None = Field(default=None, ge=0, allow_inf_nan=False, description="seconds")
    max_duration: float | None = Field(default=None, ge=0, allow_inf_nan=False, description="seconds")
    model: str | None = Field(default=None, min_length=1, max_length=MAX_MODEL_FILTER,
                               description="the generator model that made it (a name or checkpoint path; any text)")

    @field_validator("model")
    @classmethod
    def _whole_characters(cls, model: str | None) -> str | None:
        if model is not None and any("\ud800" <= c <= "\udfff" for c in model):
            raise ValueError("the model filter holds a lone surrogate, which is no character")
        return model

    def expression(self) -> str:
        """The Milvus boolean expression over `videos` fields ("" when nothing is filtered)."""
        parts = []
        if self.source:
            parts.append(f"source == {quote(self.source)}")
        if self.created_after is not None:
            parts.append(f"created_at >= {float(self.created_after)!r}")
        if self.created_before is not None:
            parts.append(f"created_at <= {float(self.created_before)!r}")
        if self.min_duration is not None:
            parts.append(f"duration_s >= {float(self.min_duration)!r}")
        if self.max_duration is not None:
            parts.append(f"duration_s <= {float(self.max_duration)!r}")
        if self.model:
            parts.append(f'meta["model"] == {quote(self.model)}')
        return " and ".join(parts)
