"""VideoStore against a real Milvus Lite database and a real Milvus 2.3 server."""

import os
import signal
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from pymilvus import DataType, MilvusClient

from indexer.identity import DESCRIPTOR_DIM, DESCRIPTOR_NAME
from indexer.milvus import (
    COLLECTIONS,
    DIM_KEY,
    MODEL_KEY,
    WINDOWS,
    ModelMismatch,
    StoreError,
    StoreLocked,
    drop_catalog,
    supports_group_by,
)
from indexer.records import VideoEntry, VideoRecord, VideoWindows
from indexer.store import VideoStore

MODEL, DIM = "test-clip", 16
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["lite", pytest.param("server", marks=pytest.mark.server),
                        pytest.param("stack", marks=[pytest.mark.server, pytest.mark.slow])])
def uri(request, tmp_path):
    """A store URI: a fresh Lite file, the session's Milvus 2.3 server (the `milvus` package) or
    the stack's Milvus (docker-compose.yml, where Docker runs), its rows cleared."""
    if request.param == "lite":
        return str(tmp_path / "data" / "milvus.db")  # the parent folder does not exist yet
    uri = request.getfixturevalue("milvus_server_uri" if request.param == "server" else "stack_milvus_uri")
    try:  # another suite may have left its own model's collections on the shared server
        VideoStore(uri, clip_model=MODEL, dim=DIM).close()
    except ModelMismatch:
        drop_catalog(uri)
    client = MilvusClient(uri)
    for name in COLLECTIONS:  # emptied, not dropped: creating and loading takes seconds each
        if client.has_collection(name):
            client.delete(name, filter='video_id != ""')
    if client.has_collection(WINDOWS):  # whole only with every video's windows: none left from another test
        client.drop_collection(WINDOWS)
    client.close()
    return uri


