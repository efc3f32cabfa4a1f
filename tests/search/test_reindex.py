"""Re-indexing after a CLIP model change: records kept, a crash half-way resumed, unreadable files kept aside."""

import json

import pytest
from safetensors.torch import save_file

from generator.video import write_mp4
from generator.world import FPS, sample_clips
from indexer import maintenance
from indexer.models import model_identity, random_clip
from search.service import Reelbase
from search.settings import Settings


@pytest.fixture
def library(tmp_path):
    """A library of three world clips indexed with the built-in CLIP model, and another model's spec."""
    data = tmp_path / "data"
    service = Reelbase(Settings(data_dir=data, device="cpu"))
    paths = [write_mp4(tmp_path / f"clip{i}.mp4", c.frames, FPS) for i, c in enumerate(sample_clips(77, 0, 3))]
    report = service.library.ingest(paths)
    assert len(report.added) == 3
    before = {r.video_id: r for r in service.store.iter_videos()}
    service.close()
    other = tmp_path / "other.safetensors"  # the same architecture, other weights: a retrained model
    save_file({k: v.contiguous() for k, v in random_clip("reelbase-tiny").model.state_dict().items()}, str(other))
    return data, before, f"reelbase-tiny:{other}"


def test_a_model_change_reindex_that_dies_half_way_resumes_and_keeps_every_record(library, monkeypatch):
    data, before, other = library
    broken = sorted(before)[0]
    (data / "library" / before[broken].uri).write_bytes(b"not a video any more")

    def dies(*args, **kwargs):
        raise RuntimeError("killed during the drop")

    with monkeypatch.context() as m:
        m.setattr(maintenance, "drop_catalog", dies)
        with pytest.raises(RuntimeError, match="killed"):
            Reelbase(Settings(data_dir=data, device="cpu", clip_model=other)).maintenance.reindex()
    assert (data / "reindex-records.json").is_file()

    service = Reelbase(Settings(data_dir=data, device="cpu", clip_model=other))
    result = service.maintenance.reindex()
    assert result["reindexed"] == 2 and [f["video_id"] for f in result["failed"]] == [broken]
    assert result["model"] == model_identity(other) != model_identity("reelbase-tiny")
    after = {r.video_id: r for r in service.store.iter_videos()}
    assert set(after) == set(before) - {broken}
    assert all(after[v] == before[v] for v in after)  # records as they were: times, meta, names
    kept = json.loads((data / "reindex-failed.json").read_text())
    assert [r["video_id"] for r in kept] == [broken] and not (data / "reindex-records.json").exists()

    result = service.maintenance.reindex()  # the same model now: in place, and the kept record is tried again
    assert result["reindexed"] == 2 and [f["video_id"] for f in result["failed"]] == [broken]
    assert (data / "reindex-failed.json").is_file()  # still unreadable: still kept
    service.close()


def test_a_kept_record_comes_back_once_its_file_reads(library, tmp_path):
    data, before, other = library
    broken = sorted(before)[0]
    file = data / "library" / before[broken].uri
    good = file.read_bytes()
    file.write_bytes(b"truncated")
    service = Reelbase(Settings(data_dir=data, device="cpu", clip_model=other))
    assert service.maintenance.reindex()["reindexed"] == 2
    file.write_bytes(good)  # restored from a backup, say
    result = service.maintenance.reindex()
    assert result["reindexed"] == 3 and result["failed"] == []
    assert service.store.get_video(broken) == before[broken]
    assert not (data / "reindex-failed.json").exists()
    service.close()


def test_a_generated_clip_keeps_its_vectors_through_a_reindex(tmp_path):
    """Generated clips, ingested files and re-index go through one index writer, which embeds the file: the same
    clip gets the same vectors whichever way it came in (they came from the frames before encoding once)."""
    service = Reelbase(Settings(data_dir=tmp_path / "data", device="cpu"))
    clip = sample_clips(78, 0, 1)[0]
    record = service.generation.add_clip(clip.frames, FPS, clip.caption, {})
    made = service.store.video_embedding(record.video_id)
    assert service.maintenance.reindex()["reindexed"] == 1
    assert (service.store.video_embedding(record.video_id) == made).all()
    assert service.store.get_video(record.video_id) == record
    service.close()


def test_a_reindex_makes_the_windows_of_a_library_indexed_without_them(tmp_path):
    """A library indexed before its CLIP model had a temporal model matches single frames and says so; a re-index
    makes every video's windows, and text search then matches them."""
    data = tmp_path / "data"
    service = Reelbase(Settings(data_dir=data, device="cpu", temporal_model="none"))
    paths = [write_mp4(tmp_path / f"clip{i}.mp4", c.frames, FPS) for i, c in enumerate(sample_clips(79, 0, 2))]
    assert len(service.library.ingest(paths).added) == 2
    service.close()
    service = Reelbase(Settings(data_dir=data, device="cpu"))  # the built-in temporal model of reelbase-tiny
    assert not service.queries.matches_windows and "`reelbase reindex`" in service.queries.frames_notice
    assert all(f.end is None for h in service.queries.text("a ball") for f in h.frames)
    assert service.maintenance.reindex()["reindexed"] == 2
    assert service.queries.matches_windows and service.queries.frames_notice is None
    assert service.store.stats()["windows"] == 2  # a two-second clip is one window
    hits = service.queries.text("a ball")
    assert len(hits) == 2 and all(f.end is not None for h in hits for f in h.frames)
    service.close()
