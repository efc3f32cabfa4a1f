"""Read the objects back out of world clips and score them against the simulator's truth.

The generation evaluation of PhyWorld (Kang et al. 2024, "How Far is Video Generation from World
Model: A Physical Law Perspective"): track what a generated clip shows, then check colour, shape,
count, direction, speed, gravity and permanence against what its caption means. Each scene's
background is known exactly (WORLD.md), so an object is whatever is far from it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from itertools import permutations

import numpy as np

from generator import world
from generator.world import ClipSpec

FG_DISTANCE = 40.0  # RGB distance from the background (3x3 averaged) that is an object; noise, blur, H.264 stay under
MIN_AREA, MAX_AREA = 8, 1024  # px; smaller is noise (a disc of radius 4 is ~50), larger a broken background
SQUARE_FILL = 0.9  # fill between a disc's pi/4 and a square's 1 (measured: disc < 0.88, square > 0.94)
MAX_COLOUR_DISTANCE = 64.0  # further than this from every palette colour: no colour (palette gaps are > 100)
MAX_STEP = 14.0  # px a track may move between frames (a falling object reaches ~8 px/frame)
MERGED_SHARE = 0.75  # a blob of this share of two tracks' usual areas holds both (touching, one colour)
MIN_TRACK = 3  # frames a track must last to be an object rather than flicker
MIN_SPEED, FIT_RMS = 0.5, 1.5  # a mover reaches px/frame, and keeps within px of a reflecting straight path
FIT_TIE = 0.1  # px of rms within which both directions fit equally (an object starting at an edge)
BAND_TOLERANCE, GRAVITY_TOLERANCE = 0.2, 0.2  # px/frame around a speed band, px/frame^2 around world.GRAVITY
BOTTOM_MARGIN = 6.0  # px above the bottom edge where a fall turns (the frame nearest the bounce may be either side)
APPROACH = 2.0  # px colliding objects must close in, and then part
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


def _persistent(tracks: Tracks) -> list[Track]:
    """Tracks present in at least MIN_TRACK frames, longest first."""
    return sorted((tr for tr in tracks.tracks if tr.present.sum() >= MIN_TRACK), key=lambda tr: -tr.present.sum())


def _match(tracks: Tracks, spec: ClipSpec, centres: np.ndarray | None) -> list[Track | None]:
    """The track of each true object: long, of its colour and shape, near its true path when given."""

    def score(tr: Track, k: int) -> float:
        n = min(len(tr.blobs), len(centres)) if centres is not None else 0
        d = np.linalg.norm(tr.centres[:n] - centres[:n, k], axis=1) if n else np.zeros(1)
        near = np.nanmean(d) if not np.isnan(d).all() else 1e3
        same = 2 * (tr.colour == spec.objects[k].colour) + (tr.shape == spec.objects[k].shape)
        return tr.present.sum() + world.NUM_FRAMES * same - near

    K, candidates = len(spec.objects), _persistent(tracks)[:6]
    options = permutations(candidates, min(K, len(candidates)))
    best = max(options, key=lambda p: sum(score(tr, k) for k, tr in enumerate(p)), default=())
    return list(best) + [None] * (K - len(best))


# ---------------------------------------------------------------------------------------------
# Metrics


def _fold_fit(t: np.ndarray, x: np.ndarray, low: float, high: float, sign: int) -> tuple[float, float]:
    """(rms px, speed) of the best x ~ x0 + sign * speed * t reflected between walls at low and high."""
    x0 = np.clip(x[0] + np.arange(-3, 3.01, 0.25), low, high)[:, None, None]
    v = np.arange(0, 6.01, 0.05)[None, :, None]
    m = np.mod(x0 + sign * v * (t - t[0]) - low, 2 * (high - low))  # (X0, V, N), unfolded
    path = low + np.minimum(m, 2 * (high - low) - m)
    rms = np.sqrt(((path - x) ** 2).mean(-1))  # (X0, V)
    i, j = np.unravel_index(rms.argmin(), rms.shape)
    return float(rms[i, j]), float(v[0, j, 0])


def _moving_ok(tr: Track, motion: str) -> bool:
    """Moves along the caption's direction (reflecting off the edges) and barely across it."""
    dx, dy = world.DIRECTIONS[motion.split()[-1]]
    axis, sign = (0, int(dx)) if dx else (1, int(dy))
    c = tr.centres  # (T, 2)
    t = np.flatnonzero(~np.isnan(c[:, 0]))
    if len(t) < 3:
        return False
    x, across, r = c[t, axis], c[t, 1 - axis], tr.radius
    (rms, v), (other, _) = (_fold_fit(t, x, r, world.SIZE - r, s) for s in (sign, -sign))
    return rms <= min(other + FIT_TIE, FIT_RMS) and v >= MIN_SPEED and np.median(np.abs(np.diff(across))) < 0.5 * v


