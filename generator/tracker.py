"""Track the objects of a world clip and score it against the simulator's truth.

The generation evaluation follows PhyWorld (Kang et al. 2024, "How Far is Video Generation from
World Model: A Physical Law Perspective"): read the objects back out of generated frames and
check colour, shape, count, direction, speed, gravity and permanence against what the simulator
says the caption means. The background of each scene is known exactly (WORLD.md), so an object
is whatever is far from it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from itertools import permutations

import numpy as np

from generator import world
from generator.world import ClipSpec

FG_DISTANCE = 40.0  # RGB distance from the background that counts as an object (noise, blur, H.264)
MIN_AREA = 8  # px; smaller blobs are noise (the smallest object, a disc of radius 4, is ~50 px)
SQUARE_FILL = 0.9  # share of its box a blob fills: disc ~0.8 (pi/4 plus pixel edges), square ~1.0
MAX_COLOUR_DISTANCE = 64.0  # a blob's colour further than this from every palette colour has none
MAX_STEP = 14.0  # px a track may move between frames (a falling object reaches ~8 px/frame)
MERGED_SHARE = 0.75  # a blob of at least this share of two tracks' usual areas may hold both (touching)
PALETTE = np.array(list(world.COLOURS.values()), dtype=np.float32)  # (C, 3)
NAMES = list(world.COLOURS)


@dataclass
class Blob:
    """One connected piece of foreground in one frame."""

    centre: np.ndarray  # (2,) x, y
    area: int
    bbox: tuple[int, int, int, int]  # x0, y0, x1, y1, inclusive
    colour: str | None  # nearest palette colour, None when none is near
    colour_distance: float
    fill: float  # area / bbox area

    @property
    def shape(self) -> str:
        return "square" if self.fill >= SQUARE_FILL else "ball"

    @property
    def radius(self) -> float:
        """Equivalent radius: of a disc, or half the side of a square, with this area."""
        return float(np.sqrt(self.area) / 2 if self.shape == "square" else np.sqrt(self.area / np.pi))


@dataclass
class Track:
    """One object followed through the clip."""

    centres: np.ndarray  # (T, 2), NaN where unseen or merged with another object
    areas: np.ndarray  # (T,), 0 where unseen
    extents: np.ndarray  # (T, 2), bbox width and height, 0 where unseen
    merged: np.ndarray  # (T,) bool, seen only as part of a blob shared with another track
    colours: list[str | None]
    shapes: list[str]

    @property
    def present(self) -> np.ndarray:
        return (self.areas > 0) | self.merged

    @property
    def colour(self) -> str | None:
        return Counter(self.colours).most_common(1)[0][0]

    @property
    def shape(self) -> str:
        return Counter(self.shapes).most_common(1)[0][0]

    def last_centre(self, t: int) -> np.ndarray | None:
        """The latest centre seen before frame t."""
        seen = np.flatnonzero(~np.isnan(self.centres[:t, 0]))
        return self.centres[seen[-1]] if len(seen) else None


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
# Finding blobs


def _colour_fit(frames: np.ndarray, scene: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per pixel: distance from the background, best palette colour and its blend alpha, (T, H, W) each."""
    bg = world.backgrounds([scene])[0].numpy()  # (H, W, 3)
    diff = frames.astype(np.float32) - bg  # (T, H, W, 3)
    toward = PALETTE[None] - bg[:, :, None]  # (H, W, C, 3): background -> palette colour
    alpha = np.einsum("thwk,hwck->thwc", diff, toward) / np.maximum((toward**2).sum(-1), 1.0)
    alpha = alpha.clip(0, 1)  # anti-aliased edges blend the colour with the background
    resid = np.linalg.norm(diff[..., None, :] - alpha[..., None] * toward, axis=-1)  # (T, H, W, C)
    label = resid.argmin(-1)
    return np.linalg.norm(diff, axis=-1), label, np.take_along_axis(alpha, label[..., None], -1)[..., 0]


def _clean(mask: np.ndarray) -> np.ndarray:
    """Keep pixels inside some 2x2 block of foreground (drops specks, keeps square corners), fill pinholes."""
    p = np.pad(mask, ((0, 0), (1, 1), (1, 1)))
    block = p[:, :-1, :-1] & p[:, 1:, :-1] & p[:, :-1, 1:] & p[:, 1:, 1:]  # (T, H+1, W+1): 2x2 block at each corner
    kept = block[:, :-1, :-1] | block[:, 1:, :-1] | block[:, :-1, 1:] | block[:, 1:, 1:]
    q = np.pad(kept, ((0, 0), (1, 1), (1, 1)))
    return kept | (q[:, :-2, 1:-1] & q[:, 2:, 1:-1] & q[:, 1:-1, :-2] & q[:, 1:-1, 2:])


def label_components(mask: np.ndarray) -> np.ndarray:
    """4-connected components of each frame of a (T, H, W) mask; -1 off the mask, else a label."""
    big = mask.size
    lab = np.where(mask, np.arange(big).reshape(mask.shape), big)
    while True:  # propagate the smallest index in each component, with pointer jumping
        p = np.pad(lab, ((0, 0), (1, 1), (1, 1)), constant_values=big)
        new = np.minimum.reduce([lab, p[:, :-2, 1:-1], p[:, 2:, 1:-1], p[:, 1:-1, :-2], p[:, 1:-1, 2:]])
        new = np.where(mask, new, big)
        flat = np.append(new.ravel(), big)
        new = np.where(mask, flat[new], big)
        if np.array_equal(new, lab):
            return np.where(mask, lab, -1)
        lab = new


