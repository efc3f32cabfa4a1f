"""Pixel fingerprints: a copy scores high whatever was done to it, another clip of the same caption low."""

import numpy as np

from generator.world import FPS, ClipSpec, ObjectSpec, make_clips
from indexer.fingerprint import compare, describe, fingerprint


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
