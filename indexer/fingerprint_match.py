"""Comparing pixel fingerprints (`indexer.fingerprint`): is b a copy of a, at which offset, by which frames?

A pair of videos is scored at its best crop hypothesis and temporal offset (copies may be cropped
a little or have frames trimmed): the mean, over the frames that coincide at that offset, of the
fingerprints' cosine less a colour penalty. A copy covers at least half of the shorter video.

A library scan compares every video with up to 64 candidates, most of them not copies. So
`matches` first bounds each pair's score under each crop hypothesis from the coarse fingerprints
(`Fingerprint.coarse`), sixteen times cheaper than the fingerprints themselves, and compares in
full only the pairs, and under only the hypotheses, whose bound reaches the threshold: the result
is the one of `compare`, for a fraction of the work. (A hypothesis left out scores under the
threshold at every offset, so it can neither be a pair's verdict nor displace the one that is.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from indexer.fingerprint import CELLS, Fingerprint, one_thread
from indexer.thumbnails import RATE

COLOUR_SLACK = 0.1  # chromaticity change of the most changed cell a copy may have (brightening, codecs)
COLOUR_WEIGHT = 2.0  # similarity lost per unit of chromaticity change beyond the slack
CROP_MARGIN = 0.05  # how much better a crop hypothesis must score than the whole frame to be taken
BOUND_SLACK = 1e-3  # added to a bound: rounding in float32 sums must never rule out a pair that reaches the threshold


@dataclass
class FramePair:
    """A frame of video a and the frame of video b it matches, with their times and similarity."""

    t_a: float
    t_b: float
    score: float


@dataclass
class Match:
    """The verdict on a pair: verified score, the offset t_a - t_b, and the coinciding frames."""

    score: float
    offset_s: float
    pairs: list[FramePair] = field(default_factory=list)


def compare(a: Fingerprint, b: Fingerprint, frame_threshold: float = 0.8) -> Match:
    """Score how surely b is a copy of a (or a of b): the best crop hypothesis and temporal offset."""
    return compare_many(a, [b], frame_threshold)[0]


@one_thread()
def compare_many(a: Fingerprint, others: Sequence[Fingerprint], frame_threshold: float = 0.8) -> list[Match]:
    """`compare(a, b)` for each of `others`, their pixel similarities taken in two matrix products for all:
    many small products cost far more (per-call overhead) than one large one."""
    if not others:
        return []
    by_a, by_b = _similarities(a.variants, [b.variants for b in others])
    every = np.arange(len(a.variants))
    return [_best_alignment(a, b, sims - _colour_penalties(a, b, every, every[1:]), frame_threshold)
            for b, sims in zip(others, _per_pair(a, others, by_a, by_b))]


@one_thread()
def matches(a: Fingerprint, others: Sequence[Fingerprint], threshold: float) -> list[Match | None]:
    """`compare(a, b)` for each of `others` that scores `threshold` or more, None for the rest: a pair is
    compared only under the crop hypotheses whose bound (`hypothesis_bounds`) reaches the threshold, and
    not at all when none does."""
    if not others:
        return []
    reach = hypothesis_bounds(a, others) + BOUND_SLACK >= threshold  # (H, C)
    found = [_compare_under(a, b, reach[:, c], threshold) if reach[:, c].any() else None
             for c, b in enumerate(others)]
    return [m if m is not None and m.score >= threshold else None for m in found]


def _compare_under(a: Fingerprint, b: Fingerprint, hypotheses: np.ndarray, frame_threshold: float) -> Match:
    """`compare(a, b)` under the crop hypotheses marked in (H,) and the whole frame: a's variants, then b's crops."""
    variants = len(a.variants)
    mine = np.union1d([0], np.nonzero(hypotheses[:variants])[0])  # a's variants, the whole frame first
    theirs = 1 + np.nonzero(hypotheses[variants:])[0]  # b's crops
    na, nb, dim = len(a.times), len(b.times), a.variants.shape[-1]
    sims = np.concatenate([(a.variants[mine].reshape(-1, dim) @ b.plain.T).reshape(-1, na, nb),
                           (b.variants[theirs].reshape(-1, dim) @ a.plain.T).reshape(-1, nb, na).transpose(0, 2, 1)])
    return _best_alignment(a, b, sims - _colour_penalties(a, b, mine, theirs), frame_threshold)


def score_bounds(a: Fingerprint, others: Sequence[Fingerprint]) -> np.ndarray:
    """(len(others),): an upper bound of `compare(a, b).score` for each b (see `hypothesis_bounds`)."""
    return hypothesis_bounds(a, others).max(axis=0) if others else np.zeros(0)


def hypothesis_bounds(a: Fingerprint, others: Sequence[Fingerprint]) -> np.ndarray:
    """(H, len(others)): an upper bound of each pair's score under each crop hypothesis (a's variants, then each
    b's crops) at any offset, from the coarse fingerprints.

    Each frame pair's cosine is at most its coarse cosine plus the product of what the coarse parts leave
    out; the colour penalty only lowers a score; and a score is a mean over at least `_min_overlap` frames
    of a, each paired with one frame of b, so it is at most the mean of the best that many frames' best
    pairs."""
    (ca, la), coarse = a.coarse, [b.coarse for b in others]
    by_a, by_b = _similarities(ca, [c for c, _ in coarse])
    by_a += la.reshape(-1, 1) * np.concatenate([left[0] for _, left in coarse])[None, :]
    by_b += np.concatenate([left[1:].reshape(-1) for _, left in coarse])[:, None] * la[0][None, :]
    frames = np.array([len(b.times) for b in others])
    variants, na = len(a.variants), len(a.times)
    best_a = np.maximum.reduceat(by_a, np.cumsum(frames) - frames, axis=1)  # (V * na, C): each b's best frame
    crops = np.repeat(frames, variants - 1)  # by_b's rows: each b's crops, a block of its frames each
    best_b = np.maximum.reduceat(by_b, np.cumsum(crops) - crops, axis=0)  # (C * (V - 1), na)
    best = np.concatenate([best_a.reshape(variants, na, -1),
                           best_b.reshape(len(others), variants - 1, na).transpose(1, 2, 0)])  # (H, na, C)
    best = -np.sort(-best, axis=1)  # each hypothesis' frames of a, best first
    means = np.cumsum(best, axis=1) / np.arange(1, na + 1)[None, :, None]
    overlap = -(-np.minimum(na, frames) // 2)  # `_min_overlap` of each pair
    return means[:, overlap - 1, np.arange(len(others))]


def _similarities(av: np.ndarray, others: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The two matrix products behind every pair's similarities: a's variants against each b's whole frames
    (V * na, sum nb), and each b's crops against a's whole frames (sum (V - 1) * nb, na)."""
    dim = av.shape[-1]
    by_a = av.reshape(-1, dim) @ np.concatenate([b[0] for b in others]).T  # a cropped and zoomed, b whole
    by_b = np.concatenate([b[1:].reshape(-1, dim) for b in others]) @ av[0].T  # b cropped, a whole
    return by_a, by_b


