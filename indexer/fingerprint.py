"""Pixel fingerprints of frames and videos, for telling a copy from another clip of the same kind.

CLIP embeddings say what a frame shows, so two different clips with the same caption (a red
ball moving right on black, at other positions) sit as close as a clip and its re-encoded
copy. Near-duplicate detection therefore verifies candidates on fingerprints of the pixels
themselves (`indexer.fingerprint_match`):

- each frame is squashed to a 64x64 thumbnail (`indexer.thumbnails`: what is kept per library
  video, so verifying decodes no video), shrunk to 32x32 and band-passed (a difference of
  Gaussians): uniform and gradient backgrounds and brightness or contrast changes fall away,
  noise and codec artefacts are averaged out, and what is left is where the edges are;
- the frames are also fingerprinted cropped by 10% at nine positions and zoomed back,
  so a copy cropped a little aligns with its original (tried in both directions);
- the colour of each variant is kept in 8x8 cells of chromaticity: frames whose colours differ
  (another scene, other objects) lose similarity beyond what brightening and codecs change.

Every step is linear up to the normalising, so it is done as matrix products over all frames at
once (numpy and its BLAS, on one thread): resampling (the antialiased bilinear filter of PIL and
torch, `indexer.thumbnails.resample_weights`) and blurring (a Gaussian with replicated edges) are
each a small matrix applied to the rows and to the columns of every frame. Two instances of the
same caption score low because their edges are elsewhere. A small descriptor per video
(`describe`: where its edges are over its whole length) is stored in the catalog to find
candidates that CLIP places far away, such as recoloured copies.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache, cached_property

import numpy as np
from threadpoolctl import ThreadpoolController

from indexer.thumbnails import resample_weights, thumbnails

SIZE = 32  # fingerprint side in pixels
KEEP = (0.9,)  # share of the frame kept by the crop hypotheses
SIGMAS = (1.0, 3.0)  # the band pass: a blur by the first minus a blur by the second (pixels)
CELLS = 8  # colour is compared in CELLS x CELLS cells
DESCRIBE_CHUNK = 64  # frames converted to floats at a time by `describe` (large frames take room)
COARSE = 4  # side of the blocks of the coarse fingerprint (`Fingerprint.coarse`) in pixels


@cache
def _blas() -> ThreadpoolController:
    """The BLAS numpy calls, found once (finding them costs milliseconds, each limit after that microseconds)."""
    return ThreadpoolController()


@contextmanager
def one_thread() -> Iterator[None]:
    """Run the BLAS on one thread, process-wide while it lasts: fingerprints are made and compared in many
    modest matrix products, and on threads each costs more in hand-offs than it saves (a scan of 50 videos
    took 59 s on two threads and 17 s on one, 2 cores, busy machine)."""
    with _blas().limit(limits=1):
        yield


@dataclass
class Fingerprint:
    """Band-passed thumbnails of a video's (or an image's) frames, the crop hypotheses of them, and colour."""

    times: np.ndarray  # (n,) seconds
    variants: np.ndarray  # (V, n, D) float32 unit vectors; variant 0 is the whole frame
    colour: np.ndarray  # (V, n, CELLS**2, 3) float32 chromaticity of each variant's frames in CELLS x CELLS cells

    @property
    def plain(self) -> np.ndarray:
        return self.variants[0]

    @cached_property
    def coarse(self) -> tuple[np.ndarray, np.ndarray]:
        """Each variant's frames in COARSE x COARSE blocks, (V, n, D / COARSE**2) float32, and the length of what the
        blocks leave out, (V, n): for any two frames x and y, x . y <= coarse x . coarse y + left x * left y
        (Cauchy-Schwarz on the two orthogonal parts), which bounds a pair's score in 16 times fewer operations
        (`indexer.fingerprint_match.score_bounds`)."""
        v = self.variants
        blocks = _block_sums(COARSE)
        with one_thread():  # each block's sum / COARSE: the coordinates in an orthonormal basis
            coarse = _filter(v.reshape(*v.shape[:2], 3, SIZE, SIZE), blocks, blocks).reshape(*v.shape[:2], -1) / COARSE
        length2 = np.einsum("...d,...d->...", v, v, dtype=np.float64) - np.einsum("...d,...d->...", coarse, coarse,
                                                                                  dtype=np.float64)
        return coarse, np.sqrt(np.maximum(length2, 0.0)).astype(np.float32)


@one_thread()
def fingerprint(frames: np.ndarray, times: Iterable[float]) -> Fingerprint:
    """Fingerprint (n, H, W, 3) uint8 frames shown at `times`, by way of their thumbnails (`indexer.thumbnails`:
    what is kept per library video, so a fingerprint of kept thumbnails is the one of the frames)."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) == 0:
        raise ValueError(f"frames must be (n, H, W, 3) with n >= 1, got {frames.shape}")
    band, cells = _band_and_cells(_to_floats(thumbnails(frames)))
    return Fingerprint(np.asarray(list(times), dtype=np.float64), _unit_band(band), _chromaticity(cells))