def _make_blob(frame: np.ndarray, ys: np.ndarray, xs: np.ndarray, core: np.ndarray) -> Blob:
    """A blob from its pixel coordinates; its colour is the mean of its core (opaque) pixels."""
    mean = frame[ys[core], xs[core]].astype(np.float32).mean(0) if core.any() else frame[ys, xs].mean(0)
    dist = np.linalg.norm(PALETTE - mean, axis=1)
    box = (int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max()))
    fill = len(xs) / ((box[2] - box[0] + 1) * (box[3] - box[1] + 1))
    colour = NAMES[int(dist.argmin())] if dist.min() <= MAX_COLOUR_DISTANCE else None
    return Blob(np.array([xs.mean() + 0.5, ys.mean() + 0.5]), len(xs), box, colour, float(dist.min()), fill)


def _split_by_colour(frame: np.ndarray, ys, xs, label: np.ndarray, alpha: np.ndarray) -> list[Blob] | None:
    """Two blobs when the pixels hold two clear palette colours (two objects touching), else None."""
    (first, n1), *rest = Counter(label.tolist()).most_common(2)
    if not rest or rest[0][1] < max(MIN_AREA, 0.15 * len(ys)) or n1 + rest[0][1] < 0.8 * len(ys):
        return None
    parts = [label == first, label == rest[0][0]]
    blobs = [_make_blob(frame, ys[p], xs[p], alpha[p] > 0.6) for p in parts]
    colours = {b.colour for b in blobs}
    return blobs if len(colours) == 2 and None not in colours else None


def _blobs_of(frame: np.ndarray, comp: np.ndarray, label: np.ndarray, alpha: np.ndarray) -> list[Blob]:
    """The blobs of one frame, (H, W) each; a blob of two clear colours is split in two."""
    blobs = []
    for c in np.unique(comp[comp >= 0]):
        ys, xs = np.nonzero(comp == c)
        if len(ys) >= MIN_AREA:
            split = _split_by_colour(frame, ys, xs, label[ys, xs], alpha[ys, xs])
            blobs += split or [_make_blob(frame, ys, xs, alpha[ys, xs] > 0.6)]
    return blobs


def find_blobs(frames: np.ndarray, scene: str) -> list[list[Blob]]:
    """The blobs of every frame of a (T, H, W, 3) uint8 clip."""
    dist, label, alpha = _colour_fit(frames, scene)
    comp = label_components(_clean(dist > FG_DISTANCE))
    return [_blobs_of(f, c, lb, a) for f, c, lb, a in zip(frames, comp, label, alpha)]


# ---------------------------------------------------------------------------------------------
# Following blobs through time


def _new_track(T: int) -> Track:
    return Track(np.full((T, 2), np.nan), np.zeros(T), np.zeros((T, 2)), np.zeros(T, bool), [], [])


def _observe(track: Track, t: int, blob: Blob, merged: bool) -> None:
    track.areas[t], track.merged[t] = blob.area, merged
    track.extents[t] = (blob.bbox[2] - blob.bbox[0] + 1, blob.bbox[3] - blob.bbox[1] + 1)
    if not merged:
        track.centres[t] = blob.centre
        track.colours.append(blob.colour)
        track.shapes.append(blob.shape)


def _usual_area(track: Track) -> float:
    """Median area of the frames where the track was seen alone."""
    alone = track.areas[(track.areas > 0) & ~track.merged]
    return float(np.median(alone)) if len(alone) else 0.0


def _link_frame(tracks: list[Track], blobs: list[Blob], t: int, T: int) -> None:
    """Give each blob of frame t to the nearest track (colour agreeing), start tracks for the rest."""
    pairs = []
    for i, tr in enumerate(tracks):
        last = tr.last_centre(t)
        for j, b in enumerate(blobs):
            d = float(np.linalg.norm(b.centre - last)) if last is not None else np.inf
            if d <= MAX_STEP:
                pairs.append((d + (0 if b.colour == tr.colour else MAX_STEP), i, j))
    owner: dict[int, int] = {}  # blob -> track
    for _, i, j in sorted(pairs):
        if i not in owner.values() and j not in owner:
            owner[j] = i
    shared: dict[int, int] = {}  # track -> blob it shares with the blob's owner
    for _, i, j in sorted(pairs):  # a lost track beside a blob far larger than its owner: they touch
        if i in owner.values() or i in shared or j not in owner or blobs[j].colour != tracks[i].colour:
            continue
        if blobs[j].area >= MERGED_SHARE * (_usual_area(tracks[owner[j]]) + _usual_area(tracks[i])):
            shared[i] = shared[owner[j]] = j
    for j, i in owner.items():
        _observe(tracks[i], t, blobs[j], merged=i in shared)
    for i, j in shared.items():
        _observe(tracks[i], t, blobs[j], merged=True)
    for j, b in enumerate(blobs):
        if j not in owner:
            tracks.append(_new_track(T))
            _observe(tracks[-1], t, b, merged=False)


def track(frames: np.ndarray, scene: str) -> Tracks:
    """Find and follow the objects of a (T, H, W, 3) uint8 clip of the given scene."""
    blobs = find_blobs(frames, scene)
    tracks: list[Track] = []
    for t, frame_blobs in enumerate(blobs):
        _link_frame(tracks, frame_blobs, t, len(frames))
    return Tracks(tracks, blobs)