def _per_pair(a: Fingerprint, others: Sequence[Fingerprint], by_a: np.ndarray, by_b: np.ndarray):
    """Each pair's similarities (H, na, nb) under every crop hypothesis, cut from `_similarities`."""
    variants, na, col, row = len(a.variants), len(a.times), 0, 0
    for b in others:
        nb, crops = len(b.times), (len(b.variants) - 1) * len(b.times)
        yield np.concatenate([
            by_a[:, col:col + nb].reshape(variants, na, nb),
            by_b[row:row + crops].reshape(-1, nb, na).transpose(0, 2, 1),
        ])
        col, row = col + nb, row + crops


def _min_overlap(a: Fingerprint, b: Fingerprint) -> int:
    """Frames a copy must share with the other video: half of the shorter (rounded up)."""
    return -(-min(len(a.times), len(b.times)) // 2)


def _colour_penalties(a: Fingerprint, b: Fingerprint, mine: np.ndarray, theirs: np.ndarray) -> np.ndarray:
    """(H, na, nb): the colour penalty of a's variants `mine` against b's whole frames, then of b's crops `theirs`
    against a's: other scenes or object colours are other clips, under each hypothesis."""
    return np.concatenate([_colour_penalty(a.colour[mine], b.colour[0]),
                           _colour_penalty(b.colour[theirs], a.colour[0]).transpose(0, 2, 1)])


def _best_alignment(a: Fingerprint, b: Fingerprint, sims: np.ndarray, frame_threshold: float) -> Match:
    """The verdict on a pair from its pixel similarities less colour penalties (H, na, nb) under each crop
    hypothesis, the whole frame first."""
    offsets, j, coincide = _alignments(a.times, b.times)  # (O,), (O, na), (O, na)
    frames = coincide.sum(axis=1)
    usable = frames >= _min_overlap(a, b)
    if not usable.any():
        return Match(-1.0, 0.0)
    scores = np.where(coincide, sims[:, np.arange(len(a.times)), j], 0).sum(axis=2) / np.maximum(frames, 1)  # (H, O)
    scores[:, ~usable] = -np.inf
    # a crop must beat the whole frame clearly: a slowly moving object also matches itself zoomed a little
    whole = int(scores[0].argmax())
    crops = 1 + scores[1:].argmax(axis=0)  # the best crop at each offset
    crop = int(scores[crops, np.arange(len(offsets))].argmax())
    h, o = (crops[crop], crop) if scores[crops[crop], crop] > scores[0, whole] + CROP_MARGIN else (0, whole)
    i = np.nonzero(coincide[o])[0]
    pairs = [FramePair(float(a.times[p]), float(b.times[q]), float(sims[h, p, q]))
             for p, q in zip(i, j[o, i]) if sims[h, p, q] >= frame_threshold]
    return Match(float(scores[h, o]), float(offsets[o]), pairs)


def _alignments(ta: np.ndarray, tb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The temporal offsets to try (t_a - t_b, in steps of half the finer frame spacing), and at each, for each
    frame of a, the frame of b nearest in time and whether one coincides with it (within that half step)."""
    dt = ta[:, None] - tb[None, :]  # (na, nb)
    tol = 0.5 * _step(ta, tb)
    offsets = np.unique(np.round(dt / tol) * tol)
    gap = np.abs(dt[None] - offsets[:, None, None])  # (O, na, nb)
    nearest = np.where(gap <= tol, -gap, -np.inf)
    j = nearest.argmax(axis=2)
    return offsets, j, np.isfinite(np.take_along_axis(nearest, j[..., None], axis=2)[..., 0])


def _colour_penalty(variants: np.ndarray, plain: np.ndarray) -> np.ndarray:
    """(V, n, m): for each variant's frame against each plain frame, how far the most changed cell's
    colour moved beyond what brightening and codecs do."""
    moved2 = np.zeros((*variants.shape[:2], len(plain), CELLS**2), np.float32)  # (V, n, m, cells) squared
    for channel in range(3):  # summed a channel at a time: numpy reduces an axis of 3 slowly
        d = variants[:, :, None, :, channel] - plain[None, None, :, :, channel]
        moved2 += d * d
    return COLOUR_WEIGHT * np.maximum(0.0, np.sqrt(moved2.max(axis=-1)) - COLOUR_SLACK)


def _step(ta: np.ndarray, tb: np.ndarray) -> float:
    """The finer of the two frame spacings (seconds); 1/RATE for single frames."""
    steps = [float(np.median(np.diff(t))) for t in (ta, tb) if len(t) > 1]
    return min(steps) if steps else 1.0 / RATE
