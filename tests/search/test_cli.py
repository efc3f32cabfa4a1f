"""The `reelbase` command line, run as a user runs it: a subprocess with REELBASE_ settings."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests import fixtures

ROOT = Path(__file__).parents[2]


def reelbase(*args, data_dir: Path, check=True) -> subprocess.CompletedProcess:
    env = {**os.environ, "REELBASE_DATA_DIR": str(data_dir), "REELBASE_DEVICE": "cpu"}
    result = subprocess.run([sys.executable, "-m", "search.cli", *args], env=env, cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    if check:
        assert result.returncode == 0, result.stderr
    return result


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    """A data folder with 10 world clips and one bad file ingested."""
    root = tmp_path_factory.mktemp("cli")
    fixtures.write_world_videos(root / "clips", 10, seed=21)
    fixtures.write_text_as_mp4(root / "clips" / "bad.mp4")
    data = root / "data"
    report = json.loads(reelbase("ingest", str(root / "clips"), "--json", data_dir=data).stdout)
    assert len(report["added"]) == 10 and report["failed"][0]["path"].endswith("bad.mp4")
    return root, data


def test_search_json_hits_carry_the_video_record_and_file_name(library):
    root, data = library
    caption = json.loads((root / "clips" / "00003.json").read_text())["caption"]
    hits = json.loads(reelbase("search", caption, "--top-k", "3", "--json", data_dir=data).stdout)
    assert 1 <= len(hits) <= 3
    assert {"score", "best_t", "frames", "video"} <= set(hits[0])
    assert hits[0]["video"]["source"] == "ingested" and hits[0]["video"]["meta"]["original_name"].endswith(".mp4")
    assert "00003.mp4" in [h["video"]["meta"]["original_name"] for h in hits]
    assert all(0 <= f["t"] <= 2.0 for h in hits for f in h["frames"])


def test_search_text_output_and_stats(library):
    _, data = library
    out = reelbase("search", "a red ball", data_dir=data).stdout
    assert " 1. " in out and "best at" in out
    stats = json.loads(reelbase("stats", "--json", data_dir=data).stdout)
    assert stats["videos"] == 10 and stats["frames"] == 50 and stats["model"] == "reelbase-tiny"
    assert stats["library_files"] == 10 and stats["library_bytes"] > 0


def test_reingest_reports_everything_present(library):
    root, data = library
    report = json.loads(reelbase("ingest", str(root / "clips"), "--json", data_dir=data).stdout)
    assert report["added"] == [] and len(report["present"]) == 10


def test_errors_are_one_clear_line(tmp_path):
    result = reelbase("ingest", str(tmp_path / "nowhere"), data_dir=tmp_path / "d", check=False)
    assert result.returncode == 2 and "no such file or folder" in result.stderr
    assert "Traceback" not in result.stderr
    env_model = {**os.environ, "REELBASE_DATA_DIR": str(tmp_path / "d"), "REELBASE_CLIP_MODEL": "nope"}
    result = subprocess.run([sys.executable, "-m", "search.cli", "search", "x"], env=env_model, cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "unknown CLIP model spec 'nope'" in result.stderr


def test_another_model_on_the_same_store_is_refused(library, tmp_path):
    _, data = library
    weights = tmp_path / "other.safetensors"
    weights.write_bytes((ROOT / "indexer" / "weights" / "reelbase-tiny.safetensors").read_bytes())
    env = {**os.environ, "REELBASE_DATA_DIR": str(data), "REELBASE_CLIP_MODEL": f"reelbase-tiny:{weights}"}
    result = subprocess.run([sys.executable, "-m", "search.cli", "search", "x"], env=env, cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "written by embedding model 'reelbase-tiny'" in result.stderr


def test_demo_builds_a_library_and_searches_it(tmp_path):
    out = reelbase("demo", "--clips", "8", data_dir=tmp_path / "demo").stdout
    assert "added 8 videos" in out and "searching: 'a red ball'" in out
    assert (tmp_path / "demo" / "library").is_dir()


def test_a_lite_file_held_by_another_process_is_reported_clearly(library):
    from indexer.store import VideoStore

    _, data = library
    with VideoStore(str(data / "milvus.db"), model="reelbase-tiny", dim=256):
        result = reelbase("stats", data_dir=data, check=False)
    assert result.returncode == 2 and "milvus.db" in result.stderr and "Traceback" not in result.stderr
    print(result.stderr)


def test_generate_writes_a_playable_mp4_and_its_record(tmp_path):
    import decord

    out = tmp_path / "clip.mp4"
    result = reelbase("generate", "a red ball moving right on black", "--seed", "1", "--steps", "3",
                      "--frames", "16", "--out", str(out), data_dir=tmp_path / "d")
    assert "wrote" in result.stdout and decord.VideoReader(str(out)).__len__() == 16
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["seed"] == 1 and record["steps"] == 3 and record["parsed_prompt"]["scene"] == "on black"
    warned = reelbase("generate", "a dragon over a castle", "--steps", "1", "--out", str(tmp_path / "d.mp4"),
                      data_dir=tmp_path / "d")
    assert "warning: the model does not know the word(s) 'dragon'" in warned.stderr