def _speed_band_ok(tr: Track | None, motion: str) -> bool | None:
    """Median speed along the axis, leaving out steps beside a turn (reflections), within the caption's band."""
    if not motion.startswith("moving"):
        return None
    words = motion.split()
    low, high = world.SPEED_BANDS[words[1] if len(words) == 3 else ""]
    if tr is None:
        return False
    d = np.diff(tr.centres[:, 0 if world.DIRECTIONS[words[-1]][0] else 1])  # (T-1,)
    s = np.sign(d)
    prev, nxt = np.r_[np.nan, s[:-1]], np.r_[s[1:], np.nan]
    keep = ~np.isnan(d) & (np.isnan(prev) | (prev == s)) & (np.isnan(nxt) | (nxt == s))
    keep = keep if keep.any() else ~np.isnan(d)
    return keep.any() and low - BAND_TOLERANCE <= np.median(np.abs(d[keep])) <= high + BAND_TOLERANCE


def _colliding_ok(a: Track, b: Track) -> bool:
    """Two objects close in, then part, without passing through each other (unless they look alike)."""
    gap = b.centres[:, 0] - a.centres[:, 0]  # (T,)
    gap = np.abs(gap) if (a.colour, a.shape) == (b.colour, b.shape) else gap  # alike: a bounce looks like passing
    gap[a.merged | b.merged] = 0.0  # touching
    gap = gap[~np.isnan(gap)]
    if len(gap) < 3:
        return False
    gap = gap * np.sign(gap[0])  # positive while in their starting order
    parted = any(gap[0] - gap[t] > APPROACH and gap[t:].max() - gap[t] > APPROACH for t in range(len(gap)))
    return parted and gap.min() > -APPROACH


def _bounce(y: np.ndarray, r: float) -> int | None:
    """Index of the lowest point if the path turns clearly upward there, near the bottom edge."""
    i = int(np.argmax(y))
    turns = i + 1 < len(y) and y[i] - y[i + 1 :].min() > 0.5 and y[i] + r >= world.SIZE - BOTTOM_MARGIN
    return i if turns else None


def _gravity_ok(tr: Track | None, spec: ClipSpec, centres: np.ndarray | None) -> bool:
    """Fitted acceleration before the bounce is the world's, and it bounces when the truth does."""
    if tr is None:
        return False
    t = np.flatnonzero(~np.isnan(tr.centres[:, 1]))
    y, truth = tr.centres[t, 1], centres if centres is not None else world.simulate(spec)
    turn = _bounce(y, tr.radius)
    fall = slice(0, turn if turn is not None else len(t))  # the lowest frame may be past the bounce already
    if len(t[fall]) < 4 or (turn is None) != (_bounce(truth[:, 0, 1], spec.objects[0].radius) is None):
        return False
    return abs(2 * np.polyfit(t[fall], y[fall], 2)[0] - world.GRAVITY) <= GRAVITY_TOLERANCE


def _direction_ok(matched: list[Track | None], motion: str) -> bool:
    """Moving: the caption's direction; falling: down first; colliding: close in, then part."""
    if any(tr is None for tr in matched):
        return False
    if motion == "colliding":
        return _colliding_ok(*matched)
    if motion == "falling":
        y = matched[0].centres[~np.isnan(matched[0].centres[:, 1]), 1]
        return len(y) >= 4 and y[3] - y[0] > 1.0
    return _moving_ok(matched[0], motion)


