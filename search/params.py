"""What a query asks for: validated once, here, for the API, the CLI and the service (a generation's
parameters are the generator's: generator/params.py)."""

from __future__ import annotations

import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from indexer.expressions import quote

MAX_MODEL_FILTER = 200  # characters of a model filter
ECHO_LIMIT = 80  # characters of a request's value that an error message shows


def shown(value: object, limit: int = ECHO_LIMIT) -> str:
    """A value from a request as an error message may show it: text as it is, anything else as JSON, lone
    surrogates escaped (a response must encode), and at most `limit` characters, cut with an ellipsis."""
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text if len(text) <= limit else f"{text[:limit - 1]}…"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


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
