"""Read the objects back out of world clips and score them against the simulator's truth.

The generation evaluation of PhyWorld (Kang et al. 2024, "How Far is Video Generation from World
Model: A Physical Law Perspective"): track what a generated clip shows, then check colour, shape,
count, direction, speed, gravity and permanence against what its caption means. Each scene's
background is known exactly (docs/world.md), so an object is whatever is far from it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from generator import world

FG_DISTANCE = 40.0  # RGB distance from the background (3x3 averaged) that is an object; noise, blur, H.264 stay under
MIN_AREA, MAX_AREA = 8, 1024  # px; smaller is noise (a disc of radius 4 is ~50), larger a broken background
SQUARE_FILL = 0.9  # fill between a disc's pi/4 and a square's 1 (measured: disc < 0.88, square > 0.94)
MAX_COLOUR_DISTANCE = 64.0  # further than this from every palette colour: no colour (palette gaps are > 100)
MAX_STEP = 14.0  # px a track may move between frames (a falling object reaches ~8 px/frame)
MERGED_SHARE = 0.75  # a blob of this share of two tracks' usual areas holds both (touching, one colour)
MIN_TRACK = 3  # frames a track must last to be an object rather than flicker
PALETTE = np.array(list(world.COLOURS.values()), dtype=np.float32)  # (C, 3)


@dataclass
class Blob:
    """One connected piece of foreground in one frame."""

    centre: np.ndarray  # (2,) x, y, weighted by opacity
    area: int
    bbox: tuple[int, int, int, int]  # x0, y0, x1, y1, inclusive
    colour: str | None  # nearest palette colour to the opaque core, None when none is near
    colour_distance: float
    fill: float  # opacity / (longest row x longest column): a disc pi/4, a square 1
    radius: float  # half that row and column: a disc's radius, half a square's side

    @property
    def shape(self) -> str:
        return "square" if self.fill >= SQUARE_FILL else "ball"


@dataclass
class Track:
    """One object followed through a clip: its blob in each frame, None where unseen."""

    blobs: list[Blob | None]  # (T,)
    merged: np.ndarray  # (T,) bool: the blob holds another track's object too (touching, one colour)

    @property
    def alone(self) -> list[Blob]:
        return [b for b, m in zip(self.blobs, self.merged) if b is not None and not m]

    @property
    def present(self) -> np.ndarray:
        return np.array([b is not None for b in self.blobs])

    @property
    def centres(self) -> np.ndarray:
        """(T, 2) x, y; NaN where unseen or merged."""
        return np.array([(np.nan, np.nan) if b is None or m else b.centre for b, m in zip(self.blobs, self.merged)])

    @property
    def colour(self) -> str | None:
        return Counter(b.colour for b in self.alone).most_common(1)[0][0]

    @property
    def shape(self) -> str:
        return Counter(b.shape for b in self.alone).most_common(1)[0][0]

    @property
    def area(self) -> float:
        return float(np.median([b.area for b in self.alone]))

    @property
    def radius(self) -> float:
        return float(np.median([b.radius for b in self.alone]))

    def expected(self, t: int) -> list[np.ndarray]:
        """Where the object may be at frame t: where last seen alone, and carried on at its last velocity."""
        seen = [s for s in range(t) if self.blobs[s] is not None and not self.merged[s]][-2:]
        places = [self.blobs[s].centre for s in seen]
        if len(seen) == 2:
            (s0, s1), (c0, c1) = seen, places
            places.append(c1 + (c1 - c0) * (t - s1) / (s1 - s0))
        return places[-2:]


@dataclass
class Tracks:
    """Every track of a clip, with the blobs of each frame."""

    tracks: list[Track]
    blobs: list[list[Blob]]

    @property
    def counts(self) -> np.ndarray:
        """Objects present in each frame, (T,)."""
        return np.sum([tr.present for tr in self.tracks], axis=0) if self.tracks else np.zeros(len(self.blobs), int)


# ---------------------------------------------------------------------------------------------
# Blobs


def _colour_fit(frames: np.ndarray, scene: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per pixel, (T, H, W) each: 3x3-averaged distance from the background, best palette colour, its alpha.

    A pixel is background blended with one palette colour (anti-aliased edges): alpha is the blend,
    the best colour the one whose blend explains the pixel best.
    """
    bg = world.backgrounds([scene])[0].numpy()  # (H, W, 3)
    H, W = bg.shape[:2]
    diff = frames.astype(np.float32) - bg  # (T, H, W, 3)
    p = np.pad(diff, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="edge")
    smooth = sum(p[:, dy : dy + H, dx : dx + W] for dy in range(3) for dx in range(3)) / 9  # noise averages out
    toward = PALETTE[None] - bg[:, :, None]  # (H, W, C, 3)
    alpha = (np.einsum("thwk,hwck->thwc", diff, toward) / np.maximum((toward**2).sum(-1), 1.0)).clip(0, 1)
    label = np.linalg.norm(diff[..., None, :] - alpha[..., None] * toward, axis=-1).argmin(-1)
    return np.linalg.norm(smooth, axis=-1), label, np.take_along_axis(alpha, label[..., None], -1)[..., 0]


