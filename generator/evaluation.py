"""Scores for generated clips against the simulator's truth (PhyWorld, Kang et al. 2024).

The tracker reads what a clip shows; these functions check it against what its caption means:
colour, shape, count, direction, speed band, gravity and permanence, and the velocity error
against the true trajectory when the clip should follow it (a clip continued from true frames).
"""

from __future__ import annotations

from collections import Counter
from itertools import permutations

import numpy as np

from generator import world
from generator.tracker import MIN_TRACK, Track, Tracks, track
from generator.world import ClipSpec

MIN_SPEED, FIT_RMS = 0.5, 1.5  # a mover reaches px/frame, and keeps within px of a reflecting straight path
FIT_TIE = 0.1  # px of rms within which both directions fit equally (an object starting at an edge)
BAND_TOLERANCE, GRAVITY_TOLERANCE = 0.2, 0.2  # px/frame around a speed band, px/frame^2 around world.GRAVITY
BOTTOM_MARGIN = 6.0  # px above the bottom edge where a fall turns (the frame nearest the bounce may be either side)
APPROACH = 2.0  # px colliding objects must close in, and then part
EARLY_FRAMES, STALL_PX = 8, 2.0  # a mover that shifts less than STALL_PX along its axis over EARLY_FRAMES stalls


def _persistent(tracks: Tracks) -> list[Track]:
    """Tracks present in at least MIN_TRACK frames, longest first."""
    return sorted((tr for tr in tracks.tracks if tr.present.sum() >= MIN_TRACK), key=lambda tr: -tr.present.sum())


Look = tuple[str | None, str | None]  # an object's colour and shape; None where a prompt does not say


def _match(tracks: Tracks, looks: list[Look], centres: np.ndarray | None) -> list[Track | None]:
    """The track of each object (`looks`): long, of its colour and shape, near its true path when given."""

    def score(tr: Track, k: int) -> float:
        n = min(len(tr.blobs), len(centres)) if centres is not None else 0
        d = np.linalg.norm(tr.centres[:n] - centres[:n, k], axis=1) if n else np.zeros(1)
        near = np.nanmean(d) if not np.isnan(d).all() else 1e3
        same = 2 * (tr.colour == looks[k][0]) + (tr.shape == looks[k][1])
        return tr.present.sum() + world.NUM_FRAMES * same - near

    K, candidates = len(looks), _persistent(tracks)[:6]
    options = permutations(candidates, min(K, len(candidates)))
    best = max(options, key=lambda p: sum(score(tr, k) for k, tr in enumerate(p)), default=())
    return list(best) + [None] * (K - len(best))


def _looks(spec: ClipSpec) -> list[Look]:
    return [(o.colour, o.shape) for o in spec.objects]


def _axis_and_sign(direction: str) -> tuple[int, int]:
    """The axis a direction word moves along (0: x, 1: y) and which way along it (+1 or -1)."""
    dx, dy = world.DIRECTIONS[direction]
    return (0, int(dx)) if dx else (1, int(dy))


def motion_kind(spec: ClipSpec) -> str:
    """"left/right", "up/down", "falling" or "colliding": the kinds of motion direction is scored on."""
    direction = world.direction_of(spec)
    return spec.motion if direction is None else ("left/right", "up/down")[_axis_and_sign(direction)[0]]


def _moving_ok(tr: Track, motion: str) -> bool:
    """Moves along the caption's direction (reflecting off the edges) and barely across it."""
    axis, sign = _axis_and_sign(motion.split()[-1])
    c = tr.centres  # (T, 2)
    t = np.flatnonzero(~np.isnan(c[:, 0]))
    if len(t) < 3:
        return False
    x, across, r = c[t, axis], c[t, 1 - axis], tr.radius
    (rms, v), (other, _) = (world.fit_reflecting_path(t, x, r, world.SIZE - r, s) for s in (sign, -sign))
    return rms <= min(other + FIT_TIE, FIT_RMS) and v >= MIN_SPEED and np.median(np.abs(np.diff(across))) < 0.5 * v


def _speed_band_ok(tr: Track | None, motion: str) -> bool | None:
    """Median speed along the axis, leaving out steps beside a turn (reflections), within the caption's band."""
    if not motion.startswith("moving"):
        return None
    words = motion.split()
    low, high = world.SPEED_BANDS[words[1] if len(words) == 3 else ""]
    if tr is None:
        return False
    d = np.diff(tr.centres[:, _axis_and_sign(words[-1])[0]])  # (T-1,)
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
    matched = _match(tracks, _looks(truth_spec), truth_centres)
    objects, motion = truth_spec.objects, truth_spec.motion
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


def prompt_checks(frames: np.ndarray, looks: list[Look], motion: str, scene: str) -> dict[str, bool]:
    """Direction, permanence and shape as above for a (T, H, W, 3) uint8 clip of `scene`, from what a prompt
    says instead of a simulated clip's truth: its objects' looks (in the prompt's order; a shape it does not
    say counts as right) and its motion ("moving [slowly|quickly] <direction>", "falling" or "colliding").
    What a noise search checks its finished candidates for (`generator.motion.shows_asked`)."""
    tracks = track(frames, scene)
    matched = _match(tracks, looks, None)
    return {"direction": _direction_ok(matched, motion), "permanence": _permanence_ok(tracks, matched),
            "shape": all(tr is not None and shape in (None, tr.shape) for tr, (_, shape) in zip(matched, looks))}


def direction_fault(frames: np.ndarray, spec: ClipSpec) -> str | None:
    """Why a clip of one object moving in a direction fails the direction check: "no object" (none is
    followed), "stalled" (it shifts less than STALL_PX along its axis over the first EARLY_FRAMES frames),
    "wrong way", or "path" (the asked way, but not a steady path reflecting off the edges). None when the
    clip passes, or its caption names no direction (falling, colliding)."""
    direction = world.direction_of(spec)
    if direction is None:
        return None
    (tr,) = _match(track(frames, spec.scene), _looks(spec), None)
    if tr is None:
        return "no object"
    if _moving_ok(tr, spec.motion):
        return None
    axis, sign = _axis_and_sign(direction)
    along = tr.centres[:EARLY_FRAMES, axis]
    along = along[~np.isnan(along)]
    shift = (along[-1] - along[0]) * sign if len(along) > 1 else 0.0
    return "stalled" if abs(shift) < STALL_PX else "path" if shift > 0 else "wrong way"


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
