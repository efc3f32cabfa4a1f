"""The temporal model: windows over a video, its files (found by the CLIP model they serve), and training on a
user's own captioned footage through `reelbase train clip --data DIR`, then motion search with it."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from generator import world
from generator.video import write_mp4
from indexer.temporal import TemporalConfig, TemporalModel, window_spans
from indexer.temporal_models import (
    MODELS_FOLDER,
    SUFFIX,
    TemporalModelError,
    find_temporal_model,
    read_header,
    save_temporal_model,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("n", "spans"), [
    (0, []),
    (1, [(0, 1)]),
    (5, [(0, 5)]),  # a two-second world clip: one window
    (6, [(0, 5), (1, 6)]),  # the last window ends at the last frame
    (9, [(0, 5), (2, 7), (4, 9)]),
    (10, [(0, 5), (2, 7), (4, 9), (5, 10)]),
])
def test_windows_cover_the_whole_video(n, spans):
    assert window_spans(n) == spans


def small_model() -> TemporalModel:
    torch.manual_seed(0)
    return TemporalModel(TemporalConfig(clip_dim=16, text_width=8, width=16, layers=1, heads=2, pixels=8))


def test_a_model_file_is_found_by_the_clip_model_it_serves(tmp_path):
    models = tmp_path / "data" / MODELS_FOLDER
    path = save_temporal_model(small_model(), models / f"mine{SUFFIX}", "some-clip@abc", {"command": "test"})
    header = read_header(path)
    assert (header.clip_model, header.dim, header.card) == ("some-clip@abc", 16, {"command": "test"})
    assert header.identity.startswith("mine.temporal@") and len(header.identity) == len("mine.temporal@") + 12
    assert find_temporal_model("auto", "some-clip@abc", tmp_path / "data").path == path
    assert find_temporal_model("auto", "other-clip@def", tmp_path / "data") is None
    assert find_temporal_model("none", "some-clip@abc", tmp_path / "data") is None
    assert find_temporal_model(str(path), "some-clip@abc").path == path
    with pytest.raises(TemporalModelError, match="trained over the CLIP model some-clip@abc"):
        find_temporal_model(str(path), "other-clip@def")
    junk = models / f"junk{SUFFIX}"
    junk.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not json at all!")
    with pytest.raises(TemporalModelError, match="not a reelbase temporal model"):
        read_header(junk)
    assert find_temporal_model("auto", "some-clip@abc", tmp_path / "data").path == path  # junk is passed over


def test_padding_changes_nothing():
    """A window of three frames embeds the same alone and padded in a batch beside a longer one; a text the same
    with or without padding tokens."""
    model = small_model().eval()
    rng = torch.Generator().manual_seed(1)
    feats, pixels, times = torch.randn(1, 5, 16, generator=rng), torch.rand(1, 5, 3, 8, 8, generator=rng), \
        torch.arange(5.0)[None] / 2
    short = model.embed_windows(feats[:, :3], pixels[:, :3], times[:, :3], torch.ones(1, 3, dtype=torch.bool))
    mask = torch.tensor([[True] * 3 + [False] * 2, [True] * 5])
    batch = model.embed_windows(feats.repeat(2, 1, 1), pixels.repeat(2, 1, 1, 1, 1), times.repeat(2, 1), mask)
    torch.testing.assert_close(batch[0], short[0], atol=1e-5, rtol=1e-5)
    pooled, tokens = torch.randn(1, 16, generator=rng), torch.randn(1, 6, 8, generator=rng)
    text_mask = torch.tensor([[True] * 4 + [False] * 2])
    torch.testing.assert_close(model.embed_texts(pooled, tokens, text_mask),
                               model.embed_texts(pooled, tokens[:, :4], text_mask[:, :4]), atol=1e-5, rtol=1e-5)


def reelbase(args: list[str], data: Path, **env) -> subprocess.CompletedProcess:
    run_env = os.environ | {"REELBASE_DATA_DIR": str(data), "REELBASE_DEVICE": "cpu", "PYTHONPATH": str(ROOT)} | env
    return subprocess.run([sys.executable, "-m", "search.cli", *args], cwd=data.parent, env=run_env,
                          capture_output=True, text=True, timeout=900)


def test_train_clip_on_captioned_footage_then_search_its_windows(tmp_path):
    """A user's footage (here world clips with their captions, at another size and rate) trains a temporal model
    over the configured CLIP model into the data folder, where search finds it: ingest writes windows, a text is
    matched against them, and a re-index keeps them."""
    footage = tmp_path / "footage"
    footage.mkdir()
    for i, clip in enumerate(world.sample_clips(41, 0, 6)):
        frames = np.repeat(np.repeat(clip.frames, 2, axis=1), 3, axis=2)  # 128 x 192
        write_mp4(footage / f"clip{i}.mp4", np.repeat(frames, 4, axis=0), world.FPS * 2)  # 4 s at 16 fps
        (footage / f"clip{i}.txt").write_text(clip.caption)
    data = tmp_path / "data"
    trained = reelbase(["train", "clip", "--data", str(footage), "--steps", "3", "--batch", "8",
                        "--run-dir", str(tmp_path / "run")], data, REELBASE_TEMPORAL_MODEL="none")
    assert trained.returncode == 0, trained.stderr
    result = json.loads(trained.stdout)
    assert result["steps"] == 3 and result["windows"] == 6 * 3  # 4 s at 2 frames/s: 9 frames, 3 windows each
    (model,) = (data / MODELS_FOLDER).glob(f"*{SUFFIX}")
    assert read_header(model).card["command"].startswith("reelbase train clip --data")

    assert reelbase(["ingest", str(footage)], data).returncode == 0
    found = reelbase(["search", "a red ball moving left", "--json"], data)
    assert found.returncode == 0 and "single frames" not in found.stderr
    hits = json.loads(found.stdout)
    assert len(hits) == 6 and all("end" in f for h in hits for f in h["frames"])
    stats = reelbase(["stats", "--json"], data)
    assert json.loads(stats.stdout)["windows"] == 6 * 3

    frames_only = reelbase(["search", "a red ball", "--json"], data, REELBASE_TEMPORAL_MODEL="none")
    assert "no temporal model serves" in frames_only.stderr
    assert all("end" not in f for h in json.loads(frames_only.stdout) for f in h["frames"])
