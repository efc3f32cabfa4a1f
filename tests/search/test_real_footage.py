"""Real footage through the command line, as a new user meets reelbase: one folder of videos of every
size, codec, container and length (tests/footage.py), with things in it that are not files."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.footage import CORPUS, LONG, write_corpus, write_special_files

ROOT = Path(__file__).resolve().parents[2]


def reelbase(*args, data: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "REELBASE_DATA_DIR": str(data), "REELBASE_DEVICE": "cpu",
           "REELBASE_API_URL": "http://127.0.0.1:9"}
    return subprocess.run([sys.executable, "-m", "search.cli", *args], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=600)


@pytest.fixture(scope="module")
def ingested(tmp_path_factory):
    """(data folder, footage folder, the first ingest's report) after one `reelbase ingest` of the folder."""
    root = tmp_path_factory.mktemp("real-footage")
    folder = root / "real"
    write_corpus(folder)
    write_special_files(folder)
    (folder / "notes.txt").write_text("shot list")
    result = reelbase("ingest", str(folder), "--json", data=root / "data")
    assert result.returncode == 0, result.stderr
    return root / "data", folder, json.loads(result.stdout)


def test_one_run_takes_every_video_of_every_kind_exactly_once(ingested):
    data, folder, report = ingested
    assert report["failed"] == [] and len(report["added"]) == len(CORPUS) + 1 and report["ignored"] == 1
    reasons = {Path(s["path"]).name: s["reason"] for s in report["skipped"]}
    assert reasons == {"pipe.mp4": "not a regular file (a FIFO)", "loop.mp4": "symbolic link loop",
                       "dangling.mp4": f"dangling symbolic link (to {folder / 'gone' / 'nowhere.mp4'})"}
    stats = json.loads(reelbase("stats", "--json", data=data).stdout)
    assert stats["videos"] == stats["library_files"] == len(CORPUS) + 1
    again = reelbase("ingest", str(folder), "--json", data=data)
    assert again.returncode == 0 and json.loads(again.stdout)["added"] == []
    assert len(json.loads(again.stdout)["present"]) == len(CORPUS) + 1


def test_each_video_keeps_its_own_size_and_length(ingested):
    data, _, _ = ingested
    listing = json.loads(reelbase("search", "a disc", "--top-k", "100", "--json", data=data).stdout)
    by_name = {h["video"]["meta"]["original_name"]: h["video"] for h in listing}
    assert set(by_name) == {f.name for f in CORPUS + (LONG,)}
    for item in CORPUS + (LONG,):
        video = by_name[item.name]
        shown = (item.height, item.width) if item.rotate % 180 else (item.width, item.height)  # as players show it
        assert (video["width"], video["height"]) == shown, item.name
        assert video["duration_s"] == pytest.approx(item.frames / item.fps, abs=0.2), item.name
    long = by_name[LONG.name]
    best = [h for h in listing if h["video"]["video_id"] == long["video_id"]][0]
    assert 0 <= best["best_t"] <= long["duration_s"]


def test_pages_of_a_real_library_are_full_and_consecutive(ingested):
    data, _, _ = ingested
    pages = [json.loads(reelbase("search", "a red disc", "--top-k", "4", "--offset", str(offset), "--json",
                                 data=data).stdout) for offset in (0, 4, 8, 12)]
    ids = [h["video"]["video_id"] for page in pages for h in page]
    assert [len(p) for p in pages] == [4, 4, 4, len(CORPUS) + 1 - 12] and len(set(ids)) == len(ids)


def test_nothing_added_is_a_failed_run(ingested, tmp_path):
    data, folder, _ = ingested
    result = reelbase("ingest", "/dev/zero", data=data)
    assert result.returncode == 1 and "/dev/zero: not a regular file (a character device)" in result.stdout
    assert "nothing asked for could be added" in result.stderr
    only_links = tmp_path / "links"
    write_special_files(only_links)
    assert reelbase("ingest", str(only_links), data=data).returncode == 1
