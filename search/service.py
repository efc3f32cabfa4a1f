"""The application: the indexer and the generator joined over one library and one store.

`Reelbase` is what both faces (the HTTP API and the CLI) call. It loads the dependencies (the
Milvus catalog, the CLIP encoder, the generator) when first needed, and composes the parts that
are handed them: `library` (records, files, media, ingest), `queries`, `duplicates`,
`generation` and `maintenance` (re-index, repair), and `images`, the reader of query images.
docs/architecture.md draws the whole.

Each part is imported when it is first used too, so that a light command starts fast: `stats`
imports no decoder, no fingerprints, no image reader and no request models, and over a Milvus Lite
catalog that no process holds, not even pymilvus: it reads the summary the catalog's last holder
left beside it, while that still describes it (`indexer.lite_summary`).
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

from common.tasks import LibraryTasks
from indexer.identity import model_identity
from indexer.library_folder import LibraryFolder
from indexer.lite_summary import Writers, read_summary
from search.settings import Settings

if TYPE_CHECKING:  # torch and open_clip load with the first command that embeds or generates, not before
    from generator.pipeline import Generator
    from indexer.encoder import ClipEncoder
    from indexer.maintenance import Maintenance
    from indexer.store import VideoStore
    from indexer.temporal_models import TemporalEncoder, TemporalFile
    from indexer.writer import IndexWriter
    from search.duplicates import DuplicateFinder, FingerprintCache
    from search.generation import Generation
    from search.images import QueryImages
    from search.library import Library
    from search.queries import Queries


class Reelbase:
    """One library: its folder of video files, its Milvus catalog, its CLIP model and its generator."""

    def __init__(self, settings: Settings | None = None):
        self.settings = settings or Settings()
        self.folder = LibraryFolder(self.settings.library_dir, self.settings.data_dir)
        self.tasks = LibraryTasks()  # one library-wide task (re-index, repair, duplicate scan) at a time
        self.folder.remove_stale_temp_files()  # what a killed process left

    # --- dependencies, loaded when first needed ------------------------------------------------

    @cached_property
    def encoder(self) -> ClipEncoder:
        from indexer.encoder import ClipEncoder

        return ClipEncoder.load(self.settings.clip_model, self.settings.device)

    @cached_property
    def clip_identity(self) -> str:
        """The CLIP model's identity (`indexer.identity`: a digest of its weights file, read once)."""
        return model_identity(self.settings.clip_model)

    @cached_property
    def temporal_file(self) -> TemporalFile | None:
        """The temporal model file serving the CLIP model (`indexer.temporal_models`), found without torch."""
        from indexer.temporal_models import find_temporal_model

        settings = self.settings
        return find_temporal_model(settings.temporal_model, self.clip_identity, settings.data_dir)

    @cached_property
    def writers(self) -> Writers:
        """Who writes the catalog's vectors: the CLIP model, and the temporal model (with its dim) where one
        serves it; told without loading either."""
        temporal = self.temporal_file
        return self.clip_identity, (temporal.identity, temporal.dim) if temporal else None

    @cached_property
    def temporal(self) -> TemporalEncoder | None:
        """The temporal model over the CLIP encoder, or None where none serves it."""
        from indexer.temporal_models import TemporalEncoder

        return TemporalEncoder.load(self.encoder, self.temporal_file) if self.temporal_file else None

    @cached_property
    def store(self) -> VideoStore:
        """The catalog, opened without loading the CLIP model: its identity is a digest of its weights
        file, and its dim the store's record of it (the model is loaded only for a new store)."""
        from indexer.store import VideoStore

        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        clip_model, temporal = self.writers
        return VideoStore(self.settings.resolved_milvus_uri, clip_model=clip_model, dim=lambda: self.encoder.dim,
                          token=self.settings.milvus_token, temporal=temporal)

    @cached_property
    def generator(self) -> Generator:
        from generator.pipeline import Generator

        return Generator.load(self.settings.generator_model, self.settings.device)

    def load_all(self) -> Reelbase:
        """Load the CLIP model and the generator and open the catalog now (a server fails at start, not on a
        request), and make the query image reader and the fingerprint cache before request threads share them."""
        _ = (self.encoder, self.temporal, self.store, self.generator, self.images, self.fingerprints)
        return self

    def writer(self) -> IndexWriter:
        """The one index writer over this library's catalog, CLIP and temporal models and kept fingerprints."""
        from indexer.writer import IndexWriter

        return IndexWriter(self.store, self.encoder, self.folder.fingerprints, temporal=self.temporal)

    # --- parts ---------------------------------------------------------------------------------

    @cached_property
    def fingerprints(self) -> FingerprintCache:
        """Fingerprints of library videos, made from their kept thumbnails (shared by the parts)."""
        from search.duplicates import FingerprintCache, read_for_fingerprint

        return FingerprintCache(read_for_fingerprint, self.folder.fingerprints)

    @cached_property
    def images(self) -> QueryImages:
        """The reader of query images."""
        from search.images import QueryImages

        return QueryImages(self.settings.max_query_pixels, self.settings.query_image_decodes)

    @cached_property
    def library(self) -> Library:
        from search.library import Library

        return Library(self.store, self.folder, writer=self.writer, forget=self._forget)

    @cached_property
    def queries(self) -> Queries:
        from search.queries import Queries

        return Queries(self.store, lambda: self.encoder, self.library, temporal=lambda: self.temporal)

    @cached_property
    def duplicates(self) -> DuplicateFinder:
        from search.duplicates import DuplicateFinder

        return DuplicateFinder(self.store, lambda: self.encoder, self.library, self.fingerprints, self.tasks)

    @cached_property
    def generation(self) -> Generation:
        from search.generation import Generation

        return Generation(self.generator, self.settings.generator_model, self.library, self.writer)

    @cached_property
    def maintenance(self) -> Maintenance:
        from indexer.maintenance import Maintenance

        settings = self.settings
        return Maintenance(self.folder, settings.data_dir, open_store=lambda: self.store, writer=self.writer,
                           catalog=(settings.resolved_milvus_uri, settings.milvus_token), tasks=self.tasks)

    def stats(self) -> dict:
        """The library's counts and sizes, and which catalog and generator serve it."""
        return {**self.catalog_stats(), **self.folder.stats(), "milvus_uri": self.settings.resolved_milvus_uri,
                "generator": self.settings.generator_model}

    def catalog_stats(self) -> dict:
        """The catalog's counts and models (`VideoStore.stats`): while no store is open here, from the summary of a
        Lite catalog where it still describes it (`indexer.lite_summary`), without opening the catalog."""
        if "store" not in self.__dict__:
            kept = read_summary(self.settings.resolved_milvus_uri, self.writers)
            if kept is not None:
                return kept
        return self.store.stats()

    def _forget(self, video_id: str) -> None:
        """Drop what this process cached of a deleted video (its fingerprint, if one was made)."""
        if "fingerprints" in self.__dict__:
            self.fingerprints.forget(video_id)

    # --- lifetime ------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the catalog (the parts that hold it go with it)."""
        for part in ("library", "queries", "duplicates", "generation", "maintenance"):
            self.__dict__.pop(part, None)
        if "store" in self.__dict__:
            self.__dict__.pop("store").close()

    def __enter__(self) -> Reelbase:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
