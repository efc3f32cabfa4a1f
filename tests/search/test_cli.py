"""The `reelbase` command line, run as a user runs it: a subprocess with REELBASE_ settings."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from indexer.models import model_identity
from tests import fixtures

ROOT = Path(__file__).parents[2]


def reelbase(*args, data_dir: Path, check=True) -> subprocess.CompletedProcess:
    env = {**os.environ, "REELBASE_DATA_DIR": str(data_dir), "REELBASE_DEVICE": "cpu"}
    result = subprocess.run([sys.executable, "-m", "search.cli", *args], env=env, cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def in_another_process(code: str) -> None:
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=300)


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


def test_search_names_the_words_the_model_does_not_know_on_stderr(library):
    _, data = library
    result = reelbase("search", "a rabbit in a meadow", "--json", data_dir=data)
    assert json.loads(result.stdout), "the search still ranks by the words the model knows"
    note = [line for line in result.stderr.splitlines() if line.startswith("reelbase: note:")]
    assert len(note) == 1 and "'rabbit', 'meadow'" in note[0] and "synthetic world" in note[0]
    assert "REELBASE_CLIP_MODEL=ARCH:/path/to/weights" in note[0]
    assert "note:" not in reelbase("search", "a red ball at sunset", data_dir=data).stderr


def test_search_text_output_and_stats(library):
    _, data = library
    out = reelbase("search", "a red ball", data_dir=data).stdout
    assert " 1. " in out and "best at" in out
    stats = json.loads(reelbase("stats", "--json", data_dir=data).stdout)
    assert stats["videos"] == 10 and stats["frames"] == 50 and stats["model"] == model_identity("reelbase-tiny")
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


def test_another_model_on_the_same_store_is_refused_and_the_same_one_elsewhere_is_not(library, tmp_path):
    _, data = library
    builtin = ROOT / "indexer" / "weights" / "reelbase-tiny.safetensors"
    same, retrained = tmp_path / "same.safetensors", tmp_path / "retrained.safetensors"
    same.write_bytes(builtin.read_bytes())  # the built-in weights, moved (as into a container's /models)
    in_another_process(f"""