def _permanence_ok(tracks: Tracks, matched: list[Track | None]) -> bool:
    """Each object in every frame at a steady size (within 50% of its median), and no other object lasting."""
    for tr in matched:
        if tr is None or not tr.present.all() or any(abs(b.area - tr.area) > 0.5 * tr.area for b in tr.alone):
            return False
    return all(any(tr is m for m in matched) for tr in _persistent(tracks))


def _velocity_error(matched: list[Track | None], centres: np.ndarray) -> float | None:
    """Mean |v_clip - v_true|, px/frame, over the steps where a matched object is seen at both ends."""
    errors = []
    for k, tr in enumerate(matched):
        if tr is not None:
            n = min(len(tr.centres), len(centres))
            e = np.linalg.norm(np.diff(tr.centres[:n], axis=0) - np.diff(centres[:n, k], axis=0), axis=1)
            errors += e[~np.isnan(e)].tolist()
    return float(np.mean(errors)) if errors else None


def evaluate_clip(frames: np.ndarray, truth_spec: ClipSpec, truth_centres: np.ndarray | None = None) -> dict:
    """Score a (T, H, W, 3) uint8 clip against what its caption means; None where a metric does not apply.

    Pass `truth_centres` (T, K, 2) only when the clip should follow that exact path (e.g. it was
    continued from the truth's first frames): it then also gives `velocity_error`.
    """
    tracks = track(frames, truth_spec.scene)
    matched = _match(tracks, truth_spec, truth_centres)
    objects = truth_spec.objects
    motion = "colliding" if len(objects) == 2 else objects[0].motion
    colours = Counter(tr.colour for tr in tracks.tracks if tr.present.sum() * 2 >= len(frames))
    checks = {
        "colour": not Counter(o.colour for o in objects) - colours,
        "shape": all(tr is not None and tr.shape == o.shape for tr, o in zip(matched, objects)),
        "count": np.mean(tracks.counts == len(objects)) > 0.5,
        "direction": _direction_ok(matched, motion),
        "speed_band": _speed_band_ok(matched[0], motion),
        "gravity": _gravity_ok(matched[0], truth_spec, truth_centres) if motion == "falling" else None,
        "permanence": _permanence_ok(tracks, matched),
    }
    error = _velocity_error(matched, truth_centres) if truth_centres is not None else None
    return {k: None if v is None else bool(v) for k, v in checks.items()} | {"velocity_error": error}


def summarize(results: list[dict]) -> dict:
    """Share of True for each metric and the mean velocity error, leaving out None."""
    keys = results[0] if results else []
    values = {k: [r[k] for r in results if r[k] is not None] for k in keys}
    return {k: float(np.mean(v)) if v else None for k, v in values.items()}


def guess_scene(frames: np.ndarray) -> str:
    """The scene whose background is nearest to most pixels of a (T, H, W, 3) clip."""
    bgs = world.backgrounds(list(world.SCENES)).numpy()  # (S, H, W, 3)
    d = np.linalg.norm(frames[:, None].astype(np.float32) - bgs[None], axis=-1)  # (T, S, H, W)
    return list(world.SCENES)[int(np.median(d, axis=(0, 2, 3)).argmin())]


def seam_velocity_ok(frames: np.ndarray, seam: int, tol: float = 1.0, scene: str | None = None) -> bool | None:
    """Whether each object's velocity across an `extend` seam is within tol px/frame of the one just before.

    Compares frames seam-1 -> seam with seam-2 -> seam-1; an object lost at the seam fails; None when no
    object is followed up to the seam. A bounce or reflection right at the seam also fails.
    """
    jumps = []
    for tr in _persistent(track(frames, scene or guess_scene(frames))):
        c = tr.centres[seam - 2 : seam + 1]  # (3, 2)
        if not np.isnan(c[:2]).any() and not tr.merged[seam]:
            jumps.append(np.inf if np.isnan(c[2]).any() else np.linalg.norm((c[2] - c[1]) - (c[1] - c[0])))
    return bool(max(jumps) <= tol) if jumps else None
