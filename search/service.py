"""The application: the indexer and the generator joined over one library and one store."""

from __future__ import annotations

import logging
from functools import cached_property
from pathlib import Path

from indexer.encoder import ClipEncoder
from indexer.ingest import IngestReport, Progress, ingest
from indexer.store import VideoHit, VideoStore
from search.settings import Settings

log = logging.getLogger(__name__)


class Reelbase:
    """One library: its folder of video files, its Milvus catalog and its CLIP model."""

    def __init__(self, settings: Settings | None = None):
        self.settings = settings or Settings()

    @cached_property
    def encoder(self) -> ClipEncoder:
        return ClipEncoder.load(self.settings.clip_model, self.settings.device)

    @cached_property
    def store(self) -> VideoStore:
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        return VideoStore(
            self.settings.resolved_milvus_uri,
            model=self.encoder.name,
            dim=self.encoder.dim,
            token=self.settings.milvus_token,
        )

    def ingest(self, paths: list[str | Path], progress: Progress | None = None) -> IngestReport:
        """Add video files and folders to the library (content-addressed, idempotent)."""
        return ingest(paths, self.store, self.encoder, self.settings.library_dir, progress=progress)

    def search_text(self, text: str, top_k: int = 10) -> list[VideoHit]:
        """Videos whose frames best match the text, one hit per video."""
        if not text.strip():
            raise ValueError("the search text is empty")
        return self.store.search_frames(self.encoder.encode_text(text), top_k=top_k)

    def stats(self) -> dict:
        """Counts from the catalog and the bytes used by the library folder."""
        library = self.settings.library_dir
        files = [p for p in library.iterdir() if p.is_file()] if library.exists() else []
        return {
            **self.store.stats(),
            "library_dir": str(library),
            "library_files": len(files),
            "library_bytes": sum(p.stat().st_size for p in files),
            "milvus_uri": self.settings.resolved_milvus_uri,
        }

    def close(self) -> None:
        if "store" in self.__dict__:
            self.store.close()
