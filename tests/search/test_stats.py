"""The service's `stats` over a Milvus Lite catalog: read from the summary its last holder left beside it (no catalog
opened) while that still describes it, and the new numbers after every way of writing the catalog."""

import json

import pytest
from pymilvus import MilvusClient
from safetensors.torch import save_file

from generator.video import write_mp4
from generator.world import FPS, sample_clips
from indexer.lite_summary import summary_path
from indexer.milvus import ModelMismatch
from indexer.models import model_identity, random_clip
from search.service import Reelbase
from search.settings import Settings


def service(data, **settings) -> Reelbase:
    return Reelbase(Settings(data_dir=data, device="cpu", **settings))


def stats_kept(data, **settings) -> dict:
    """The stats as `reelbase stats` gives them, which must come from the summary: the catalog stays closed."""
    s = service(data, **settings)
    stats = s.stats()
    assert "store" not in s.__dict__, "stats opened the catalog: the summary was not used"
    return stats


def stats_counted(data, **settings) -> dict:
    """The stats counted in the opened catalog (which leaves the summary again as it closes)."""
    with service(data, **settings) as s:
        _ = s.store
        return s.stats()


def clips(folder, seed: int, n: int) -> list:
    return [write_mp4(folder / f"clip{seed}-{i}.mp4", c.frames, FPS) for i, c in enumerate(sample_clips(seed, 0, n))]


@pytest.fixture
def library(tmp_path):
    """A data folder with three world clips ingested and the indexes rebuilt, as `reelbase ingest` leaves it."""
    data = tmp_path / "data"
    with service(data) as s:
        assert len(s.library.ingest(clips(tmp_path, 81, 3)).added) == 3
        s.library.optimize()
    return data


def test_stats_read_from_the_summary_are_those_counted_in_the_catalog(library):
    kept = stats_kept(library)
    assert kept["videos"] == 3 and kept["videos_by_source"] == {"generated": 0, "ingested": 3}
    assert kept["frames"] == 15 and kept["windows"] == 3 and kept["library_files"] == 3
    assert json.dumps(kept) == json.dumps(stats_counted(library))  # the same fields, in the same order


def test_an_ingest_a_generated_clip_and_a_delete_each_show_in_the_next_stats(library, tmp_path):
    with service(library) as s:
        s.library.ingest(clips(tmp_path, 82, 1))
    assert stats_kept(library)["videos_by_source"] == {"generated": 0, "ingested": 4}

    clip = sample_clips(83, 0, 1)[0]
    with service(library) as s:
        made = s.generation.add_clip(clip.frames, FPS, clip.caption, {})
    kept = stats_kept(library)
    assert kept["videos_by_source"] == {"generated": 1, "ingested": 4} and kept["prompts"] == 1

    with service(library) as s:
        s.library.delete(made.video_id)
    kept = stats_kept(library)
    assert kept["videos_by_source"] == {"generated": 0, "ingested": 4} and kept["prompts"] == 0
    assert kept == stats_counted(library)


def test_a_repair_shows_in_the_next_stats(library):
    with service(library) as s:
        s.store._write_frames([("c" * 32, [0, 1], [0.0, 0.5], s.encoder.encode_images(
            sample_clips(84, 0, 1)[0].frames[:2]))])  # an add that died before its video row
    assert stats_kept(library)["frames"] == 17
    with service(library) as s:
        assert s.maintenance.repair()["orphaned_vectors"] == 1
    assert stats_kept(library)["frames"] == 15 == stats_counted(library)["frames"]


def test_a_reindex_under_another_model_shows_in_the_next_stats_and_the_old_model_is_refused(library, tmp_path):
    other = tmp_path / "other.safetensors"  # the same architecture, other weights: a retrained model
    save_file({k: v.contiguous() for k, v in random_clip("reelbase-tiny").model.state_dict().items()}, str(other))
    spec = f"reelbase-tiny:{other}"
    with service(library, clip_model=spec) as s:
        assert s.maintenance.reindex()["reindexed"] == 3
    kept = stats_kept(library, clip_model=spec)
    assert kept["model"] == model_identity(spec) and kept["videos"] == 3 and kept["windows"] == 0
    with pytest.raises(ModelMismatch):  # not the old model's stats from a summary: the catalog is opened
        service(library).stats()


def test_a_summary_that_no_longer_matches_the_catalog_is_not_used(library):
    """A summary is trusted while it matches: one made to say 999 videos is shown. Once the catalog changes in a
    way reelbase did not see (pymilvus itself here), the catalog is counted instead."""
    path = summary_path(str(library / "milvus.db"))
    summary = json.loads(path.read_text())
    summary["stats"]["videos"] = 999
    path.write_text(json.dumps(summary))
    assert stats_kept(library)["videos"] == 999

    client = MilvusClient(str(library / "milvus.db"))
    client.delete("videos", ids=[client.query("videos", limit=1, output_fields=["video_id"])[0]["video_id"]])
    client.close()
    s = service(library)
    assert s.stats()["videos"] == 2 and "store" in s.__dict__
    s.close()
