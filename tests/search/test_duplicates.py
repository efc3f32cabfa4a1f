"""A library-wide duplicate scan finds each video's candidates in memory: the same as a search per video."""

import tracemalloc

import numpy as np

from generator.video import write_mp4
from generator.world import FPS, sample_clips
from search.duplicates import SCAN_BATCH, nearest
from search.service import Reelbase
from search.settings import Settings


def test_nearest_are_the_best_cosines_a_block_of_rows_at_a_time():
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(8 * SCAN_BATCH, 64)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = [f"v{i}" for i in range(len(vectors))]
    tracemalloc.start()
    try:
        found = nearest(ids, vectors, 5)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    scores = vectors @ vectors.T
    for i in (0, SCAN_BATCH, len(ids) - 1):
        best = np.argsort(-scores[i])[:5]
        assert [v for v, _ in found[ids[i]]] == [ids[j] for j in best]
        assert np.allclose([s for _, s in found[ids[i]]], scores[i, best], atol=1e-6)
    assert peak < len(ids) * len(ids) * 4  # a block of rows at a time: less than the whole matrix of cosines


def test_a_scan_finds_each_videos_candidates_as_a_search_per_video_does(tmp_path):
    clips = sample_clips(44, 0, 4)
    (tmp_path / "in").mkdir()
    paths = [write_mp4(tmp_path / "in" / f"{i}.mp4", c.frames, FPS) for i, c in enumerate(clips)]
    paths.append(write_mp4(tmp_path / "in" / "copy.mp4", clips[0].frames[2:], FPS))
    with Reelbase(Settings(data_dir=tmp_path / "data", device="cpu")) as service:
        assert len(service.library.ingest(paths).added) == 5
        ids = sorted(r.video_id for r in service.store.iter_videos())
        finder = service.duplicates
        assert finder._candidates_of_all(ids) == {v: finder._candidates(v) for v in ids}
        (group,) = finder.groups()
        assert {v.meta["original_name"] for v in group.videos} == {"0.mp4", "copy.mp4"}