def _clean(mask: np.ndarray) -> np.ndarray:
    """Keep pixels of some 2x2 foreground block (drops specks, keeps square corners); fill pinholes."""
    p = np.pad(mask, ((0, 0), (1, 1), (1, 1)))
    block = p[:, :-1, :-1] & p[:, 1:, :-1] & p[:, :-1, 1:] & p[:, 1:, 1:]  # (T, H+1, W+1)
    kept = block[:, :-1, :-1] | block[:, 1:, :-1] | block[:, :-1, 1:] | block[:, 1:, 1:]
    q = np.pad(kept, ((0, 0), (1, 1), (1, 1)))
    return kept | (q[:, :-2, 1:-1] & q[:, 2:, 1:-1] & q[:, 1:-1, :-2] & q[:, 1:-1, 2:])


def label_components(mask: np.ndarray) -> np.ndarray:
    """4-connected components of each frame of a (T, H, W) mask: -1 off the mask, else a label."""
    big = mask.size
    lab = np.where(mask, np.arange(big).reshape(mask.shape), big)
    while True:  # spread the smallest index over each component, with pointer jumping
        p = np.pad(lab, ((0, 0), (1, 1), (1, 1)), constant_values=big)
        new = np.minimum.reduce([lab, p[:, :-2, 1:-1], p[:, 2:, 1:-1], p[:, 1:-1, :-2], p[:, 1:-1, 2:]])
        new = np.where(mask, np.append(new.ravel(), big)[np.where(mask, new, big)], big)
        if np.array_equal(new, lab):
            return np.where(mask, lab, -1)
        lab = new


def _make_blob(frame: np.ndarray, ys: np.ndarray, xs: np.ndarray, alpha: np.ndarray) -> Blob:
    """A blob from its pixels and their opacity."""
    core = alpha > 0.6 if (alpha > 0.6).any() else np.ones(len(alpha), bool)  # anti-aliased edges left out
    mean = frame[ys[core], xs[core]].astype(np.float32).mean(0)
    dist = np.linalg.norm(PALETTE - mean, axis=1)
    box = (int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max()))
    patch = np.zeros((box[3] - box[1] + 1, box[2] - box[0] + 1))
    patch[ys - box[1], xs - box[0]] = alpha
    height, width = patch.sum(0).max(), patch.sum(1).max()  # longest column and row, in opacity
    w = np.maximum(alpha, 1e-3)
    centre = np.array([(xs * w).sum(), (ys * w).sum()]) / w.sum() + 0.5  # + 0.5: pixel centres
    colour = list(world.COLOURS)[int(dist.argmin())] if dist.min() <= MAX_COLOUR_DISTANCE else None
    fill = patch.sum() / max(width * height, 1e-6)
    return Blob(centre, len(xs), box, colour, float(dist.min()), float(fill), float(width + height) / 4)


