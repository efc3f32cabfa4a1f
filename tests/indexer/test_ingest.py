"""The whole ingest path with real parts: world mp4s, the built-in CLIP, Milvus Lite."""

import errno
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from indexer.encoder import ClipEncoder
from indexer.ingest import content_id, find_videos, ingest
from indexer.milvus import drop_catalog
from indexer.models import model_identity
from indexer.store import VideoStore
from indexer.writer import IndexWriter
from tests import fixtures


@pytest.fixture(scope="module")
def encoder():
    return ClipEncoder.load("reelbase-tiny", "cpu")


@pytest.fixture
def store(tmp_path, encoder):
    with VideoStore(str(tmp_path / "milvus.db"), clip_model=encoder.name, dim=encoder.dim) as s:
        yield s


def test_ingest_folder_then_search_finds_the_clip(tmp_path, store, encoder):
    paths = fixtures.write_world_videos(tmp_path / "in", 12, seed=11)
    report = ingest([tmp_path / "in"], IndexWriter(store, encoder), tmp_path / "library")
    assert len(report.added) == 12 and not report.failed
    assert report.ignored == 12  # the JSON truth records beside the clips
    assert report.frames == store.count_frames() == 12 * 5  # 16 frames at 8 fps, 2 per second + last
    caption = (paths[0].with_suffix(".json")).read_text()
    record = store.get_video(content_id(paths[0]))
    assert record.meta["original_name"] == "00000.mp4" and record.meta["caption"] in caption
    assert (tmp_path / "library" / record.uri).read_bytes() == paths[0].read_bytes()
    hits = store.search_frames(encoder.encode_text(record.meta["caption"]), top_k=3)
    assert record.video_id in [h.video.video_id for h in hits]


def test_reingest_is_a_no_op_and_duplicates_in_one_run_count_once(tmp_path, store, encoder):
    fixtures.write_world_videos(tmp_path / "in", 4, seed=12)
    (tmp_path / "in" / "copy.mp4").write_bytes((tmp_path / "in" / "00000.mp4").read_bytes())
    first = ingest([tmp_path / "in"], IndexWriter(store, encoder), tmp_path / "library")
    assert len(first.added) == 4 and len(first.present) == 1
    second = ingest([tmp_path / "in"], IndexWriter(store, encoder), tmp_path / "library")
    assert second.added == [] and len(second.present) == 5
    assert store.count_videos() == 4 and store.count_frames() == 20
    assert len(list((tmp_path / "library").iterdir())) == 4


def test_bad_files_are_listed_with_reasons_and_the_rest_go_in(tmp_path, store, encoder):
    folder = tmp_path / "in"
    fixtures.write_world_videos(folder, 3, seed=13)
    fixtures.write_zero_byte(folder / "empty.mp4")
    fixtures.write_text_as_mp4(folder / "notes.mp4")
    fixtures.write_truncated(folder / "cut.mp4")
    fixtures.write_random_bytes(folder / "noise.mp4")
    report = ingest([folder], IndexWriter(store, encoder), tmp_path / "library")
    assert len(report.added) == 3
    reasons = {Path(p).name: r for p, r in report.failed}
    assert set(reasons) == {"empty.mp4", "notes.mp4", "cut.mp4", "noise.mp4"}
    assert "empty" in reasons["empty.mp4"] and "text" in reasons["notes.mp4"]
    assert "failed: " in report.summary() and store.count_videos() == 3


def test_a_file_that_cannot_be_copied_is_listed_and_the_rest_go_in(tmp_path, store, encoder, monkeypatch):
    """The disk fills up while one file is copied: it is reported, its half copy removed, the others kept."""
    paths = fixtures.write_world_videos(tmp_path / "in", 4, seed=14)
    copy = shutil.copyfile

    def disk_full_for_the_second(src, dst, **kwargs):
        if Path(src) == paths[1]:
            Path(dst).write_bytes(b"half a file")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return copy(src, dst, **kwargs)

    monkeypatch.setattr("indexer.ingest.shutil.copyfile", disk_full_for_the_second)
    report = ingest([tmp_path / "in"], IndexWriter(store, encoder), tmp_path / "library")
    assert len(report.added) == 3 and report.failed == [(str(paths[1]), "cannot copy into the library: "
                                                          "No space left on device")]
    assert store.count_videos() == 3 and store.get_video(content_id(paths[1])) is None
    assert sorted(p.name for p in (tmp_path / "library").iterdir()) == sorted(
        f"{content_id(p)}.mp4" for p in paths if p != paths[1])  # no half copy left behind
    monkeypatch.undo()
    assert ingest([tmp_path / "in"], IndexWriter(store, encoder), tmp_path / "library").added == [content_id(paths[1])]


def test_find_videos_goes_by_content_as_well_as_name(tmp_path):
    (tmp_path / "a").mkdir()
    fixtures.write_world_mp4(tmp_path / "a" / "clip.bin")
    (tmp_path / "readme.txt").write_text("hello")
    (tmp_path / ".hidden.mp4").write_text("x")
    found = find_videos([tmp_path])
    assert [p.name for p in found.videos] == ["clip.bin"] and found.ignored == 1 and found.skipped == []
    with pytest.raises(FileNotFoundError):
        find_videos([tmp_path / "missing"])


def _run_ingest(env, folder) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "search.cli", "ingest", str(folder), "--json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=Path(__file__).parents[2],
    )


@pytest.fixture(params=["lite", pytest.param("server", marks=pytest.mark.server)])
def milvus_uri(request, tmp_path):
    """Where the catalog lives: a Lite file in the data folder, or the session's Milvus server (emptied)."""
    if request.param == "lite":
        return str(tmp_path / "data" / "milvus.db")
    uri = request.getfixturevalue("milvus_server_uri")
    drop_catalog(uri)
    return uri


def test_kill_minus_9_half_way_then_rerun_repairs_everything(tmp_path, milvus_uri):
    folder = tmp_path / "in"
    paths = fixtures.write_world_videos(folder, 40, seed=14)
    data = tmp_path / "data"
    env = {**os.environ, "REELBASE_DATA_DIR": str(data), "REELBASE_MILVUS_URI": milvus_uri, "REELBASE_DEVICE": "cpu"}
    proc = _run_ingest(env, folder)
    library = data / "library"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if library.exists() and len([p for p in library.iterdir() if p.suffix == ".mp4"]) >= 8:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the ingest finished before it could be killed; use more clips"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    rerun = _run_ingest(env, folder)
    out, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err.decode()
    with VideoStore(milvus_uri, clip_model=model_identity("reelbase-tiny"), dim=256) as store:
        ids = {content_id(p) for p in paths}
        assert {r.video_id for r in store.iter_videos()} == ids
        assert store.count_frames() == 40 * 5
        assert store.orphan_frame_video_ids() == set()
    assert sorted(p.stem for p in library.iterdir()) == sorted(ids)  # no temp files, nothing twice
