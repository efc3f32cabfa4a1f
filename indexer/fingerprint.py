"""Pixel fingerprints of frames and videos, for telling a copy from another clip of the same kind.

CLIP embeddings say what a frame shows, so two different clips with the same caption (a red
ball moving right on black, at other positions) sit as close as a clip and its re-encoded
copy. Near-duplicate detection therefore verifies candidates on fingerprints of the pixels
themselves (`compare`):

- each frame is squashed to a 64x64 thumbnail (`indexer.thumbnails`: what is kept per library
  video, so verifying decodes no video), shrunk to 32x32 and band-passed (a difference of
  Gaussians): uniform and gradient backgrounds and brightness or contrast changes fall away,
  noise and codec artefacts are averaged out, and what is left is where the edges are;
- the frames are also fingerprinted cropped by 10% at nine positions and zoomed back,
  so a copy cropped a little aligns with its original (tried in both directions);
- a pair of videos is scored at its best temporal offset (copies may have frames trimmed):
  the mean cosine of the fingerprints of the frames that coincide at that offset.

- frames whose colours differ (another scene, other objects) lose similarity beyond what
  brightening and codecs change.

Two instances of the same caption score low because their edges are elsewhere. A small
descriptor per video (`describe`: where its edges are over its whole length) is stored in the catalog
to find candidates that CLIP places far away, such as recoloured copies.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from threadpoolctl import threadpool_limits

from indexer.thumbnails import RATE, thumbnails


@contextmanager
def _one_thread() -> Iterator[None]:
    """Run on one thread (torch's and the BLAS's), process-wide while it lasts: what `fingerprint` and
    `compare_many` do is many small array operations, and on threads each costs more in hand-offs than
    it saves (a scan of 50 videos took 59 s on two threads and 17 s on one, 2 cores, busy machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(limits=1):
            yield
    finally:
        torch.set_num_threads(threads)


SIZE = 32  # fingerprint side in pixels
KEEP = (0.9,)  # share of the frame kept by the crop hypotheses
CELLS = 8  # colour is compared in CELLS x CELLS cells
COLOUR_SLACK = 0.1  # chromaticity change of the most changed cell a copy may have (brightening, codecs)
COLOUR_WEIGHT = 2.0  # similarity lost per unit of chromaticity change beyond the slack
CROP_MARGIN = 0.05  # how much better a crop hypothesis must score than the whole frame to be taken


@dataclass
class Fingerprint:
    """Band-passed thumbnails of a video's (or an image's) frames, the crop hypotheses of them, and colour."""

    times: np.ndarray  # (n,) seconds
    variants: np.ndarray  # (V, n, D) float32 unit vectors (at half precision); variant 0 is the whole frame
    colour: np.ndarray  # (V, n, CELLS**2, 3) float32 chromaticity of each variant's frames in CELLS x CELLS cells

    @property
    def plain(self) -> np.ndarray:
        return self.variants[0]


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


def _gaussian(sigma: float) -> torch.Tensor:
    radius = max(1, int(3 * sigma + 0.5))
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    k = torch.exp(-(x**2) / (2 * sigma**2))
    return k / k.sum()


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (N, C, H, W), edges replicated."""
    k = _gaussian(sigma)
    r = len(k) // 2
    c = x.shape[1]
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode="replicate"), k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(F.pad(x, (0, 0, r, r), mode="replicate"), k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def _crop_boxes(height: int, width: int) -> list[tuple[int, int, int, int]]:
    """(top, left, h, w): the whole frame, then each kept share at nine positions."""
    boxes = [(0, 0, height, width)]
    for keep in KEEP:
        h, w = max(1, round(height * keep)), max(1, round(width * keep))
        for fy in (0.0, 0.5, 1.0):
            for fx in (0.0, 0.5, 1.0):
                boxes.append((round((height - h) * fy), round((width - w) * fx), h, w))
    return boxes


def _band_pass(x: torch.Tensor) -> torch.Tensor:
    """(N, 3, SIZE, SIZE) in 0..1 to (N, D) unit vectors of its difference of Gaussians."""
    d = (_blur(x, 1.0) - _blur(x, 3.0)).flatten(1)
    d = d - d.mean(dim=1, keepdim=True)
    return F.normalize(d, dim=1)


def _chromaticity(x: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) in 0..1 to (N, CELLS**2, 3): each cell's colour with its brightness divided out.

    The offset keeps near-black cells (noise) neutral instead of random.
    """
    cells = F.adaptive_avg_pool2d(x, CELLS) * 255
    return ((cells + 8) / (cells.sum(dim=1, keepdim=True) + 24)).flatten(2).transpose(1, 2)


def _to_tensor(frames: np.ndarray) -> torch.Tensor:
    """(n, H, W, 3) uint8 frames as (n, 3, H, W) floats in 0..1 (read-only frames are copied first)."""
    return torch.from_numpy(np.require(frames, requirements=("C", "W"))).permute(0, 3, 1, 2).float().div_(255)


@_one_thread()
def fingerprint(frames: np.ndarray, times: Iterable[float]) -> Fingerprint:
    """Fingerprint (n, H, W, 3) uint8 frames shown at `times`, by way of their thumbnails (`indexer.thumbnails`:
    what is kept per library video, so a fingerprint of kept thumbnails is the one of the frames)."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) == 0:
        raise ValueError(f"frames must be (n, H, W, 3) with n >= 1, got {frames.shape}")
    x = _to_tensor(thumbnails(frames))
    small = torch.cat([F.interpolate(x[..., top:top + h, left:left + w], size=(SIZE, SIZE), mode="bilinear",
                                     antialias=True, align_corners=False)
                       for top, left, h, w in _crop_boxes(*x.shape[-2:])])  # (V * n, 3, SIZE, SIZE)
    shape = (-1, len(frames))
    return Fingerprint(np.asarray(list(times), dtype=np.float64),
                       _half_precision(_band_pass(small)).reshape(*shape, SIZE * SIZE * 3),
                       _half_precision(_chromaticity(small)).reshape(*shape, CELLS**2, 3))


def _half_precision(x: torch.Tensor) -> np.ndarray:
    """float32 values rounded to half precision: a fingerprint is no more exact than that, and comparing
    float32 saves converting at every comparison."""
    return x.half().float().numpy()


def describe(frames: np.ndarray) -> np.ndarray:
    """A small vector for finding candidates: where (n, H, W, 3) uint8 frames have edges over their whole
    length, in 8 x 8 x 3 cells (no crop hypotheses: cheap, used at ingest)."""
    x = _to_tensor(frames)
    small = F.interpolate(x, size=(SIZE, SIZE), mode="bilinear", antialias=True, align_corners=False)
    return _descriptor_of_plain(_band_pass(small).numpy())


def _descriptor_of_plain(plain: np.ndarray) -> np.ndarray:
    energy = np.abs(plain.astype(np.float32)).mean(axis=0).reshape(3, SIZE, SIZE)
    cells = energy.reshape(3, 8, SIZE // 8, 8, SIZE // 8).mean(axis=(2, 4)).reshape(-1)
    cells = cells - cells.mean()
    return cells / (np.linalg.norm(cells) or 1.0)


def compare(a: Fingerprint, b: Fingerprint, frame_threshold: float = 0.8) -> Match:
    """Score how surely b is a copy of a (or a of b): the best crop hypothesis and temporal offset."""
    return compare_many(a, [b], frame_threshold)[0]


@_one_thread()
def compare_many(a: Fingerprint, others: Sequence[Fingerprint], frame_threshold: float = 0.8) -> list[Match]:
    """`compare(a, b)` for each of `others`, their pixel similarities taken in two matrix products for all:
    many small products cost far more (per-call and thread overhead) than one large one."""
    if not others:
        return []
    av, dim = a.variants, a.variants.shape[-1]
    by_a = av.reshape(-1, dim) @ np.concatenate([b.variants[0] for b in others]).T  # a cropped and zoomed, b whole
    by_b = np.concatenate([b.variants[1:].reshape(-1, dim) for b in others]) @ av[0].T  # b cropped, a whole
    matches, col, row = [], 0, 0
    for b in others:
        nb, crops = len(b.times), (len(b.variants) - 1) * len(b.times)
        sims = np.concatenate([
            by_a[:, col:col + nb].reshape(len(av), -1, nb),
            by_b[row:row + crops].reshape(-1, nb, len(a.times)).transpose(0, 2, 1),
        ])  # (H, na, nb)
        matches.append(_best_alignment(a, b, sims, frame_threshold))
        col, row = col + nb, row + crops
    return matches


def _best_alignment(a: Fingerprint, b: Fingerprint, sims: np.ndarray, frame_threshold: float) -> Match:
    """The verdict on a pair from its pixel similarities (H, na, nb) under each crop hypothesis."""
    ac, bc = a.colour, b.colour
    sims = sims - np.concatenate([  # other scenes or object colours are other clips (compared under each hypothesis)
        _colour_penalty(ac, bc[0]),
        _colour_penalty(bc[1:], ac[0]).transpose(0, 2, 1),
    ])
    dt = a.times[:, None] - b.times[None, :]  # (na, nb)
    tol = 0.5 * _step(a.times, b.times)
    min_overlap = -(-min(len(a.times), len(b.times)) // 2)  # a copy covers at least half of the shorter
    best = {}  # whole frame (True) or a crop (False) -> (score, offset, hypothesis, i, j)
    for offset in np.unique(np.round(dt / tol) * tol):
        i, j = _one_to_one(np.abs(dt - offset) <= tol, dt - offset)
        if len(i) < min_overlap:
            continue
        scores = sims[:, i, j].mean(axis=1)  # per crop hypothesis
        for whole, h in ((True, 0), (False, 1 + int(scores[1:].argmax()))):
            if scores[h] > best.get(whole, (-np.inf,))[0]:
                best[whole] = (float(scores[h]), float(offset), h, i, j)
    if not best:
        return Match(-1.0, 0.0)
    # a crop must beat the whole frame clearly: a slowly moving object also matches itself zoomed a little
    whole, crop = best.get(True, (-np.inf,)), best.get(False, (-np.inf,))
    score, offset, h, i, j = crop if crop[0] > whole[0] + CROP_MARGIN else whole
    pairs = [FramePair(float(a.times[p]), float(b.times[q]), float(sims[h, p, q]))
             for p, q in zip(i, j) if sims[h, p, q] >= frame_threshold]
    return Match(score, offset, pairs)


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


def _one_to_one(coincide: np.ndarray, gap: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each frame of a, the frame of b nearest in time among those coinciding (if any)."""
    masked = np.where(coincide, -np.abs(gap), -np.inf)
    j = masked.argmax(axis=1)
    i = np.nonzero(np.isfinite(masked[np.arange(len(j)), j]))[0]
    return i, j[i]