from safetensors.torch import save_file
from indexer.models import random_clip
state = random_clip("reelbase-tiny").model.state_dict()
save_file({{k: v.contiguous() for k, v in state.items()}}, {str(retrained)!r})
""")  # the same architecture and name, other weights: what `reelbase train clip` makes

    def search_with(weights):
        env = {**os.environ, "REELBASE_DATA_DIR": str(data), "REELBASE_CLIP_MODEL": f"reelbase-tiny:{weights}"}
        return subprocess.run([sys.executable, "-m", "search.cli", "search", "a ball"], env=env, cwd=ROOT,
                              capture_output=True, text=True, timeout=120)

    assert search_with(same).returncode == 0
    refused = search_with(retrained)
    assert refused.returncode == 2 and f"written by embedding model '{model_identity('reelbase-tiny')}'" \
        in refused.stderr


def test_optimize_rebuilds_the_indexes_and_search_goes_on(library):
    root, data = library
    assert "rebuilt the search indexes over 50 frames" in reelbase("optimize", data_dir=data).stdout
    caption = json.loads((root / "clips" / "00004.json").read_text())["caption"]
    hits = json.loads(reelbase("search", caption, "--top-k", "10", "--json", data_dir=data).stdout)
    assert "00004.mp4" in [h["video"]["meta"]["original_name"] for h in hits]
    again = reelbase("ingest", str(root / "clips"), data_dir=data)  # nothing new: no rebuild
    assert "rebuilt" not in again.stderr


def test_an_ingest_that_grows_the_library_rebuilds_its_indexes(tmp_path):
    fixtures.write_world_videos(tmp_path / "clips", 2, seed=5)
    result = reelbase("ingest", str(tmp_path / "clips"), data_dir=tmp_path / "data")
    assert "added 2 videos" in result.stdout and "rebuilt the search indexes" in result.stderr


def test_demo_generates_ingests_searches_and_scans_and_adds_nothing_the_second_time(tmp_path):
    out = reelbase("demo", "--clips", "8", "--generate", "2", "--steps", "2", data_dir=tmp_path / "demo").stdout
    assert "generating 2 clips" in out and "added 9 videos" in out  # 8 world clips and a copy of one
    assert "text search 'a red ball'" in out and "clips similar to" in out
    assert "duplicate scan: 1 group of" in out and "the library holds 11 videos" in out
    assert "reelbase ui" in out
    again = reelbase("demo", "--clips", "8", "--generate", "2", "--steps", "2", data_dir=tmp_path / "demo").stdout
    assert again.count("(in the library already)") == 2 and "added 0 videos" in again  # a second run adds nothing
    assert "duplicate scan: 1 group of" in again and "the library holds 11 videos" in again


def test_similar_filters_and_image_search(library, tmp_path):
    from PIL import Image

    from indexer.reader import read_frame_at

    root, data = library
    hits = json.loads(reelbase("search", "a ball", "--json", data_dir=data).stdout)
    video_id = hits[0]["video"]["video_id"]
    similar = json.loads(reelbase("similar", video_id, "--top-k", "3", "--json", data_dir=data).stdout)
    assert len(similar) == 3 and video_id not in [s["video"]["video_id"] for s in similar]
    assert json.loads(reelbase("search", "a ball", "--source", "generated", "--json", data_dir=data).stdout) == []
    ingested = json.loads(reelbase("search", "a ball", "--source", "ingested", "--json", data_dir=data).stdout)
    assert ingested and all(h["video"]["source"] == "ingested" for h in ingested)
    frame, _ = read_frame_at(data / "library" / f"{video_id}.mp4", 1.0)
    Image.fromarray(frame).save(tmp_path / "frame.png")
    by_image = json.loads(reelbase("search", "--image", str(tmp_path / "frame.png"), "--json", data_dir=data).stdout)
    assert by_image[0]["video"]["video_id"] == video_id
    result = reelbase("similar", "f" * 32, data_dir=data, check=False)
    assert result.returncode == 2 and "no video" in result.stderr


def test_ids_are_taken_by_unique_prefix(library):
    _, data = library
    ids = [h["video"]["video_id"] for h in json.loads(reelbase("search", "a ball", "--json", data_dir=data).stdout)]
    video_id = ids[0]
    full = json.loads(reelbase("similar", video_id, "--top-k", "3", "--json", data_dir=data).stdout)
    assert json.loads(reelbase("similar", video_id[:8], "--top-k", "3", "--json", data_dir=data).stdout) == full
    assert reelbase("dups", video_id[:6].upper(), "--json", data_dir=data).returncode == 0
    free = next(p for p in (f"{i:04x}" for i in range(1 << 16)) if not any(v.startswith(p) for v in ids))
    for bad, why in ((free, "no video"), ("abc", "too short"), ("xyz1", "not a video id"),
                     (video_id + "0", "not a video id")):
        for command in ("similar", "dups"):
            result = reelbase(command, bad, data_dir=data, check=False)
            assert result.returncode == 2 and why in result.stderr and "Traceback" not in result.stderr


TWINS = ["abcd" + "0" * 28, "abcd" + "1" * 28, "abce" + "0" * 28]


@pytest.fixture(scope="module")
def twins(tmp_path_factory):
    """A data folder whose catalog holds three videos with ids sharing prefixes (rows only, no files)."""
    data = tmp_path_factory.mktemp("twins")
    in_another_process(f"""
import numpy as np
from indexer.identity import model_identity
from indexer.records import VideoRecord
from indexer.store import VideoStore
with VideoStore({str(data / "milvus.db")!r}, clip_model=model_identity("reelbase-tiny"), dim=256) as store:
    for n, video_id in enumerate({TWINS!r}):
        store.add_video(VideoRecord(video_id, video_id + ".mp4", "ingested", meta={{"caption": f"twin {{n}}"}}),
                        [0], [0.0], np.eye(256, dtype=np.float32)[n:n + 1])
