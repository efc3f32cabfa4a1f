"""VideoStore against a Milvus >= 2.4 server in Docker, where search groups by video on the server."""

import os

import numpy as np
import pytest

from indexer.store import ModelMismatch, VideoRecord, VideoStore

IMAGE = os.environ.get("REELBASE_TEST_MILVUS_IMAGE", "milvusdb/milvus:v2.5.4")


def docker_answers() -> bool:
    """Return whether a Docker engine answers a ping within two seconds."""
    try:
        import docker

        client = docker.from_env(timeout=2)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # no socket, no daemon, no permission: all mean no Docker here
        return False


pytestmark = [
    pytest.mark.server,
    pytest.mark.slow,
    pytest.mark.skipif(not docker_answers(), reason="no Docker engine answers here; "
                       "testcontainers needs one to run the Milvus image"),
]


@pytest.fixture(scope="module")
def milvus_uri():
    from testcontainers.community.milvus import MilvusContainer

    with MilvusContainer(IMAGE) as milvus:
        yield milvus.get_connection_url()


def test_server_groups_by_video(milvus_uri):
    rng = np.random.default_rng(0)
    store = VideoStore(milvus_uri, model="test-clip", dim=8)
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
            VideoStore(milvus_uri, model="other", dim=8)
    finally:
        store.close()
