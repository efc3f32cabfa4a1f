"""Settings from `REELBASE_` environment variables (pydantic-settings)."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Where the data lives, which Milvus, which CLIP model, which device."""

    model_config = SettingsConfigDict(env_prefix="REELBASE_", extra="ignore")

    data_dir: Path = Path("./reelbase-data")
    milvus_uri: str = ""  # empty: a Milvus Lite file inside the data folder
    milvus_token: str = ""
    clip_model: str = "reelbase-tiny"
    device: str = "auto"  # auto | cpu | cuda | cuda:N

    @cached_property
    def library_dir(self) -> Path:
        return self.data_dir / "library"

    @cached_property
    def resolved_milvus_uri(self) -> str:
        return self.milvus_uri or str(self.data_dir / "milvus.db")