""")
    return data


def test_an_ambiguous_id_prefix_lists_the_videos_it_starts(twins):
    for command in ("similar", "dups"):
        result = reelbase(command, "abcd", data_dir=twins, check=False)
        assert result.returncode == 2 and "ambiguous" in result.stderr and "Traceback" not in result.stderr
        assert all(s in result.stderr for s in [TWINS[0], "twin 0", TWINS[1], "twin 1"])
        assert TWINS[2] not in result.stderr
    similar = json.loads(reelbase("similar", "ABCD1", "--json", data_dir=twins).stdout)
    assert {s["video"]["video_id"] for s in similar} == {TWINS[0], TWINS[2]}


def modules_after(*args, data_dir: Path) -> set[str]:
    """The top-level modules a `reelbase ARGS` process has imported when it ends (it must succeed)."""
    code = ("import sys; from search.cli import main; rc = main(sys.argv[1:]); "
            "print('MODULES', *sorted(sys.modules)); sys.exit(rc)")
    env = {**os.environ, "REELBASE_DATA_DIR": str(data_dir), "REELBASE_DEVICE": "cpu",
           "REELBASE_API_URL": "http://127.0.0.1:9"}  # no API answers there (repair checks)
    result = subprocess.run([sys.executable, "-c", code, *args], env=env, cwd=ROOT, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    return {m.split(".")[0] for m in result.stdout.rsplit("MODULES", 1)[1].split()}


def test_stats_and_id_look_ups_load_no_model(twins):
    for args in (["stats"], ["similar", "abce"], ["repair", "--json"]):
        assert not {"torch", "open_clip"} & modules_after(*args, data_dir=twins), args
    assert "torch" in modules_after("search", "a ball", data_dir=twins)  # where a model is needed, it is seen


def test_stats_of_a_lite_catalog_no_process_holds_open_no_milvus_and_say_the_same(twins):
    from indexer.lite_summary import summary_path

    for json_flag in ([], ["--json"]):
        summary_path(str(twins / "milvus.db")).unlink(missing_ok=True)  # this stats counts in the catalog
        counted = reelbase("stats", *json_flag, data_dir=twins).stdout  # and leaves the summary as it closes
        assert reelbase("stats", *json_flag, data_dir=twins).stdout == counted
    assert json.loads(counted)["videos"] == 3
    assert "pymilvus" not in modules_after("stats", data_dir=twins)


def test_dups_json_groups_records_and_frame_pairs(tmp_path):
    import numpy as np

    from generator.video import write_mp4
    from generator.world import FPS, sample_clips

    clips = sample_clips(55, 0, 3)
    folder = tmp_path / "in"
    folder.mkdir()
    for i, clip in enumerate(clips):
        write_mp4(folder / f"clip{i}.mp4", clip.frames, FPS)
    copy = np.clip(clips[1].frames.astype(np.int16) + 35, 0, 255).astype(np.uint8)[2:]  # brighter, trimmed
    write_mp4(folder / "copy.mp4", copy, FPS)
    reelbase("ingest", str(tmp_path / "in"), data_dir=tmp_path / "d")
    groups = json.loads(reelbase("dups", "--json", data_dir=tmp_path / "d").stdout)
    assert len(groups) == 1
    names = sorted(v["meta"]["original_name"] for v in groups[0]["videos"])
    assert names == ["clip1.mp4", "copy.mp4"]
    (link,) = groups[0]["links"]
    copy_id = next(v["video_id"] for v in groups[0]["videos"] if v["meta"]["original_name"] == "copy.mp4")
    sign = 1 if link["a"] == copy_id else -1  # t in the original = t in the copy + 2 frames
    assert link["pairs"] and all(abs(sign * (p["t_b"] - p["t_a"]) - 2 / FPS) < 1e-6 for p in link["pairs"])
    assert "1 group of" in reelbase("dups", data_dir=tmp_path / "d").stdout
    assert reelbase("dups", "--threshold", "2", data_dir=tmp_path / "d", check=False).returncode == 2


def test_generate_into_the_library_then_reindex(tmp_path):
    data = tmp_path / "d"
    record = json.loads(reelbase("generate", "a yellow ball falling at sunset", "--steps", "2", "--library",
                                 "--json", data_dir=data).stdout)
    assert record["source"] == "generated" and record["meta"]["job"]["prompt"] == "a yellow ball falling at sunset"
    found = json.loads(reelbase("search", "yellow ball falling", "--prompts", "--json", data_dir=data).stdout)
    assert found[0]["video"]["video_id"] == record["video_id"]
    result = json.loads(reelbase("reindex", "--json", data_dir=data).stdout)
    assert result["reindexed"] == 1 and result["failed"] == []


def test_repair_removes_what_interrupted_work_left_and_reports_missing_files(tmp_path):
    fixtures.write_world_videos(tmp_path / "clips", 3, seed=24)
    data = tmp_path / "d"
    ids = json.loads(reelbase("ingest", str(tmp_path / "clips"), "--json", data_dir=data).stdout)["added"]
    library = data / "library"
    (library / f"{ids[0]}.mp4").unlink()  # a file gone from under the catalog
    old, new = library / ("a" * 32 + ".mp4"), library / ("b" * 32 + ".mp4")  # saves that died before their row
    kept = library / ("d" * 32 + ".mp4")  # a re-index could not read it: its record waits in reindex-failed.json
    for stray in (old, new, kept):
        stray.write_bytes(b"half a clip")
    for stray in (old, kept):
        os.utime(stray, (1e9, 1e9))
    (data / "reindex-failed.json").write_text(json.dumps([{"video_id": "d" * 32, "uri": kept.name,
                                                           "source": "ingested"}]))
    in_another_process(f"""
