"""Duplicate verification from the fingerprint thumbnails kept per video: a scan decodes no video file."""

import os
import shutil
import time

import numpy as np
import pytest

from generator.video import write_mp4
from generator.world import FPS, sample_clips
from indexer.fingerprint import fingerprint
from indexer.fingerprint_match import compare
from search import duplicates
from search.service import Reelbase
from search.settings import Settings


@pytest.fixture
def library(tmp_path):
    """An original world clip, a brightened and a trimmed copy of it, and two other clips, ingested."""
    original, *others = sample_clips(41, 0, 3)
    brighter = np.clip(original.frames.astype(np.int16) * 1.2 + 30, 0, 255).astype(np.uint8)
    clips = {"original": original.frames, "brighter": brighter, "trimmed": original.frames[3:],
             "other1": others[0].frames, "other2": others[1].frames}
    (tmp_path / "in").mkdir()
    paths = [write_mp4(tmp_path / "in" / f"{name}.mp4", frames, FPS) for name, frames in clips.items()]
    data = tmp_path / "data"
    with Reelbase(Settings(data_dir=data, device="cpu")) as service:
        report = service.library.ingest(paths)
        assert len(report.added) == 5, report.summary()
        ids = {p.stem: _id_of(service, p.name) for p in paths}
    return data, ids


def _id_of(service: Reelbase, name: str) -> str:
    (record,) = [r for r in service.store.iter_videos() if r.meta["original_name"] == name]
    return record.video_id


def _groups(service: Reelbase) -> list[list[str]]:
    return [[v.video_id for v in g.videos] for g in service.duplicates.groups()]


def _from_video_files(service: Reelbase) -> list[list[str]]:
    """The groups found with every fingerprint made from its video file, as before thumbnails were kept."""
    service.duplicates.fingerprints = duplicates.FingerprintCache(duplicates.read_for_fingerprint)
    return _groups(service)


def _spoil_video_files(data) -> None:
    """Overwrite every library file with zeros: decoding any of them now fails."""
    for path in (data / "library").iterdir():
        path.write_bytes(bytes(path.stat().st_size))


def test_a_scan_and_dups_of_a_video_open_no_video_file_and_find_the_same_groups(library):
    data, ids = library
    with Reelbase(Settings(data_dir=data, device="cpu")) as service:
        assert sorted(p.stem for p in service.folder.fingerprints.files()) == sorted(ids.values())
        expected = _from_video_files(service)
    copies = sorted(ids[k] for k in ("original", "brighter", "trimmed"))
    assert expected == [copies]
    _spoil_video_files(data)
    with Reelbase(Settings(data_dir=data, device="cpu")) as service:  # a fresh service: nothing in memory
        assert _groups(service) == expected
        hits = service.duplicates.of_video(ids["original"])
        assert sorted(h.video.video_id for h in hits) == sorted(ids[k] for k in ("brighter", "trimmed"))


def test_a_library_without_kept_fingerprints_still_works_and_fills_them_in(library):
    data, ids = library
    with Reelbase(Settings(data_dir=data, device="cpu")) as service:
        expected = _from_video_files(service)
    shutil.rmtree(data / "fingerprints")
    with Reelbase(Settings(data_dir=data, device="cpu")) as service:
        assert _groups(service) == expected  # made from the video files, once
        assert sorted(p.stem for p in service.folder.fingerprints.files()) == sorted(ids.values())
    _spoil_video_files(data)
    with Reelbase(Settings(data_dir=data, device="cpu")) as service:  # and used from then on
        assert _groups(service) == expected


def test_a_stale_or_damaged_fingerprint_file_is_made_again_from_the_video(library):
    data, ids = library
    path = data / "fingerprints" / f"{ids['brighter']}.npz"
    path.write_bytes(b"not an npz")
    with Reelbase(Settings(data_dir=data, device="cpu")) as service:
        assert service.folder.fingerprints.read(ids["brighter"]) is None
        hits = service.duplicates.of_video(ids["original"])
        assert ids["brighter"] in {h.video.video_id for h in hits}
        assert service.folder.fingerprints.read(ids["brighter"]) is not None


def test_reindex_writes_fingerprints_and_delete_removes_them(library):
    data, ids = library
    shutil.rmtree(data / "fingerprints")
    with Reelbase(Settings(data_dir=data, device="cpu")) as service:
        assert service.maintenance.reindex()["reindexed"] == 5
        assert sorted(p.stem for p in service.folder.fingerprints.files()) == sorted(ids.values())
        service.library.delete(ids["other1"])
        assert not service.folder.fingerprints.path(ids["other1"]).exists()
        assert sorted(p.stem for p in service.folder.fingerprints.files()) == sorted(
            v for k, v in ids.items() if k != "other1")


def test_repair_lists_every_stray_fingerprint_and_removes_those_old_enough(library):
    data, ids = library
    with Reelbase(Settings(data_dir=data, device="cpu")) as service:
        files = service.folder.fingerprints
        kept = files.read(ids["other2"])
        old, fresh = "a" * 32, "b" * 32  # ids no record names: a dead ingest's, and one being written now
        for video_id in (old, fresh):
            files.write(video_id, *kept)
        hour_ago = time.time() - 2 * 3600
        os.utime(files.path(old), (hour_ago, hour_ago))
        result = service.maintenance.repair()
        assert result["stray_fingerprints"] == [f"{old}.npz"] and result["stray_files_left"] == [f"{fresh}.npz"]
        assert not files.path(old).exists() and files.path(fresh).exists()
        assert all(files.path(v).exists() for v in ids.values())
        held = service.maintenance.repair(min_age_s=0)  # as when it holds the library
        assert held["stray_fingerprints"] == [f"{fresh}.npz"]
        assert not files.path(fresh).exists() and all(files.path(v).exists() for v in ids.values())


def test_a_generated_clip_keeps_its_fingerprint(tmp_path):
    (clip,) = sample_clips(43, 0, 1)
    with Reelbase(Settings(data_dir=tmp_path / "data", device="cpu")) as service:
        record = service.generation.add_clip(clip.frames, FPS, clip.caption, {})
        kept = service.folder.fingerprints.read(record.video_id)
        assert kept is not None and len(kept[1]) == len(clip.frames)  # 8 fps: every frame of the clip
        from_file = fingerprint(*duplicates.read_for_fingerprint(service.library.video_path(record.video_id)))
        assert compare(fingerprint(*kept), from_file).score > 0.95  # the raw frames, and the mp4 made of them
        service.generation.recover_clip(record.video_id)  # complete: nothing is removed
        assert service.folder.fingerprints.path(record.video_id).exists()
