"""What a generation asks for: one type from the API request (and the CLI) to the sampler, validated once, here.

`GenerationParams` is what a client sends, what a job keeps on disk, what the service hands the
`Generator` and what a generated clip's record keeps (`meta["job"]`). Its mode is one word of
`MODES`, the same word a clip's record carries. The bounds are the annotated field types below,
shared with requests that build one (the API's re-seed).
"""

from __future__ import annotations

from typing import Annotated, Literal, get_args

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from common.ids import ID_PATTERN

Mode = Literal["text", "continue", "animate", "variation", "inpaint", "outpaint"]
MODES = get_args(Mode)
MAX_PROMPT = 500  # characters of a prompt (a longer caption re-seeds as its first MAX_PROMPT)

NegativePrompt = Annotated[str, Field(default="", max_length=MAX_PROMPT)]
Seed = Annotated[int, Field(default=0, ge=0, le=2**31 - 1)]
Steps = Annotated[int, Field(default=30, ge=1, le=200)]
Guidance = Annotated[float | None, Field(default=None, ge=0, le=20, description=(
    "classifier-free guidance scale; none: the model's own for the mode, as its config says"))]
MAX_CANDIDATES = 8
Candidates = Annotated[int | None, Field(default=None, ge=1, le=MAX_CANDIDATES, description=(
    "starting noises searched for the motion the prompt asks for (a way, falling, colliding; each costs "
    "the first steps once more; where none of those finished shows all the prompt asks, the model may search "
    "more rounds of as many, its config's search_rounds), or clips finished to continue given frames' motion "
    "across the seam (each costs every step once more); none: the model's own, as its config says"))]
Frames = Annotated[int, Field(default=16, ge=2, le=128, description="frames to make (continue: new frames)")]
SourceTime = Annotated[float, Field(default=0.0, ge=0, le=86_400, description="seconds into the source video")]
Strength = Annotated[float, Field(default=0.6, ge=0, le=1, description="variation: how far from the source")]


class Region(BaseModel):
    """A box in fractions of the frame: left, top, width, height, each within 0..1."""

    model_config = ConfigDict(extra="forbid")

    x: float = Field(ge=0, le=1)
    y: float = Field(ge=0, le=1)
    width: float = Field(gt=0, le=1)
    height: float = Field(gt=0, le=1)

    @model_validator(mode="after")
    def _inside(self) -> Region:
        if self.x + self.width > 1 + 1e-9 or self.y + self.height > 1 + 1e-9:
            raise ValueError("the region must lie inside the frame (x + width <= 1, y + height <= 1)")
        return self

    def mask(self, height: int, width: int) -> np.ndarray:
        """The box as a boolean (height, width) mask of a frame that size (at least one pixel, also where a
        box at the edge rounds to none)."""
        mask = np.zeros((height, width), bool)
        top, left = min(round(self.y * height), height - 1), min(round(self.x * width), width - 1)
        mask[top:max(top + 1, round((self.y + self.height) * height)),
             left:max(left + 1, round((self.x + self.width) * width))] = True
        return mask


RegionField = Annotated[Region | None, Field(default=None,
                                             description="inpaint: the box to regenerate; outpaint: the box to keep")]


class GenerationParams(BaseModel):
    """One generation: a prompt and a mode; every mode but `text` starts from a library video at time t."""

    model_config = ConfigDict(extra="forbid")

    mode: Mode = "text"
    prompt: str = Field(min_length=1, max_length=MAX_PROMPT)
    negative_prompt: NegativePrompt
    seed: Seed
    steps: Steps
    guidance: Guidance
    candidates: Candidates
    frames: Frames
    video_id: str | None = Field(default=None, pattern=ID_PATTERN,
                                 description="the source video: its id or a unique prefix of it")
    t: SourceTime
    strength: Strength
    region: RegionField

    @model_validator(mode="after")
    def _mode_needs(self) -> GenerationParams:
        if self.mode != "text" and not self.video_id:
            raise ValueError(f"mode '{self.mode}' starts from a library video: give video_id (and t)")
        if self.mode in ("inpaint", "outpaint") and self.region is None:
            raise ValueError(f"mode '{self.mode}' needs a region")
        return self