import numpy as np
from indexer.models import model_identity
from indexer.store import VideoStore
with VideoStore({str(data / "milvus.db")!r}, clip_model=model_identity("reelbase-tiny"), dim=256) as store:
    store._write_frames([("c" * 32, [0, 1], [0.0, 0.5], np.eye(256, dtype=np.float32)[:2])])  # died before its row
    assert store.orphan_frame_video_ids() == {{"c" * 32}}
""")  # Milvus Lite lets one process hold the file, and keeps it while this one lives
    result = json.loads(reelbase("repair", "--json", data_dir=data).stdout)
    assert result == {"orphaned_vectors": 1, "stray_files": sorted([old.name, new.name]), "stray_fingerprints": [],
                      "stray_files_left": [], "missing_files": [ids[0]]}
    assert kept.exists() and not old.exists() and not new.exists()  # the CLI holds the library: any age goes
    assert json.loads(reelbase("stats", "--json", data_dir=data).stdout)["videos"] == 3
    text = reelbase("repair", data_dir=data).stdout
    assert "removed the vectors of 0 videos" in text and f"missing file: video {ids[0]}" in text
    (data / "reindex-records.json").write_text("[]")  # a re-index that died half-way
    refused = reelbase("repair", data_dir=data, check=False)
    assert refused.returncode == 2 and "run `reelbase reindex` first" in refused.stderr and kept.exists()


def test_a_lite_file_held_by_another_process_is_reported_clearly(library):
    from indexer.store import VideoStore

    _, data = library
    with VideoStore(str(data / "milvus.db"), clip_model=model_identity("reelbase-tiny"), dim=256):
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
    assert record["guidance"] == 4.0  # the built-in model's own for text, as none was asked for
    guided = reelbase("generate", "a red ball", "--steps", "1", "--guidance", "2.5", "--out", str(tmp_path / "g.mp4"),
                      data_dir=tmp_path / "d")
    assert guided.returncode == 0 and json.loads((tmp_path / "g.json").read_text())["guidance"] == 2.5
    assert record["candidates"] == 8  # the built-in model searches 8 noises for the motion a prompt asks for
    plain = reelbase("generate", "a red ball moving left", "--steps", "1", "--candidates", "1",
                     "--out", str(tmp_path / "p.mp4"), data_dir=tmp_path / "d")
    assert plain.returncode == 0 and json.loads((tmp_path / "p.json").read_text())["candidates"] == 1
    warned = reelbase("generate", "a dragon over a castle", "--steps", "1", "--out", str(tmp_path / "d.mp4"),
                      data_dir=tmp_path / "d")
    assert "warning: the model does not know the word(s) 'dragon'" in warned.stderr


def test_train_generator_takes_the_learning_rate_object_weight_contrast_upstream_share_and_prompt_terms(tmp_path):
    run = tmp_path / "run"
    trained = reelbase("train", "generator", "--steps", "2", "--batch", "4", "--lr", "1e-4", "--object-weight", "4",
                       "--contrast", "0.5", "--contrast-from", "0.75", "--upstream", "0.75",
                       "--upstream-continued", "0.25", "--frame-prompt", "--spacetime-prompt",
                       "--prompt-terms-lr", "1e-3", "--device", "cpu", "--no-export", "--run-dir", str(run),
                       data_dir=tmp_path)
    result = json.loads(trained.stdout)
    assert result["config"]["lr"] == 1e-4 and result["config"]["object_weight"] == 4 and result["steps"] == 2
    assert result["config"]["contrast"] == 0.5 and result["config"]["contrast_from"] == 0.75
    assert result["config"]["upstream"] == 0.75
    assert result["config"]["upstream_continued"] == 0.25
    assert result["config"]["frame_prompt"] is True and result["config"]["spacetime_prompt"] is True
    assert result["config"]["prompt_terms_lr"] == 1e-3
    assert json.loads((run / "result.json").read_text())["config"]["lr"] == 1e-4


def test_train_generator_takes_minutes_or_steps_and_a_time_shift(tmp_path):
    from generator.dit import load_checkpoint

    run = tmp_path / "run"
    trained = reelbase("train", "generator", "--minutes", "0.01", "--batch", "1", "--time-shift", "3",
                       "--device", "cpu", "--no-export", "--run-dir", str(run), data_dir=tmp_path)
    result = json.loads(trained.stdout)
    assert result["config"]["minutes"] == 0.01 and result["config"]["time_shift"] == 3.0 and result["steps"] >= 1
    _, config, _ = load_checkpoint(run / "ema.safetensors")
    assert config.time_shift == 3.0
    both = reelbase("train", "generator", "--minutes", "1", "--steps", "5", "--no-export", "--run-dir", str(run),
                    data_dir=tmp_path, check=False)
    assert both.returncode != 0 and "give --steps or --minutes, not both" in both.stderr


def test_train_takes_a_config_by_name_for_the_autoencoder_and_names_the_choices_for_an_unknown_one(tmp_path):
    from generator.autoencoder import load_autoencoder

    trained = reelbase("train", "autoencoder", "--config", "fine", "--steps", "1", "--batch", "2", "--device", "cpu",
                       "--no-export", "--run-dir", str(tmp_path / "run"), data_dir=tmp_path)
    assert json.loads(trained.stdout)["steps"] == 1
    ae = load_autoencoder(tmp_path / "run" / "autoencoder.safetensors")[0]
    assert ae.config.widths == (32, 64) and ae.config.latent_channels == 4  # 16 x 16 x 4 latents
    for what in ("autoencoder", "generator"):
        unknown = reelbase("train", what, "--config", "huge", "--steps", "1", "--no-export",
                           "--run-dir", str(tmp_path / what), data_dir=tmp_path, check=False)
        assert unknown.returncode != 0 and "fine" in unknown.stderr
        assert f"reelbase train {what}: no config 'huge'; give one of tiny" in unknown.stderr


def test_a_run_of_another_config_has_its_own_folder_and_an_init_exports_only_as_the_config_it_fits(tmp_path):
    from generator.autoencoder import AE_CONFIGS, FrameAutoencoder, save_autoencoder
    from search.cli.train import default_run_dir, same_latents

    assert default_run_dir("autoencoder", "tiny", False) == "runs/autoencoder"
    assert default_run_dir("generator", "fine", False) == "runs/generator-fine"
    assert default_run_dir("clip", "tiny", True) == "runs/temporal"
    assert default_run_dir("clip", "fine", False) == "runs/clip"
    save_autoencoder(tmp_path / "fine.safetensors", FrameAutoencoder(AE_CONFIGS["fine"]))
    same_latents(str(tmp_path / "fine.safetensors"), AE_CONFIGS["fine"], "fine")
    with pytest.raises(SystemExit, match="makes 4-channel latents of 4 px cells, not those of the config 'tiny'"):
        same_latents(str(tmp_path / "fine.safetensors"), AE_CONFIGS["tiny"], "tiny")


def test_train_autoencoder_fine_tunes_the_decoder_of_a_trained_one(tmp_path):
    from generator.autoencoder import AE_CONFIGS, load_autoencoder, train_autoencoder

    train_autoencoder(tmp_path / "first", steps=1, batch=4, config=AE_CONFIGS["test"])
    first = tmp_path / "first" / "autoencoder.safetensors"
    trained = reelbase("train", "autoencoder", "--steps", "2", "--batch", "4", "--init", str(first), "--decoder-only",
                       "--lr", "1e-3", "--object-weight", "30", "--refine-blocks", "1", "--device", "cpu",
                       "--no-export", "--run-dir", str(tmp_path / "run"), data_dir=tmp_path)
    assert json.loads(trained.stdout)["decoder_only"] is True
    before, after = load_autoencoder(first)[0], load_autoencoder(tmp_path / "run" / "autoencoder.safetensors")[0]
    assert torch.equal(before.encoder[0].weight, after.encoder[0].weight) and after.config.object_weight == 30
    assert after.config.refine_blocks == 1
    assert not torch.equal(before.decoder[0].weight, after.decoder[0].weight)