def _split_by_colour(frame: np.ndarray, ys, xs, label: np.ndarray, alpha: np.ndarray) -> list[Blob] | None:
    """Two blobs when the pixels hold two clear palette colours (two objects touching), else None."""
    (first, n1), *rest = Counter(label.tolist()).most_common(2)
    if not rest or rest[0][1] < max(MIN_AREA, 0.15 * len(ys)) or n1 + rest[0][1] < 0.6 * len(ys):
        return None
    blobs = [_make_blob(frame, ys[p], xs[p], alpha[p]) for p in (label == first, label == rest[0][0])]
    colours = {b.colour for b in blobs}
    return blobs if len(colours) == 2 and None not in colours else None


def find_blobs(frames: np.ndarray, scene: str) -> list[list[Blob]]:
    """The blobs of every frame of a (T, H, W, 3) uint8 clip."""
    dist, label, alpha = _colour_fit(frames, scene)
    comps = label_components(_clean(dist > FG_DISTANCE))
    blobs = []
    for frame, comp, lab, alp in zip(frames, comps, label, alpha):
        blobs.append([])
        for c in np.unique(comp[comp >= 0]):
            ys, xs = np.nonzero(comp == c)
            if MIN_AREA <= len(ys) <= MAX_AREA:
                split = _split_by_colour(frame, ys, xs, lab[ys, xs], alp[ys, xs])
                blobs[-1] += split or [_make_blob(frame, ys, xs, alp[ys, xs])]
    return blobs


# ---------------------------------------------------------------------------------------------
# Tracks


def _link_frame(tracks: list[Track], blobs: list[Blob], t: int, T: int) -> None:
    """Give each blob of frame t to the nearest track, colour and shape agreeing; new tracks for the rest."""
    pairs = []
    for i, tr in enumerate(tracks):
        expected = tr.expected(t)
        for j, b in enumerate(blobs):
            d = min((float(np.linalg.norm(b.centre - e)) for e in expected), default=np.inf)
            if d <= MAX_STEP:
                pairs.append((d + MAX_STEP * ((b.colour != tr.colour) + (b.shape != tr.shape) / 2), i, j))
    owner: dict[int, int] = {}  # blob -> track
    for _, i, j in sorted(pairs):
        if i not in owner.values() and j not in owner:
            owner[j] = i
    shared: dict[int, int] = {}  # track -> the blob it shares with that blob's owner
    for _, i, j in sorted(pairs):  # a lost track beside a blob big enough for two: they touch
        if i in owner.values() or i in shared or j not in owner or blobs[j].colour != tracks[i].colour:
            continue
        if blobs[j].area >= MERGED_SHARE * (tracks[owner[j]].area + tracks[i].area):
            shared[i] = shared[owner[j]] = j
    for j in range(len(blobs)):
        if j not in owner:
            owner[j] = len(tracks)
            tracks.append(Track([None] * T, np.zeros(T, bool)))
    for i, j in [(i, j) for j, i in owner.items()] + list(shared.items()):
        tracks[i].blobs[t], tracks[i].merged[t] = blobs[j], i in shared


def track(frames: np.ndarray, scene: str) -> Tracks:
    """Find and follow the objects of a (T, H, W, 3) uint8 clip of the given scene."""
    if frames.ndim != 4 or frames.shape[1:] != (world.SIZE, world.SIZE, 3):
        raise ValueError(f"frames must be (T, {world.SIZE}, {world.SIZE}, 3), got {frames.shape}")
    blobs = find_blobs(frames, scene)
    tracks: list[Track] = []
    for t, frame_blobs in enumerate(blobs):
        _link_frame(tracks, frame_blobs, t, len(frames))
    return Tracks(tracks, blobs)
