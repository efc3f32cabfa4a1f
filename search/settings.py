"""Settings from `REELBASE_` environment variables (pydantic-settings)."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Where the data lives, which Milvus, which CLIP model, which device."""

    model_config = SettingsConfigDict(env_prefix="REELBASE_", extra="ignore")

    data_dir: Path = Path("./reelbase-data")
    milvus_uri: str = ""  # empty: a Milvus Lite file inside the data folder
    milvus_token: str = ""
    clip_model: str = "reelbase-tiny"
    temporal_model: str = "auto"  # auto (the one trained over clip_model, if any) | none | a .temporal.safetensors
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    generator_model: str = "reelbase-tiny"  # a built-in name or a .safetensors checkpoint
    api_key: str = ""  # when set, every API route but /health needs it
    max_upload_mb: float = 512.0  # uploads beyond this get 413
    max_query_image_mb: float = Field(16.0, gt=0)  # a query image (search or duplicates by image) beyond this: 413
    max_query_pixels: int = Field(4096 * 4096, ge=1)  # a query image decoding to more: 413 (JPEGs decode at 1/8 first)
    query_image_decodes: int = Field(2, ge=1)  # query images decoded at once, each holding up to 6 bytes a pixel
    api_url: str = "http://127.0.0.1:8000"  # where the CLI and the UI find a running API
    public_api_url: str = ""  # where browsers find it, for the UI's media links (empty: api_url)
    max_queued_jobs: int = Field(32, ge=1)  # generation jobs queued or running at once; beyond it 429
    keep_finished_jobs: int = Field(500, ge=1)  # records of ended jobs kept in <data dir>/jobs/, newest first
    keep_finished_days: float = Field(30.0, gt=0)  # and none older than this
    max_event_streams: int = Field(256, ge=1)  # job event streams open at once; beyond it 503 with Retry-After
    header_timeout_s: float = Field(10.0, gt=0)  # a request's line and headers arrive within this, or it is dropped
    body_timeout_s: float = Field(30.0, gt=0)  # a body arrives within this plus 1 s per body_min_rate_kb KiB sent
    body_min_rate_kb: float = Field(16.0, gt=0)  # so a body slower than this many KiB/s is dropped after the above

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def max_query_image_bytes(self) -> int:
        return int(self.max_query_image_mb * 1024 * 1024)

    @cached_property
    def library_dir(self) -> Path:
        return self.data_dir / "library"

    @cached_property
    def resolved_milvus_uri(self) -> str:
        return self.milvus_uri or str(self.data_dir / "milvus.db")
