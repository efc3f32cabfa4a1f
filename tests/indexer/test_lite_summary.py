"""The stats a Milvus Lite catalog's last holder leaves beside it (`indexer.lite_summary`), on real Lite catalogs."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from pymilvus import MilvusClient

from indexer.lite_summary import STATS_FIELDS, read_summary, summary_path
from indexer.records import VideoRecord
from indexer.store import VideoStore

MODEL, DIM = "test-clip", 16
WRITERS = (MODEL, None)
ROOT = Path(__file__).resolve().parents[2]


def open_store(uri: str) -> VideoStore:
    return VideoStore(uri, clip_model=MODEL, dim=DIM)


def add(store: VideoStore, video_id: str, frames: int) -> None:
    store.add_video(VideoRecord(video_id, f"{video_id}.mp4", "ingested"), range(frames),
                    [i / 2 for i in range(frames)], np.eye(DIM, dtype=np.float32)[:frames])


@pytest.fixture
def catalog(tmp_path):
    """A closed Lite catalog of two videos (five frames), and its stats as the store counted them."""
    uri = str(tmp_path / "milvus.db")
    with open_store(uri) as store:
        add(store, "vid00", 2)
        add(store, "vid01", 3)
        stats = store.stats()
    return uri, stats


def edit_summary(uri: str, edit) -> None:
    summary = json.loads(summary_path(uri).read_text())
    edit(summary)
    summary_path(uri).write_text(json.dumps(summary))


def test_a_closing_store_leaves_its_stats_beside_the_catalog(catalog):
    uri, stats = catalog
    assert tuple(stats) == STATS_FIELDS  # the summary keeps every field the store reports, in its order
    assert stats["videos"] == 2 and stats["frames"] == 5
    assert read_summary(uri, WRITERS) == stats


def test_there_is_no_summary_while_a_store_holds_the_catalog(catalog):
    uri, _ = catalog
    with open_store(uri) as store:
        assert not summary_path(uri).exists() and read_summary(uri, WRITERS) is None
        add(store, "vid02", 4)
    assert read_summary(uri, WRITERS)["frames"] == 9  # written again as it closed, with the new counts


def test_a_store_killed_while_it_held_the_catalog_leaves_no_summary(tmp_path):
    uri = str(tmp_path / "milvus.db")
    writer = subprocess.run([sys.executable, "-c", textwrap.dedent(f"""
        import os, signal
        from indexer.lite_summary import summary_path
        from tests.indexer.test_lite_summary import add, open_store
        with open_store({uri!r}) as store:
            add(store, "vid00", 2)
        assert summary_path({uri!r}).exists()
        add(open_store({uri!r}), "vid01", 3)
        os.kill(os.getpid(), signal.SIGKILL)
    """)], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=300)
    assert writer.returncode == -signal.SIGKILL
    assert read_summary(uri, WRITERS) is None
    with open_store(uri) as store:  # Milvus Lite lets one process hold a catalog: the killed one, until it died
        assert store.count_frames() == 5


def test_a_change_made_around_reelbase_makes_the_summary_unused(catalog):
    uri, stats = catalog
    client = MilvusClient(uri)  # pymilvus itself: nothing removes the summary
    client.delete("videos", ids=["vid00"])
    client.close()
    assert summary_path(uri).exists() and read_summary(uri, WRITERS) is None
    with open_store(uri) as store:
        assert store.stats() == {**stats, "videos": 1, "videos_by_source": {"generated": 0, "ingested": 1}}


def test_a_file_rewritten_with_its_size_and_mtime_kept_makes_the_summary_unused(catalog):
    """A restored file, say: its size and mtime can be put back, its ctime cannot."""
    uri, stats = catalog
    file = next(p for p in sorted(Path(uri).rglob("*")) if p.is_file() and p.stat().st_size)
    before = file.stat()
    time.sleep(0.05)  # past the file system's timestamp granularity
    file.write_bytes(file.read_bytes())
    os.utime(file, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = file.stat()
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    assert after.st_ctime_ns != before.st_ctime_ns
    assert read_summary(uri, WRITERS) is None


def test_a_summary_is_used_only_for_the_models_fields_and_milvus_lite_it_was_counted_with(catalog):
    uri, stats = catalog
    kept = summary_path(uri).read_text()
    assert read_summary(uri, ("another-clip", None)) is None
    assert read_summary(uri, (MODEL, ("a-temporal-model", 8))) is None  # windows count only for their model
    edit_summary(uri, lambda s: s["opened_for"].update(milvus_lite="0.1.0"))  # its `server` would be stale
    assert read_summary(uri, WRITERS) is None
    summary_path(uri).write_text(kept)
    edit_summary(uri, lambda s: s["stats"].pop("windows"))  # written by a reelbase that reported other fields
    assert read_summary(uri, WRITERS) is None
    summary_path(uri).write_text(kept)
    assert read_summary(uri, WRITERS) == stats
