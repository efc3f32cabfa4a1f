"""The queries: text, image, frame, similar clips and prompts, answered from the catalog's vectors.

Each ranks videos (one hit per video, with its best moments) by the models the catalog was built
with; filters narrow the videos a query may return. A text is matched against windows of frames
by the temporal model where the catalog keeps them (what happens: "a ball falling"), else against
single frames (what a frame shows), and `frames_notice` says why; images and frames are matched
against frames.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from indexer.records import VideoHit, VideoRecord
from indexer.store import VideoStore
from search.library import Library
from search.params import Filters

if TYPE_CHECKING:  # torch loads with the first query that embeds
    from indexer.encoder import ClipEncoder
    from indexer.temporal_models import TemporalEncoder


class Queries:
    """Searches over one library's catalog with its CLIP encoder (and temporal model). `encoder` and `temporal`
    give the models, loaded by the first query that embeds (similar clips need none: their query vector is in
    the catalog)."""

    def __init__(self, store: VideoStore, encoder: Callable[[], ClipEncoder], library: Library,
                 temporal: Callable[[], TemporalEncoder | None] = lambda: None):
        self.store = store
        self._encoder = encoder
        self._temporal = temporal
        self.library = library

    @property
    def encoder(self) -> ClipEncoder:
        return self._encoder()

    def text(self, text: str, top_k: int = 10, filters: Filters | None = None, offset: int = 0) -> list[VideoHit]:
        """Videos whose windows (else frames) best match the text, one hit per video, its best moment the best
        window's start."""
        if not text.strip():
            raise ValueError("the search text is empty")
        if self.matches_windows:
            return self.store.search_windows(self._temporal().encode_text(text), top_k,
                                             video_filter=(filters or Filters()).expression(), offset=offset)
        return self._frames(self.encoder.encode_text(text), top_k, filters, offset)

    @property
    def matches_windows(self) -> bool:
        """Whether a text is matched against windows of frames (else single frames)."""
        return self.store.has_windows

    @property
    def frames_notice(self) -> str | None:
        """Why a text is matched against single frames, and what would make windows (None: it is not)."""
        return self.store.windows_notice

    def image(self, image: np.ndarray, top_k: int = 10, filters: Filters | None = None, offset: int = 0
              ) -> list[VideoHit]:
        """Videos with frames most like an image ((H, W, 3) uint8)."""
        return self._frames(self.encoder.encode_images(np.asarray(image)[None])[0], top_k, filters, offset)

    def frame(self, video_id: str, t: float, top_k: int = 10, filters: Filters | None = None, offset: int = 0
              ) -> list[VideoHit]:
        """Videos with frames most like the frame of a library video at t."""
        frame, _ = self.library.frame_at(video_id, t)
        return self.image(frame, top_k, filters, offset)

    def similar(self, video_id: str, top_k: int = 10,
                filters: Filters | None = None) -> list[tuple[VideoRecord, float]]:
        """The videos nearest to a library video, itself left out: where the catalog keeps windows, those whose
        windows best match the mean of its windows (what it shows and how things move in it), else by their video
        embeddings (the mean of their frames)."""
        video_id = self.library.resolve_id(video_id)
        expression = (filters or Filters()).expression()
        if self.matches_windows:
            query = self.store.video_windows_mean(video_id)
            hits = [(h.video, h.score) for h in self.store.search_windows(query, top_k + 1, video_filter=expression)]
        else:
            hits = self.store.search_videos(self.store.video_embedding(video_id), top_k + 1, expression)
        return [(r, s) for r, s in hits if r.video_id != video_id][:top_k]

    def prompts(self, text: str, top_k: int = 10) -> list[tuple[VideoRecord, float]]:
        """Generated videos whose prompts mean something close to the text."""
        if not text.strip():
            raise ValueError("the search text is empty")
        return self.store.search_prompts(self.encoder.encode_text(text), top_k)

    def unknown_words(self, text: str) -> list[str]:
        """The query's words the text model does not know."""
        return self.encoder.unknown_words(text)

    def vocabulary_notice(self, text: str) -> str | None:
        """What to tell a user whose query the text model only partly knows (None when it knows it all)."""
        return self.encoder.vocabulary_notice(text)

    def _frames(self, query: np.ndarray, top_k: int, filters: Filters | None, offset: int) -> list[VideoHit]:
        return self.store.search_frames(query, top_k=top_k, video_filter=(filters or Filters()).expression(),
                                        offset=offset)