def describe(frames: np.ndarray) -> np.ndarray:
    """A small vector for finding candidates: where (n, H, W, 3) uint8 frames have edges over their whole
    length, in 8 x 8 x 3 cells (no crop hypotheses: cheap, used at ingest)."""
    frames = np.asarray(frames)
    rows, cols = resample_weights(frames.shape[1], SIZE), resample_weights(frames.shape[2], SIZE)
    small = np.concatenate([_resampled(frames[i:i + DESCRIBE_CHUNK], rows, cols)
                            for i in range(0, len(frames), DESCRIBE_CHUNK)])  # (n, 3, SIZE, SIZE)
    fine, broad = (_filter(small, blur, blur) for blur in map(_blur_matrix, SIGMAS))
    return _descriptor_of_plain(_unit_band(fine - broad))


def _resampled(frames: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """(n, H, W, 3) uint8 frames as rows @ frame @ cols.T in 0..1, (n, 3, len(rows), len(cols)): the rows first,
    in the frames' own layout (large frames are not transposed)."""
    n, height, width = frames.shape[:3]
    x = rows @ frames.astype(np.float32).reshape(n, height, width * 3)  # (n, rows, W * 3)
    return x.reshape(n, len(rows), width, 3).transpose(0, 3, 1, 2) @ cols.T / 255


def _to_floats(frames: np.ndarray) -> np.ndarray:
    """(n, H, W, 3) uint8 frames as (n, 3, H, W) float32 in 0..1."""
    return frames.transpose(0, 3, 1, 2).astype(np.float32) / 255


def _spans(size: int) -> list[list[tuple[int, int]]]:
    """The (start, length) spans of a side of `size` pixels that the crop variants keep, in groups: the whole
    side, then each kept share at three positions (start, centre, end)."""
    groups = [[(0, size)]]
    for keep in KEEP:
        length = max(1, round(size * keep))
        groups.append([(round((size - length) * at), length) for at in (0.0, 0.5, 1.0)])
    return groups


def _crop_boxes(height: int, width: int) -> list[tuple[int, int, int, int]]:
    """(top, left, h, w) of each variant: the whole frame, then each kept share at nine positions (each span of
    rows of a group with each span of columns of the same group)."""
    return [(top, left, h, w) for rows, cols in zip(_spans(height), _spans(width))
            for top, h in rows for left, w in cols]


@cache
def _line_filter(size: int, start: int, length: int) -> np.ndarray:
    """(2 * SIZE + CELLS, size): what a fingerprint takes of a line of `size` pixels: pixels start..start + length
    resampled to SIZE (`resample_weights`) and then blurred by each of SIGMAS, and resampled and averaged in
    CELLS cells; `_blocks` splits it in three."""
    resample = np.zeros((SIZE, size), np.float32)
    resample[:, start:start + length] = resample_weights(length, SIZE)
    cells = np.kron(np.eye(CELLS, dtype=np.float32), np.full((1, SIZE // CELLS), CELLS / SIZE, np.float32))
    return np.concatenate([_blur_matrix(s) @ resample for s in SIGMAS] + [cells @ resample])


def _blocks(line_filter: np.ndarray) -> list[np.ndarray]:
    """A line filter's parts: blurred by the finer sigma, by the broader one, and averaged in cells."""
    return [line_filter[:SIZE], line_filter[SIZE:2 * SIZE], line_filter[2 * SIZE:]]


@cache
def _blur_matrix(sigma: float) -> np.ndarray:
    """(SIZE, SIZE): a Gaussian blur of a line of SIZE pixels, its edge pixels repeated beyond it."""
    radius = max(1, int(3 * sigma + 0.5))
    taps = np.arange(-radius, radius + 1)
    kernel = np.exp(-(taps.astype(np.float32) ** 2) / (2 * sigma**2))
    kernel /= kernel.sum()
    matrix = np.zeros((SIZE, SIZE), np.float32)
    for tap, weight in zip(taps, kernel):
        np.add.at(matrix, (np.arange(SIZE), np.clip(np.arange(SIZE) + tap, 0, SIZE - 1)), weight)
    return matrix


def _band_and_cells(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each crop variant of (n, 3, S, S) frames resampled to SIZE x SIZE, as its difference of Gaussians
    (V, n, 3, SIZE, SIZE) and its cell means (V, n, 3, CELLS, CELLS), by `_line_filter` along rows and columns.

    The columns of all variants are filtered in one matrix product; then the rows of each group of spans in one
    product per block of the filter, which pairs each span of rows with each span of columns of the group, as
    `_crop_boxes` does."""
    n, size = len(x), x.shape[-1]
    groups = _spans(size)
    spans = [span for group in groups for span in group]
    blocks = [_blocks(_line_filter(size, *span)) for span in spans]  # [span][block]: (k, S)
    by_cols = np.concatenate([b[i] for i in range(3) for b in blocks]) @ x.reshape(-1, size).T
    sizes = [len(spans) * len(block) for block in blocks[0]]  # by_cols' rows: (block, column span, k)
    by_cols = [part.reshape(len(spans), -1, size) for part in np.split(by_cols, np.cumsum(sizes)[:-1])]
    variants = sum(len(group) ** 2 for group in groups)
    band = np.empty((variants, n, 3, SIZE, SIZE), np.float32)
    cells = np.empty((variants, n, 3, CELLS, CELLS), np.float32)
    first, at = 0, 0
    for group in groups:
        g = len(group)
        fine, broad, cell = (by_cols[i][at:at + g].reshape(-1, size) @ np.concatenate(
            [b[i] for b in blocks[at:at + g]]).T for i in range(3))  # (column span, k, n, 3, row span, k)
        _put(band[first:first + g * g], fine - broad)
        _put(cells[first:first + g * g], cell)
        first, at = first + g * g, at + g
    return band, cells


def _put(out: np.ndarray, filtered: np.ndarray) -> None:
    """Write a group's filtered frames, (column span, k, n, 3, row span, k), into its variants (g * g, n, 3, k, k),
    each row span with each column span."""
    g, (n, _, k) = math.isqrt(len(out)), out.shape[1:4]
    out.reshape(g, g, *out.shape[1:])[...] = filtered.reshape(g, k, n, 3, g, k).transpose(4, 0, 2, 3, 5, 1)


def _filter(x: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """rows @ x @ cols.T for each (H, W) image of x (..., H, W), as two large matrix products."""
    lead, (height, width) = x.shape[:-2], x.shape[-2:]
    y = (np.ascontiguousarray(x).reshape(-1, width) @ cols.T).reshape(*lead, height, len(cols))
    y = np.swapaxes(y, -1, -2).reshape(-1, height) @ rows.T  # (..., out W, out H) rows
    return np.swapaxes(y.reshape(*lead, len(cols), len(rows)), -1, -2)


def _unit_band(d: np.ndarray) -> np.ndarray:
    """(..., 3, SIZE, SIZE) differences of Gaussians as (..., D) unit vectors about their mean."""
    d = d.reshape(*d.shape[:-3], -1)
    d = d - d.mean(axis=-1, keepdims=True)
    return d / np.maximum(np.linalg.norm(d, axis=-1, keepdims=True), 1e-12)


def _chromaticity(cells: np.ndarray) -> np.ndarray:
    """(..., 3, CELLS, CELLS) cell means in 0..1 to (..., CELLS**2, 3): each cell's colour with its brightness
    divided out. The offset keeps near-black cells (noise) neutral instead of random."""
    cells = cells * 255
    chroma = (cells + 8) / (cells.sum(axis=-3, keepdims=True) + 24)
    return np.swapaxes(chroma.reshape(*chroma.shape[:-2], CELLS**2), -1, -2)


@cache
def _block_sums(side: int) -> np.ndarray:
    """(SIZE // side, SIZE): sums of a line's pixels in blocks of `side`."""
    return np.kron(np.eye(SIZE // side, dtype=np.float32), np.ones((1, side), np.float32))


def _descriptor_of_plain(plain: np.ndarray) -> np.ndarray:
    energy = np.abs(plain.astype(np.float32)).mean(axis=0).reshape(3, SIZE, SIZE)
    cells = energy.reshape(3, 8, SIZE // 8, 8, SIZE // 8).mean(axis=(2, 4)).reshape(-1)
    cells = cells - cells.mean()
    return cells / (np.linalg.norm(cells) or 1.0)