@pytest.fixture
def store(uri):
    s = VideoStore(uri, clip_model=MODEL, dim=DIM)
    yield s
    s.close()


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def clustered(n_videos: int, n_frames: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Frame embeddings per video: noisy copies of the video's own random centre."""
    rng = np.random.default_rng(seed)
    centres = unit(rng.normal(size=(n_videos, DIM)))
    return {f"vid{v:02d}": unit(centres[v] + 0.3 * rng.normal(size=(n_frames, DIM))) for v in range(n_videos)}


def record(vid: str, n: int, source: str = "generated") -> VideoRecord:
    return VideoRecord(
        vid,
        f"/library/{vid}.mp4",
        source,
        prompt=f"a ball, {vid}",
        duration_s=n / 2,
        fps=2.0,
        width=64,
        height=48,
        num_frames=n,
        created_at=1.7e9 + 0.25,
        meta={"seed": 7, "file": f"{vid}.mp4"},
    )


def add(store: VideoStore, vid: str, emb: np.ndarray, source: str = "generated") -> VideoRecord:
    rec = record(vid, len(emb), source)
    store.add_video(rec, range(len(emb)), [i / 2 for i in range(len(emb))], emb, emb[0])
    return rec


def test_add_get_has_delete(store):
    emb = clustered(1, 4)["vid00"]
    rec = add(store, "vid00", emb)
    assert store.has_video("vid00") and not store.has_video("nope")
    assert store.get_video("vid00") == rec
    assert store.get_videos(["vid00", "nope"]) == {"vid00": rec}
    assert (store.count_videos(), store.count_frames()) == (1, 4)

    store.delete_video("vid00")
    assert not store.has_video("vid00") and store.get_video("vid00") is None
    assert (store.count_videos(), store.count_frames(), store.stats()["prompts"]) == (0, 0, 0)
    assert store.orphan_frame_video_ids() == set()


def brute_force(videos: dict[str, np.ndarray], q: np.ndarray, top_k: int, per_video: int):
    """Expected (video_id, [(index, score), ...]) per hit, by exact cosine over all frames."""
    per = {v: sorted(enumerate(e @ q), key=lambda p: -p[1])[:per_video] for v, e in videos.items()}
    ranked = sorted(per, key=lambda v: -per[v][0][1])[:top_k]
    return [(v, per[v]) for v in ranked]


def test_search_one_hit_per_video_ranked(store):
    videos = clustered(8, 6)
    for vid, emb in videos.items():
        add(store, vid, emb)
    q = unit(videos["vid03"][4] + 0.05 * np.random.default_rng(1).normal(size=DIM))

    hits = store.search_frames(q, top_k=5, frames_per_video=3)
    expected = brute_force(videos, q, 5, 3)
    assert [h.video.video_id for h in hits] == [v for v, _ in expected]
    assert hits[0].video == record("vid03", 6) and hits[0].best_t == 2.0
    for hit, (_, frames) in zip(hits, expected, strict=True):
        assert [f.index for f in hit.frames] == [i for i, _ in frames]
        assert [f.score for f in hit.frames] == pytest.approx([s for _, s in frames], abs=1e-4)
        assert (hit.score, hit.best_t) == (hit.frames[0].score, hit.frames[0].t)

    # a smaller window: the server without group-by then sees only some frames
    hits = store.search_frames(q, top_k=2, frames_per_video=2)
    assert [h.video.video_id for h in hits] == [v for v, _ in brute_force(videos, q, 2, 2)]
    assert all(len(h.frames) <= 2 for h in hits)


def test_optimize_keeps_every_video_findable(store, uri):
    videos = clustered(8, 6)
    for vid, emb in list(videos.items())[:5]:
        add(store, vid, emb)
    store.optimize()  # Lite rebuilds its indexes over the five; a server compacts
    for vid, emb in list(videos.items())[5:]:  # rows written after the rebuild
        add(store, vid, emb)
    for vid, emb in videos.items():
        assert store.search_frames(emb[2], top_k=1)[0].video.video_id == vid
    assert store.count_frames() == 48 and store.count_videos() == 8
    store.close()

    reopened = VideoStore(uri, clip_model=MODEL, dim=DIM)  # what optimize left opens and searches as before
    assert reopened.search_frames(videos["vid06"][0], top_k=1)[0].video.video_id == "vid06"
    reopened.close()


def test_index_dropped_by_a_crash_is_rebuilt_on_open(tmp_path):
    path = str(tmp_path / "milvus.db")
    store = VideoStore(path, clip_model=MODEL, dim=DIM)
    videos = clustered(3, 4)
    for vid, emb in videos.items():
        add(store, vid, emb)
    store._client.release_collection("frames")  # optimize killed between dropping and building
    store._client.drop_index("frames", "embedding")
    store.close()

    store = VideoStore(path, clip_model=MODEL, dim=DIM)
    assert store._client.list_indexes("frames")
    assert store.search_frames(videos["vid01"][3], top_k=1)[0].video.video_id == "vid01"
    store.close()


def test_search_passes_filter_to_frames(store):
    videos = clustered(6, 3)
    for vid, emb in videos.items():
        add(store, vid, emb)
    hits = store.search_frames(videos["vid02"][0], top_k=5, filter='video_id in ["vid01", "vid05"]')
    assert {h.video.video_id for h in hits} == {"vid01", "vid05"}


def test_group_by_detected_from_server_version(store):
    assert store.group_by == ("://" not in store.uri)  # Lite has group-by, Milvus 2.3 has not


@pytest.mark.parametrize(
    "version, grouped",
    [
        ("v2.3.5-lite", False),
        ("v2.3.21", False),
        ("v2.4.1", True),
        ("2.5.4", True),
        ("milvus_lite-3.2.2", True),
        ("Zilliz Cloud Vector Database(Compatible with Milvus 2.5)", True),
    ],
)
def test_supports_group_by(version, grouped):
    assert supports_group_by(version) is grouped


def test_model_mismatch_refused(store, uri):
    add(store, "vid00", clustered(1, 2)["vid00"])
    with pytest.raises(ModelMismatch) as e:
        VideoStore(uri, clip_model="ViT-B-32:laion2b_s34b_b79k", dim=DIM)
    assert "'test-clip' (dim 16)" in str(e.value)
    assert "'ViT-B-32:laion2b_s34b_b79k' (dim 16)" in str(e.value)
    assert "reelbase reindex" in str(e.value)
    with pytest.raises(ModelMismatch, match=r"'test-clip' \(dim 32\)"):
        VideoStore(uri, clip_model=MODEL, dim=32)


def test_model_record_round_trips(store, uri):
    client = MilvusClient(uri)
    for name in COLLECTIONS:  # the pixel descriptors have their own writer, whatever the CLIP model
        expected = DESCRIPTOR_NAME if name == "descriptors" else MODEL
        assert client.describe_collection(name)["properties"][MODEL_KEY] == expected
    store.close()
    assert VideoStore(uri, clip_model=MODEL, dim=DIM).count_videos() == 0


def test_dim_comes_from_the_model_record_without_loading_the_model(store, uri):
    store.close()
    asked = []

    def dim() -> int:  # stands for loading the model to learn its dim
        asked.append(True)
        return DIM

    with VideoStore(uri, clip_model=MODEL, dim=dim) as reopened:
        assert reopened.dim == DIM and not asked
    with pytest.raises(ModelMismatch):
        VideoStore(uri, clip_model="other-clip", dim=dim)
    assert asked  # another model's record does not tell this one's dim


def test_dim_of_a_new_store_is_asked_for(tmp_path):
    with VideoStore(str(tmp_path / "milvus.db"), clip_model=MODEL, dim=lambda: DIM) as s:
        assert s.dim == DIM
        assert s.search_frames(unit(np.ones(DIM)), top_k=1) == []


def test_videos_with_prefix(store):
    ids = ["abcd" + "0" * 28, "abcd" + "1" * 28, "abce" + "0" * 28]
    for vid, emb in zip(ids, clustered(3, 2).values()):
        add(store, vid, emb)
    assert [r.video_id for r in store.videos_with_prefix("abcd", 10)] == ids[:2]
    assert [r.video_id for r in store.videos_with_prefix("abce", 10)] == ids[2:]
    assert [r.video_id for r in store.videos_with_prefix(ids[1], 10)] == ids[1:2]
    assert store.videos_with_prefix("abcf", 10) == []
    assert len(store.videos_with_prefix("abc", 2)) == 2
    store.delete_video(ids[0])
    assert [r.video_id for r in store.videos_with_prefix("abcd", 10)] == ids[1:2]
    for bad in ("ab%", "ab_d", 'a"'):
        with pytest.raises(ValueError):
            store.videos_with_prefix(bad, 10)


def test_pixel_descriptors_are_found_and_deleted_with_their_video(store):
    rng = np.random.default_rng(3)
    descriptors = rng.normal(size=(3, DESCRIPTOR_DIM)).astype(np.float32)
    for i, d in enumerate(descriptors):
        emb = clustered(1, 2, seed=i)["vid00"]
        store.add_videos([VideoEntry(record(f"vid{i:02d}", 2), [0, 1], [0.0, 0.5], emb, descriptor=d)])
    found = store.search_descriptors(descriptors[1], top_k=2)
    assert found[0][0] == "vid01" and found[0][1] > 0.99
    assert np.allclose(store.descriptor_of("vid02"), descriptors[2], atol=1e-6)
    store.delete_video("vid01")
    assert store.descriptor_of("vid01") is None and "vid01" not in [v for v, _ in store.search_descriptors(
        descriptors[1], top_k=3)]
    assert not store.orphan_frame_video_ids()


def write_old_descriptors(uri: str, descriptors: dict[str, np.ndarray]) -> None:
    """The pixel descriptors as a store written before the rename kept them: a collection `fingerprints`."""
    client = MilvusClient(uri)
    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("video_id", DataType.VARCHAR, is_primary=True, max_length=64)
    schema.add_field("embedding", DataType.FLOAT_VECTOR, dim=DESCRIPTOR_DIM)
    client.create_collection("fingerprints", schema=schema, consistency_level="Strong",
                             properties={MODEL_KEY: DESCRIPTOR_NAME, DIM_KEY: str(DESCRIPTOR_DIM)})
    index = client.prepare_index_params()
    index.add_index("embedding", index_type="AUTOINDEX", metric_type="COSINE")
    client.create_index("fingerprints", index)
    client.insert("fingerprints", [{"video_id": v, "embedding": d.tolist()} for v, d in descriptors.items()])
    client.flush("fingerprints")
    client.close()


def test_a_store_of_the_old_layout_has_its_descriptors_renamed_on_open(store, uri):
    rng = np.random.default_rng(4)
    descriptors = {v: rng.normal(size=DESCRIPTOR_DIM).astype(np.float32) for v in ("vid00", "vid01")}
    for i, v in enumerate(descriptors):
        add(store, v, clustered(1, 2, seed=i)["vid00"])
    store.close()
    client = MilvusClient(uri)
    client.drop_collection("descriptors")  # the old layout: videos, frames, prompts and fingerprints
    client.close()
    write_old_descriptors(uri, descriptors)

    with VideoStore(uri, clip_model=MODEL, dim=DIM) as reopened:
        assert np.allclose(reopened.descriptor_of("vid01"), descriptors["vid01"], atol=1e-6)
        assert reopened.search_descriptors(descriptors["vid00"], top_k=1)[0][0] == "vid00"
        assert reopened.count_videos() == 2 and not reopened.orphan_frame_video_ids()
    client = MilvusClient(uri)
    assert not client.has_collection("fingerprints") and all(client.has_collection(n) for n in COLLECTIONS)
    client.close()


def test_drop_catalog_drops_a_collection_under_its_old_name_too(tmp_path):
    uri = str(tmp_path / "milvus.db")
    write_old_descriptors(uri, {"vid00": np.ones(DESCRIPTOR_DIM, np.float32)})
    drop_catalog(uri)
    client = MilvusClient(uri)
    assert client.list_collections() == []
    client.close()


def test_orphan_frames_hidden_then_repaired(store):
    videos = clustered(3, 4)
    add(store, "vid00", videos["vid00"])
    add(store, "vid01", videos["vid01"])
    # a crash after the frames were written, before the video row: frames without a video
    store._write_frames([("vid02", range(4), [0, 0.5, 1, 1.5], videos["vid02"])])
    q = videos["vid02"][1]
    assert "vid02" not in [h.video.video_id for h in store.search_frames(q)]
    assert not store.has_video("vid02")
    assert store.orphan_frame_video_ids() == {"vid02"}

    add(store, "vid02", videos["vid02"])  # the rerun
    assert store.search_frames(q)[0].video.video_id == "vid02"
    assert store.orphan_frame_video_ids() == set()
    assert (store.count_videos(), store.count_frames()) == (3, 12)


def test_delete_orphans(store):
    videos = clustered(2, 3)
    add(store, "vid00", videos["vid00"])
    store._write_frames([("vid01", range(3), [0, 1, 2], videos["vid01"])])
    assert store.delete_orphans() == 1
    assert store.orphan_frame_video_ids() == set() and store.count_frames() == 3
    assert store.delete_orphans() == 0


def test_readding_is_idempotent_and_replaces(store):
    emb = clustered(1, 5)["vid00"]
    add(store, "vid00", emb)
    before = store.stats()
    add(store, "vid00", emb)
    assert store.stats() == before

    rec = VideoRecord(**{**record("vid00", 2).to_dict(), "prompt": ""})
    store.add_video(rec, [0, 1], [0.0, 0.5], emb[:2])  # re-index: fewer frames, no prompt
    assert (store.count_videos(), store.count_frames(), store.stats()["prompts"]) == (1, 2, 0)
    assert store.get_video("vid00") == rec


def test_delete_leaves_no_orphans(store):
    videos = clustered(2, 3)
    for vid, emb in videos.items():
        add(store, vid, emb)
    store.delete_video("vid00")
    assert (store.count_frames(), store.stats()["prompts"]) == (3, 1)
    assert store.orphan_frame_video_ids() == set()
    assert [h.video.video_id for h in store.search_frames(videos["vid00"][0])] == ["vid01"]


def test_browse_and_stats(store):
    videos = clustered(5, 2)
    for i, (vid, emb) in enumerate(videos.items()):
        add(store, vid, emb, "ingested" if i < 2 else "generated")
    assert sorted(r.video_id for r in store.iter_videos(batch=2)) == sorted(videos)
    pages = store.list_videos(0, 3) + store.list_videos(3, 3)
    assert sorted(r.video_id for r in pages) == sorted(videos)
    assert {r.video_id for r in store.list_videos(filter='source == "ingested"')} == {"vid00", "vid01"}
    assert store.stats() == {
        "videos": 5,
        "videos_by_source": {"generated": 3, "ingested": 2},
        "frames": 10,
        "prompts": 5,
        "windows": 0,
        "model": MODEL,
        "dim": DIM,
        "temporal_model": None,
        "server": store.server_version,
    }


def test_add_rejects_wrong_shapes(store):
    with pytest.raises(ValueError, match="embeddings"):
        store.add_video(record("vid00", 2), [0, 1], [0.0, 0.5], np.zeros((2, DIM + 1)))
    with pytest.raises(ValueError, match="embeddings"):
        store.add_video(record("vid00", 0), [], [], np.zeros((0, DIM)))


# --- Milvus Lite only: other processes ---


def child(code: str) -> subprocess.Popen:
    """Start a Python process running code in the repository, with pipes for stdin and stdout."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)], env=env, text=True, stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )


def test_lite_lock_is_reported_plainly(tmp_path):
    path = str(tmp_path / "milvus.db")
    holder = child(f"""
        import sys
        from indexer.store import VideoStore
        VideoStore({path!r}, clip_model={MODEL!r}, dim={DIM})
        print("ready", flush=True)
        sys.stdin.read()
    """)
    try:
        assert holder.stdout.readline().strip() == "ready"
        with pytest.raises(StoreLocked) as e:
            VideoStore(path, clip_model=MODEL, dim=DIM)
        assert path in str(e.value) and "reelbase serve" in str(e.value)
    finally:
        holder.communicate("")  # closing stdin lets it exit


def test_lite_committed_video_survives_kill9(tmp_path):
    path = str(tmp_path / "milvus.db")
    writer = child(f"""
        import os, signal
        import numpy as np
        from indexer.records import VideoRecord
        from indexer.store import VideoStore
        store = VideoStore({path!r}, clip_model={MODEL!r}, dim={DIM})
        store.add_video(VideoRecord("vid00", "u", "ingested"), range(4), [0, 1, 2, 3],
                        np.eye({DIM}, dtype=np.float32)[:4])
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    writer.communicate()
    assert writer.returncode == -signal.SIGKILL
    store = VideoStore(path, clip_model=MODEL, dim=DIM)
    assert store.has_video("vid00") and store.count_frames() == 4
    assert store.search_frames(np.eye(DIM)[2])[0].best_t == 2.0


def test_lite_without_faiss_still_searches(tmp_path):
    finder = child(f"""
        import sys
        sys.modules["faiss"] = None  # as on a machine without faiss-cpu
        import numpy as np
        from indexer.records import VideoRecord
        from indexer.store import VideoStore
        store = VideoStore({str(tmp_path / "milvus.db")!r}, clip_model={MODEL!r}, dim={DIM})
        store.add_video(VideoRecord("vid00", "u", "ingested"), range(2), [0, 1],
                        np.eye({DIM}, dtype=np.float32)[:2])
        print(store.search_frames(np.eye({DIM})[1])[0].video.video_id)
    """)
    out, _ = finder.communicate()
    assert out.strip() == "vid00"


def skewed_library(store: VideoStore, n_small: int = 120, big_frames: int = 512, seed: int = 3):
    """One long video whose frames are all near the query beside many short ones further away, as a
    library of real footage has: the query, and every video's frames."""
    rng = np.random.default_rng(seed)
    q = unit(rng.normal(size=DIM))
    videos = {"big": unit(q + 0.15 * rng.normal(size=(big_frames, DIM)))}
    videos |= {f"s{v:03d}": unit(q + 0.6 * rng.normal(size=(5, DIM))) for v in range(n_small)}
    entries = [VideoEntry(record(v, len(e)), range(len(e)), [i / 2 for i in range(len(e))], e)
               for v, e in videos.items()]
    store.add_videos(entries)
    return q, videos


def test_pages_are_full_and_consecutive_in_a_skewed_library(store):
    q, videos = skewed_library(store)
    expected = [v for v, _ in brute_force(videos, q, 40, 3)]
    pages = [store.search_frames(q, top_k=10, frames_per_video=3, offset=offset) for offset in (0, 10, 20, 30)]
    assert [len(p) for p in pages] == [10, 10, 10, 10]
    got = [h.video.video_id for p in pages for h in p]
    assert len(set(got)) == 40 and got[:5] == expected[:5]  # no video on two pages
    assert len(set(got) & set(expected)) >= 36  # an approximate index may swap a few near-ties further down
    assert all(len(h.frames) == 3 for p in pages for h in p)  # every video has at least 3 frames


@pytest.mark.parametrize("ids_in_filter", [2000, 0], ids=["ids-in-frame-filter", "each-video-checked"])
def test_a_page_is_full_whatever_the_video_filter_keeps(store, monkeypatch, ids_in_filter):
    monkeypatch.setattr("indexer.frame_search.IDS_IN_FILTER", ids_in_filter)
    q, videos = skewed_library(store)
    ids = sorted(videos)
    keep = ids[::7]  # the big video and every 7th short one
    hits = store.search_frames(q, top_k=10, video_filter=f"video_id in {ids[::7]}".replace("'", '"'))
    assert len(hits) == 10 and {h.video.video_id for h in hits} <= set(keep)
    last = store.search_frames(q, top_k=10, offset=len(keep) - 3, video_filter=f"video_id in {keep}".replace("'", '"'))
    assert len(last) == 3  # the end of the results: a short page, then nothing


TEMPORAL = ("test-temporal@000000000000", DIM)


def with_windows(entry: VideoEntry, windows: np.ndarray) -> VideoEntry:
    """The entry with windows of these vectors, one every second, each two seconds long."""
    starts = np.arange(len(windows), dtype=float)
    return replace(entry, windows=VideoWindows(np.arange(len(windows)) * 2, starts, starts + 2, windows))


def test_window_pages_are_full_and_consecutive_in_a_skewed_library(uri):
    """One long video with hundreds of windows near the query beside many short ones: every page holds
    distinct videos, each hit with its best windows (start and end), pages never overlapping."""
    rng = np.random.default_rng(5)
    q = unit(rng.normal(size=DIM))
    windows = {"big": unit(q + 0.15 * rng.normal(size=(300, DIM)))}
    windows |= {f"s{v:03d}": unit(q + 0.6 * rng.normal(size=(2, DIM))) for v in range(60)}
    with VideoStore(uri, clip_model=MODEL, dim=DIM, temporal=TEMPORAL) as store:
        frames = clustered(1, 2)["vid00"]
        store.add_videos([with_windows(VideoEntry(record(v, 2), [0, 1], [0.0, 0.5], frames), w)
                          for v, w in windows.items()])
        expected = [v for v, _ in brute_force(windows, q, 30, 2)]
        pages = [store.search_windows(q, top_k=10, windows_per_video=2, offset=o) for o in (0, 10, 20)]
        got = [h.video.video_id for p in pages for h in p]
        assert [len(p) for p in pages] == [10, 10, 10] and len(set(got)) == 30 and got[:5] == expected[:5]
        assert all(f.end == f.t + 2 for p in pages for h in p for f in h.frames)
        assert store.stats()["windows"] == 300 + 60 * 2


def test_windows_are_kept_whole_or_not_at_all(uri):
    """Windows of one temporal model only, for every video: another model's or none's writes drop them, and a
    catalog that has videos without windows says so until a re-index makes them."""
    videos = clustered(3, 2)
    entries = {v: with_windows(VideoEntry(record(v, 2), [0, 1], [0.0, 0.5], e), e) for v, e in videos.items()}
    with VideoStore(uri, clip_model=MODEL, dim=DIM, temporal=TEMPORAL) as store:  # a new catalog: windows
        assert store.has_windows and store.windows_notice is None
        store.add_videos([entries["vid00"]])
        with pytest.raises(ValueError, match="needs its windows"):
            store.add_videos([replace(entries["vid01"], windows=None)])
    with VideoStore(uri, clip_model=MODEL, dim=DIM, temporal=("other@111111111111", DIM)) as store:
        assert not store.has_windows and "made by the temporal model test-temporal" in store.windows_notice
        with pytest.raises(StoreError, match="reindex"):
            store.search_windows(videos["vid00"][0])
    with VideoStore(uri, clip_model=MODEL, dim=DIM) as store:  # no temporal model: a write drops the windows
        assert "no temporal model" in store.windows_notice
        store.add_videos([replace(entries["vid01"], windows=None)])
    with VideoStore(uri, clip_model=MODEL, dim=DIM, temporal=TEMPORAL) as store:  # (dropped, else they'd count)
        assert not store.has_windows and "indexed without windows" in store.windows_notice
        store.make_windows()  # what a re-index does before writing every video again
        store.add_videos(list(entries.values()))
        assert store.has_windows and store.stats()["windows"] == 6
        store.delete_video("vid02")
        assert store.stats()["windows"] == 4


NAMES = ["é", "ünï cödé/@+", "🎥 clip", 'a"b', "a'b", "back\\slash", "new\nline", "cr\rx", "tab\tx",
         "ctl\x01\x1f\x7f", "\u2028", 'x" or 1==1 or "', ""]


def test_any_unicode_text_is_matched_exactly_in_an_expression(store):
    from indexer.expressions import in_list, quote

    emb = clustered(1, 1)["vid00"]
    for i, name in enumerate(NAMES):
        rec = replace(record(f"n{i:02d}", 1), prompt=name, meta={"model": name})
        store.add_videos([VideoEntry(rec, [0], [0.0], emb)])
    for i, name in enumerate(NAMES):
        for expression in (f'meta["model"] == {quote(name)}', f"prompt == {quote(name)}", in_list("prompt", [name])):
            total, found = store.browse(filter=expression)
            assert (total, [r.video_id for r in found]) == (1, [f"n{i:02d}"]), (name, expression)
