"""Comparing fingerprints: the bound a scan rules pairs out by never falls below a pair's score, and the pairs
that reach the threshold come out exactly as `compare` scores them."""

import itertools

import numpy as np
import pytest

from generator.world import FPS, ClipSpec, ObjectSpec, make_clips, sample_clips
from indexer.fingerprint import fingerprint
from indexer.fingerprint_match import compare, matches, score_bounds

THRESHOLD = 0.8


def fp(frames, start=0):
    return fingerprint(frames, (np.arange(len(frames)) + start) / FPS)


@pytest.fixture(scope="module")
def prints() -> dict:
    """A red ball's clip and copies of it (brighter, noisy, cropped, trimmed, one frame), the same caption on
    another path, and other clips of the world."""
    ball = ObjectSpec("ball", "red", 5, "moving right")
    original, twin = make_clips([ClipSpec("on black", (ball,), (2.0,), ((10.0, y),)) for y in (32.0, 50.0)])
    frames = original.frames
    brighter = np.clip(frames.astype(np.int16) * 1.2 + 30, 0, 255).astype(np.uint8)
    noisy = np.clip(frames + np.random.default_rng(0).normal(0, 12, frames.shape), 0, 255).astype(np.uint8)
    return {"original": fp(frames), "brighter": fp(brighter), "noisy": fp(noisy),
            "cropped": fp(frames[:, 3:61, 3:61]), "trimmed": fp(frames[3:], 3),
            "frame": fp(frames[7:8], 7), "twin": fp(twin.frames),
            **{f"other{i}": fp(c.frames) for i, c in enumerate(sample_clips(7, 0, 3))}}


def test_a_pairs_bound_is_never_below_its_score(prints):
    for a, b in itertools.permutations(prints.values(), 2):
        assert score_bounds(a, [b])[0] >= compare(a, b).score
    a, others = prints["original"], list(prints.values())
    assert np.allclose(score_bounds(a, others), [score_bounds(a, [b])[0] for b in others], atol=1e-5)


def test_matches_are_the_compares_that_reach_the_threshold_and_others_are_ruled_out_by_their_bound(prints):
    a, others = prints["original"], [v for k, v in prints.items() if k != "original"]
    for b, verdict in zip(others, matches(a, others, THRESHOLD)):
        full = compare(a, b, THRESHOLD)  # alone: its matrix products round a little differently
        if full.score < THRESHOLD:
            assert verdict is None
        else:
            assert verdict.score == pytest.approx(full.score, abs=1e-5) and verdict.offset_s == full.offset_s
            assert [(p.t_a, p.t_b) for p in verdict.pairs] == [(p.t_a, p.t_b) for p in full.pairs]
    copies = [prints[k] for k in ("brighter", "noisy", "cropped", "trimmed", "frame")]
    assert all(m is not None for m in matches(a, copies, THRESHOLD))
    strangers = [prints["twin"], *(v for k, v in prints.items() if k.startswith("other"))]
    assert (score_bounds(a, strangers) < THRESHOLD).all()  # ruled out without comparing the fingerprints
