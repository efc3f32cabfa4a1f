"""VideoStore against the stack's Milvus (docker-compose.yml, Milvus 2.5), where search groups by video on the server.

The whole store suite (`test_store.py`) runs against it too, as its `stack` parameter.
"""

import numpy as np
import pytest

from indexer.milvus import ModelMismatch, drop_catalog
from indexer.records import VideoRecord
from indexer.store import VideoStore

pytestmark = [pytest.mark.server, pytest.mark.slow]


def test_server_groups_by_video(stack_milvus_uri):
    rng = np.random.default_rng(0)
    drop_catalog(stack_milvus_uri)  # the store suite left its own model's collections
    store = VideoStore(stack_milvus_uri, clip_model="test-clip-group-by", dim=8)
    try:
        assert store.group_by  # detected from the server version
        centres = rng.normal(size=(4, 8))
        videos = {}
        for v, c in enumerate(centres):
            emb = c + 0.3 * rng.normal(size=(5, 8))
            videos[f"vid{v}"] = (emb / np.linalg.norm(emb, axis=1, keepdims=True)).astype(np.float32)
            store.add_video(VideoRecord(f"vid{v}", f"/lib/vid{v}.mp4", "ingested"), range(5),
                            [i / 2 for i in range(5)], videos[f"vid{v}"])
        hits = store.search_frames(videos["vid2"][3], top_k=3, frames_per_video=2)
        assert [h.video.video_id for h in hits][0] == "vid2" and hits[0].best_t == 1.5
        assert len({h.video.video_id for h in hits}) == len(hits) == 3
        assert all(1 <= len(h.frames) <= 2 for h in hits)
        assert all(h.frames == sorted(h.frames, key=lambda f: -f.score) for h in hits)
        with pytest.raises(ModelMismatch):
            VideoStore(stack_milvus_uri, clip_model="other", dim=8)
    finally:
        store.close()
        drop_catalog(stack_milvus_uri)
