"""Pixel fingerprints: a copy scores high whatever was done to it, another clip of the same caption low."""

import tracemalloc

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from generator.world import FPS, ClipSpec, ObjectSpec, make_clips
from indexer.fingerprint import DESCRIBE_CHUNK, SIZE, _crop_boxes, _descriptor_of_plain, describe, fingerprint
from indexer.fingerprint_files import FingerprintFiles
from indexer.fingerprint_match import compare
from indexer.reader import read_frames
from indexer.thumbnails import MAX_FRAMES, RATE, SIDE, thumbnails
from tests import fixtures


def fp(frames, start=0):
    return fingerprint(frames, (np.arange(len(frames)) + start) / FPS)


def moving_right(y: float):
    """A red ball moving right on black, on the row y."""
    ball = ObjectSpec("ball", "red", 5, "moving right")
    (clip,) = make_clips([ClipSpec("on black", (ball,), (2.0,), ((10.0, y),))])
    return clip


def test_transformed_copies_match_at_the_right_time():
    clip = moving_right(32.0)
    original = fp(clip.frames)
    brighter = np.clip(clip.frames.astype(np.int16) * 1.2 + 30, 0, 255).astype(np.uint8)
    noisy = np.clip(clip.frames + np.random.default_rng(0).normal(0, 12, clip.frames.shape), 0, 255).astype(np.uint8)
    crop = clip.frames[:, 3:61, 3:61]
    for copy in (brighter, noisy, crop):
        assert compare(original, fp(copy)).score >= 0.8  # the default duplicate threshold
    trimmed = compare(original, fp(clip.frames[3:]))
    assert trimmed.score > 0.95 and abs(trimmed.offset_s - 3 / FPS) < 1e-9
    assert all(abs(p.t_a - p.t_b - 3 / FPS) < 1e-9 for p in trimmed.pairs)


def test_same_caption_on_another_path_and_another_scene_score_low():
    clip = moving_right(32.0)
    assert compare(fp(clip.frames), fp(moving_right(50.0).frames)).score < 0.5
    forest = clip.frames.copy()
    forest[(forest == 0).all(axis=-1)] = (25, 80, 40)  # the same ball on the forest's background
    assert compare(fp(clip.frames), fp(forest)).score < 0.5


def test_an_image_finds_its_frame_and_descriptors_are_unit_vectors():
    clip = moving_right(20.0)
    match = compare(fp(clip.frames[7:8]), fp(clip.frames))
    assert match.score > 0.99 and match.pairs[0].t_b == 7 / FPS
    d = describe(clip.frames)
    assert d.shape == (192,) and abs(np.linalg.norm(d) - 1) < 1e-5


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """A Gaussian blur of (N, C, H, W) by convolution, its edges replicated: the fingerprint's, as torch does it."""
    r = max(1, int(3 * sigma + 0.5))
    k = torch.exp(-torch.arange(-r, r + 1, dtype=torch.float32) ** 2 / (2 * sigma**2))
    k, c = k / k.sum(), x.shape[1]
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode="replicate"), k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(F.pad(x, (0, 0, r, r), mode="replicate"), k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def _band_pass(small: torch.Tensor) -> np.ndarray:
    d = (_blur(small, 1.0) - _blur(small, 3.0)).flatten(1)
    return F.normalize(d - d.mean(dim=1, keepdim=True), dim=1).numpy()


def _shrunk(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, size=(SIZE, SIZE), mode="bilinear", antialias=True, align_corners=False)


def test_fingerprints_and_descriptors_are_the_resampling_and_blurs_of_torch():
    """The matrix products compute what torch's antialiased interpolation and replicate-padded convolutions do."""
    wide = np.random.default_rng(2).integers(0, 256, (3, 90, 160, 3), dtype=np.uint8)
    for frames in (moving_right(20.0).frames, wide):
        x = torch.from_numpy(thumbnails(frames)).permute(0, 3, 1, 2).float() / 255
        smalls = [_shrunk(x[..., top:top + h, left:left + w]) for top, left, h, w in _crop_boxes(SIDE, SIDE)]
        cells = [F.adaptive_avg_pool2d(s, 8) * 255 for s in smalls]
        colour = [((c + 8) / (c.sum(dim=1, keepdim=True) + 24)).flatten(2).transpose(1, 2).numpy() for c in cells]
        got = fp(frames)
        assert np.abs(got.variants - np.stack([_band_pass(s) for s in smalls])).max() < 1e-5
        assert np.abs(got.colour - np.stack(colour)).max() < 1e-5
        plain = _band_pass(_shrunk(torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255))
        assert np.abs(describe(frames) - _descriptor_of_plain(plain)).max() < 1e-5


def test_describe_turns_large_frames_into_floats_a_chunk_at_a_time():
    frames = np.random.default_rng(3).integers(0, 256, (4 * DESCRIBE_CHUNK, 120, 200, 3), dtype=np.uint8)
    chunk_floats = DESCRIBE_CHUNK * 120 * 200 * 3 * 4
    tracemalloc.start()
    try:
        describe(frames)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2 * chunk_floats  # all the frames as floats at once would be 4 chunks'


def test_thumbnails_keep_a_thumbnail_sized_frame_and_squash_others():
    frames = np.random.default_rng(0).integers(0, 256, (2, SIDE, SIDE, 3), dtype=np.uint8)
    assert np.array_equal(thumbnails(frames), frames)
    wide = np.random.default_rng(1).integers(0, 256, (2, 90, 160, 3), dtype=np.uint8)
    x = torch.from_numpy(wide).permute(0, 3, 1, 2).float()  # the filter is torch's antialiased bilinear one
    reference = F.interpolate(x, size=(SIDE, SIDE), mode="bilinear", antialias=True, align_corners=False)
    assert np.abs(thumbnails(wide).astype(int) - reference.round().permute(0, 2, 3, 1).numpy()).max() <= 1


def test_the_reader_makes_fingerprint_thumbnails_in_its_decode_pass(tmp_path):
    for path in (fixtures.write_world_mp4(tmp_path / "a.mp4"), fixtures.write_world_ts(tmp_path / "b.ts")):
        both = read_frames(path, rate=2.0, fingerprint=(RATE, MAX_FRAMES))  # the .ts decodes with PyAV
        alone = read_frames(path, rate=RATE, cap=MAX_FRAMES)
        plain = read_frames(path, rate=2.0)
        assert np.array_equal(both.frames, plain.frames) and np.array_equal(both.times, plain.times)
        assert np.array_equal(both.fingerprint_times, alone.times)
        assert np.array_equal(both.fingerprint_frames, thumbnails(alone.frames))
        assert plain.fingerprint_frames is None


def test_kept_fingerprint_files_round_trip_and_read_none_when_stale(tmp_path):
    files = FingerprintFiles(tmp_path / "fp")
    thumbs = np.random.default_rng(1).integers(0, 256, (5, SIDE, SIDE, 3), dtype=np.uint8)
    times = np.arange(5) / RATE
    files.write("v1", thumbs, times)
    got = files.read("v1")
    assert np.array_equal(got[0], thumbs) and np.array_equal(got[1], times)
    assert [p.name for p in files.files()] == ["v1.npz"]
    with np.load(files.path("v1")) as data:
        np.savez(files.path("v2"), version=np.array("reelbase-fingerprint-thumbnails-v0"),
                 thumbnails=data["thumbnails"], times=data["times"])
    assert files.read("v2") is None and files.read("missing") is None
    with pytest.raises(ValueError):
        files.write("v3", thumbs[:, :32], times)
    files.delete("v1")
    assert files.read("v1") is None
