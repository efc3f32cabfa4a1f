"""The synthetic physics world (docs/world.md): coloured balls and squares, simulated and rendered.

The simulator is the source of truth for training and evaluation: every clip comes with its
caption, its attributes and each object's centre in every frame. Simulation is a few hundred
floating point steps per clip (NumPy); rendering is vectorised over whole batches of clips in
torch, so it runs on the GPU when one is given.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

SIZE = 64  # frame width and height in pixels
NUM_FRAMES = 16
FPS = 8

SCENES = {
    "on black": ((0, 0, 0), (0, 0, 0)),
    "in a forest": ((25, 80, 40), (25, 80, 40)),
    "at sunset": ((255, 150, 70), (120, 50, 110)),  # top and bottom of a vertical gradient
}
COLOURS = {
    "red": (220, 40, 40),
    "green": (40, 190, 70),
    "blue": (50, 100, 230),
    "yellow": (240, 210, 40),
    "purple": (150, 70, 200),
    "white": (235, 235, 235),
}
SHAPES = ("ball", "square")
DIRECTIONS = {"left": (-1.0, 0.0), "right": (1.0, 0.0), "up": (0.0, -1.0), "down": (0.0, 1.0)}
OPPOSITE = {"left": "right", "right": "left", "up": "down", "down": "up"}
SPEED_BANDS = {"slowly": (0.8, 1.5), "": (1.5, 3.0), "quickly": (3.0, 4.5)}  # px per frame
# other words for the same thing, which training captions use now and then (the canonical ones first)
SHAPE_SYNONYMS = {"ball": ("ball", "circle", "disc"), "square": ("square", "box", "block")}
SPEED_SYNONYMS = {"slowly": ("slowly", "slow"), "quickly": ("quickly", "fast")}
SCENE_SYNONYMS = {"on black": ("on black", "on a black background"), "in a forest": ("in a forest", "in the forest"),
                  "at sunset": ("at sunset",)}
RADIUS_RANGE = (4, 7)
GRAVITY = 0.5  # px per frame squared, downward
BOUNCE = 0.8  # share of speed kept when a falling object bounces off the bottom


@dataclass(frozen=True)
class ObjectSpec:
    """One object: what it looks like and how it moves."""

    shape: str
    colour: str
    radius: int
    motion: str  # "moving left", "moving quickly up", "falling" or "colliding"


@dataclass(frozen=True)
class ClipSpec:
    """Everything that decides a clip, before simulation."""

    scene: str
    objects: tuple[ObjectSpec, ...]
    speeds: tuple[float, ...]  # initial speed of each object, px per frame
    starts: tuple[tuple[float, float], ...]  # initial centre (x, y) of each object

    @property
    def caption(self) -> str:
        return caption_of(self.scene, self.objects)

    @property
    def motion(self) -> str:
        """The caption's motion words: "colliding" for two objects, else the object's motion."""
        return "colliding" if len(self.objects) == 2 else self.objects[0].motion


@dataclass
class WorldClip:
    """A rendered clip with its truth."""

    spec: ClipSpec
    frames: np.ndarray  # (T, H, W, 3) uint8
    centres: np.ndarray  # (T, K, 2) float, each object's centre (x, y) per frame

    @property
    def caption(self) -> str:
        return self.spec.caption

    def truth(self) -> dict:
        """The JSON-ready record of what is in the clip and where."""
        return {
            "caption": self.caption,
            "scene": self.spec.scene,
            "objects": [asdict(o) | {"speed": s} for o, s in zip(self.spec.objects, self.spec.speeds)],
            "fps": FPS,
            "centres": np.round(self.centres, 3).tolist(),
        }


def caption_of(scene: str, objects: tuple[ObjectSpec, ...]) -> str:
    """The canonical caption (docs/world.md, "Captions")."""
    if len(objects) == 2:
        a, b = objects
        return f"a {a.colour} {a.shape} and a {b.colour} {b.shape} colliding {scene}"
    (o,) = objects
    return f"a {o.colour} {o.shape} {o.motion} {scene}"


def motion_words(speed_word: str, direction: str) -> str:
    return f"moving {speed_word} {direction}" if speed_word else f"moving {direction}"


# ---------------------------------------------------------------------------------------------
# Sampling clip specs


def sample_spec(rng: np.random.Generator) -> ClipSpec:
    """Draw one clip: 60% one object moving in a direction, 20% falling, 20% two colliding."""
    scene = str(rng.choice(list(SCENES)))
    kind = rng.choice(["moving", "falling", "colliding"], p=[0.6, 0.2, 0.2])
    if kind == "colliding":
        return _sample_colliding(rng, scene)
    obj = _sample_object(rng, "falling")
    r = obj.radius
    if kind == "falling":
        x = rng.uniform(r, SIZE - r)
        y = rng.uniform(r, SIZE / 3 + r)  # top (y - r) in the upper third
        return ClipSpec(scene, (obj,), (0.0,), ((x, y),))
    speed_word = str(rng.choice(["slowly", "", "quickly"], p=[0.25, 0.5, 0.25]))
    direction = str(rng.choice(list(DIRECTIONS)))
    speed = rng.uniform(*SPEED_BANDS[speed_word])
    obj = ObjectSpec(obj.shape, obj.colour, r, motion_words(speed_word, direction))
    start = (rng.uniform(r, SIZE - r), rng.uniform(r, SIZE - r))
    return ClipSpec(scene, (obj,), (speed,), (start,))


def direction_of(spec: ClipSpec) -> str | None:
    """The direction a clip's one object moves in ("left", ...); None for falling and colliding."""
    motion = spec.objects[0].motion
    return motion.split()[-1] if len(spec.objects) == 1 and motion.startswith("moving") else None


def turned_round(spec: ClipSpec) -> ClipSpec | None:
    """The same clip with its object moving the opposite way (same start, speed and look), or None
    unless it is one object moving in a direction: what a direction word must not mean."""
    direction = direction_of(spec)
    if direction is None:
        return None
    (obj,) = spec.objects
    turned = replace(obj, motion=obj.motion.removesuffix(direction) + OPPOSITE[direction])
    return replace(spec, objects=(turned,))


def started_upstream(spec: ClipSpec, rng: np.random.Generator) -> ClipSpec:
    """The same clip with its object started where it crosses the frame the way it moves without
    reflecting off an edge (from the far edge when its path is longer than the frame); other clips
    unchanged.

    Drawn uniformly, starts make a clip's frames look alike whichever way it moves: most objects
    turn at an edge, so where an object is in the first frames hardly tells where it is in the last.
    Started upstream, "moving left" means "on the right first, then on the left", which a denoiser
    learns from what each frame shows rather than only from how frames correlate.
    """
    direction = direction_of(spec)
    if direction is None:
        return spec
    (obj,), (speed,), ((x, y),) = spec.objects, spec.speeds, spec.starts
    (dx, dy), r = DIRECTIONS[direction], obj.radius
    travel = min(speed * (NUM_FRAMES - 1), SIZE - 2 * r)
    along = rng.uniform(r + travel, SIZE - r)  # the start's distance from the edge it moves toward
    if dx:
        x = along if dx < 0 else SIZE - along
    else:
        y = along if dy < 0 else SIZE - along
    return replace(spec, starts=((float(x), float(y)),))


def _sample_object(rng: np.random.Generator, motion: str) -> ObjectSpec:
    return ObjectSpec(
        shape=str(rng.choice(SHAPES)),
        colour=str(rng.choice(list(COLOURS))),
        radius=int(rng.integers(RADIUS_RANGE[0], RADIUS_RANGE[1] + 1)),
        motion=motion,
    )


def _sample_colliding(rng: np.random.Generator, scene: str) -> ClipSpec:
    """Two objects on one horizontal line that meet between frames 2 and 10."""
    a, b = _sample_object(rng, "colliding"), _sample_object(rng, "colliding")
    va, vb = rng.uniform(1.5, 3.0, size=2)
    gap = rng.uniform(2.0, 10.0) * (va + vb)  # free distance between the edges, px
    span = a.radius + gap + b.radius
    if span > SIZE - a.radius - b.radius:  # too wide for the frame: shrink the gap to fit
        gap = SIZE - 2 * (a.radius + b.radius) - 1.0
        span = a.radius + gap + b.radius
    xa = rng.uniform(a.radius, SIZE - b.radius - span)
    y = rng.uniform(max(a.radius, b.radius), SIZE - max(a.radius, b.radius))
    return ClipSpec(scene, (a, b), (float(va), float(vb)), ((xa, y), (xa + span, y)))


# ---------------------------------------------------------------------------------------------
# Simulation


def simulate(spec: ClipSpec, num_frames: int = NUM_FRAMES) -> np.ndarray:
    """Each object's centre (x, y) in every frame, (T, K, 2); frame 0 is the initial state."""
    return simulate_batch([spec], num_frames)[0]


def simulate_batch(specs: list[ClipSpec], num_frames: int = NUM_FRAMES) -> list[np.ndarray]:
    """`simulate` for many clips at once: the same arithmetic on (B, K, 2) arrays, so each clip's centres are
    exactly those it has alone (a training batch simulates in a few array operations a frame, not a loop
    over clips)."""
    B, K = len(specs), max(len(s.objects) for s in specs)
    pos, vel = np.zeros((B, K, 2)), np.zeros((B, K, 2))
    radii, falling, pair = np.ones((B, K)), np.zeros((B, K), bool), np.array([len(s.objects) == 2 for s in specs])
    for b, spec in enumerate(specs):
        for k, (obj, speed) in enumerate(zip(spec.objects, spec.speeds)):
            pos[b, k], vel[b, k] = spec.starts[k], _initial_velocity(obj, speed)
            radii[b, k], falling[b, k] = obj.radius, obj.motion == "falling"
    vel[pair, -1, 0] *= -1  # the right-hand object of a pair moves left, toward the other
    out = np.empty((num_frames, B, K, 2))
    out[0] = pos
    for t in range(1, num_frames):
        vel[..., 1] += np.where(falling, GRAVITY, 0.0)
        pos += vel
        _reflect_off_edges(pos, vel, radii, falling)
        _collide(pos, vel, radii, pair)
        out[t] = pos
    return [out[:, b, :len(spec.objects)].copy() for b, spec in enumerate(specs)]


def _initial_velocity(obj: ObjectSpec, speed: float) -> tuple[float, float]:
    if obj.motion == "falling":
        return (0.0, 0.0)
    if obj.motion == "colliding":
        return (speed, 0.0)  # toward the right; simulate() turns the second one round
    dx, dy = DIRECTIONS[obj.motion.split()[-1]]
    return (dx * speed, dy * speed)


def _reflect_off_edges(pos, vel, radii, falling) -> None:
    """Elastic reflection off all four edges; falling objects keep 80% off the bottom. (..., K, 2) arrays."""
    for axis in (0, 1):
        low, high = radii, SIZE - radii
        under, over = pos[..., axis] < low, pos[..., axis] > high
        pos[..., axis] = np.where(under, 2 * low - pos[..., axis], pos[..., axis])
        vel[..., axis] = np.where(under, -vel[..., axis], vel[..., axis])
        keep = np.where(falling & (axis == 1), BOUNCE, 1.0)
        pos[..., axis] = np.where(over, high - keep * (pos[..., axis] - high), pos[..., axis])
        vel[..., axis] = np.where(over, vel[..., axis] * -keep, vel[..., axis])


def fit_reflecting_path(t: np.ndarray, x: np.ndarray, low: float, high: float, sign: int) -> tuple[float, float]:
    """(rms px, speed px/frame) of the steady path that best fits positions x at frames t along one axis: it
    starts near x[0], moves the way `sign` (+1 or -1) at a constant speed (0 to 6 px/frame) and turns back at
    walls at `low` and `high`, as a mover does at the frame's edges (`_reflect_off_edges`)."""
    x0 = np.clip(x[0] + np.arange(-3, 3.01, 0.25), low, high)[:, None, None]
    v = np.arange(0, 6.01, 0.05)[None, :, None]
    m = np.mod(x0 + sign * v * (t - t[0]) - low, 2 * (high - low))  # (X0, V, N), unfolded
    path = low + np.minimum(m, 2 * (high - low) - m)
    rms = np.sqrt(((path - x) ** 2).mean(-1))  # (X0, V)
    i, j = np.unravel_index(rms.argmin(), rms.shape)
    return float(rms[i, j]), float(v[0, j, 0])


def _collide(pos, vel, radii, pair) -> None:
    """Equal masses, perfectly elastic: the two objects of each clip in `pair` (B,) exchange velocities where
    they meet, positions as if hit on time. (B, K, 2) arrays."""
    if not pair.any():
        return
    left = np.where(pos[:, 0, 0] <= pos[:, -1, 0], 0, pos.shape[1] - 1)  # (B,) the left object's index
    right = pos.shape[1] - 1 - left
    rows = np.arange(len(pos))
    overlap = radii[:, 0] + radii[:, -1] - (pos[rows, right, 0] - pos[rows, left, 0])
    hit = pair & (overlap > 0) & (vel[rows, left, 0] > vel[rows, right, 0])
    vel[hit, 0, 0], vel[hit, -1, 0] = vel[hit, -1, 0], vel[hit, 0, 0].copy()
    pos[rows[hit], left[hit], 0] -= overlap[hit]
    pos[rows[hit], right[hit], 0] += overlap[hit]


# ---------------------------------------------------------------------------------------------
# Rendering


@dataclass
class Drawing:
    """What `draw` paints, as arrays a worker process can make and send (`pack`): for each clip of a batch
    and each of its objects (K slots, unused ones absent), where it is in each frame and how it looks."""

    positions: np.ndarray  # (B, T, K, 2) float32: centres (x, y)
    radius: np.ndarray  # (B, K) float32
    colour: np.ndarray  # (B, K, 3) float32, 0..255
    square: np.ndarray  # (B, K) bool
    present: np.ndarray  # (B, K) float32: 1 for an object, 0 for an unused slot
    top: np.ndarray  # (B, 3) float32: the scene's colour at the top row
    bottom: np.ndarray  # (B, 3) float32: and at the bottom row


def pack(specs: list[ClipSpec], centres: list[np.ndarray]) -> Drawing:
    """The `Drawing` of simulated clips (`simulate`'s centres)."""
    B, T, K = len(specs), centres[0].shape[0], max(len(s.objects) for s in specs)
    drawing = Drawing(np.zeros((B, T, K, 2), np.float32), np.zeros((B, K), np.float32),
                      np.zeros((B, K, 3), np.float32), np.zeros((B, K), bool), np.zeros((B, K), np.float32),
                      np.array([SCENES[s.scene][0] for s in specs], np.float32),
                      np.array([SCENES[s.scene][1] for s in specs], np.float32))
    for b, (spec, c) in enumerate(zip(specs, centres)):
        for k, obj in enumerate(spec.objects):
            drawing.positions[b, :, k] = c[:, k]
            drawing.radius[b, k] = obj.radius
            drawing.colour[b, k] = COLOURS[obj.colour]
            drawing.square[b, k] = obj.shape == "square"
            drawing.present[b, k] = 1.0
    return drawing


def draw(drawing: Drawing, device: str | torch.device = "cpu") -> torch.Tensor:
    """Paint a `Drawing`: (B, T, H, W, 3) uint8 on `device`, anti-aliased, later objects over earlier ones."""
    pos, radius, colour, square, present, top, bottom = (
        torch.from_numpy(x).to(device, non_blocking=True) for x in (
            drawing.positions, drawing.radius, drawing.colour, drawing.square, drawing.present, drawing.top,
            drawing.bottom))
    B, num_frames, k_max = pos.shape[:3]
    image = _gradient(top, bottom)[:, None].expand(B, num_frames, SIZE, SIZE, 3)
    grid = torch.arange(SIZE, device=device, dtype=torch.float32) + 0.5  # pixel centres
    for k in range(k_max):
        dx = grid.view(1, 1, 1, SIZE) - pos[:, :, k, 0, None, None]  # (B, T, 1, W)
        dy = grid.view(1, 1, SIZE, 1) - pos[:, :, k, 1, None, None]  # (B, T, H, 1)
        r = radius[:, k].view(B, 1, 1, 1)
        disc = (r + 0.5 - torch.sqrt(dx * dx + dy * dy)).clamp(0, 1)
        box = (r + 0.5 - dx.abs()).clamp(0, 1) * (r + 0.5 - dy.abs()).clamp(0, 1)
        alpha = torch.where(square[:, k].view(B, 1, 1, 1), box, disc) * present[:, k].view(B, 1, 1, 1)
        alpha = alpha[..., None]  # (B, T, H, W, 1)
        image = image * (1 - alpha) + colour[:, k].view(B, 1, 1, 1, 3) * alpha
    return image.round().clamp(0, 255).to(torch.uint8)


def render(specs: list[ClipSpec], centres: list[np.ndarray], device: str | torch.device = "cpu") -> torch.Tensor:
    """Render a batch of simulated clips, (B, T, H, W, 3) uint8 on `device`."""
    return draw(pack(specs, centres), device)


def backgrounds(scenes: list[str], device: str | torch.device = "cpu") -> torch.Tensor:
    """Background images, (B, H, W, 3) float in 0..255."""
    top = torch.tensor([SCENES[s][0] for s in scenes], dtype=torch.float32, device=device)
    bottom = torch.tensor([SCENES[s][1] for s in scenes], dtype=torch.float32, device=device)
    return _gradient(top, bottom)


def _gradient(top: torch.Tensor, bottom: torch.Tensor) -> torch.Tensor:
    """(B, H, W, 3) float images shading from the (B, 3) colours at the top row to those at the bottom."""
    rows = torch.arange(SIZE, dtype=torch.float32, device=top.device) / (SIZE - 1)  # (H,)
    col = top[:, None] + (bottom - top)[:, None] * rows[None, :, None]  # (B, H, 3)
    return col[:, :, None, :].expand(len(top), SIZE, SIZE, 3)


# ---------------------------------------------------------------------------------------------
# Public entry points


def make_clips(specs: list[ClipSpec], device: str | torch.device = "cpu") -> list[WorldClip]:
    """Simulate and render clips for the given specs."""
    centres = simulate_batch(specs)
    frames = render(specs, centres, device).cpu().numpy()
    return [WorldClip(s, f, c) for s, f, c in zip(specs, frames, centres)]


def clip_rng(seed: int, index: int) -> np.random.Generator:
    """The random stream of clip `index` in the data set of `seed` (independent of batching)."""
    return np.random.default_rng([seed, index])


def sample_clips(seed: int, start: int, count: int, device: str | torch.device = "cpu") -> list[WorldClip]:
    """Clips start..start+count of the deterministic stream of `seed`."""
    specs = [sample_spec(clip_rng(seed, i)) for i in range(start, start + count)]
    return make_clips(specs, device)


def write_dataset(out_dir: str | Path, n: int, seed: int, batch: int = 64, progress=None) -> list[Path]:
    """Write `n` clips as `NNNNN.mp4` with a `NNNNN.json` truth record beside each."""
    from generator.video import write_mp4

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for start in range(0, n, batch):
        for offset, clip in enumerate(sample_clips(seed, start, min(batch, n - start))):
            stem = out / f"{start + offset:05d}"
            write_mp4(stem.with_suffix(".mp4"), clip.frames, FPS)
            stem.with_suffix(".json").write_text(json.dumps(clip.truth()))
            paths.append(stem.with_suffix(".mp4"))
            if progress:
                progress(1)
    return paths


# ---------------------------------------------------------------------------------------------
# Queries: partial descriptions of clips, and whether a clip satisfies one


@dataclass(frozen=True)
class Query:
    """The attributes a text names; None means the text does not care."""

    scene: str | None = None
    objects: tuple[tuple[str | None, str | None], ...] = ()  # (colour, shape) per named object
    motion: str | None = None  # "falling", "colliding", "moving [slowly|quickly] DIR"

    @property
    def text(self) -> str:
        """The query in the canonical word order (docs/world.md, "Captions")."""
        nouns = [_noun_phrase(c, s) for c, s in self.objects] or ["something"]
        words = [" and ".join(nouns)]
        if self.motion:
            words.append(self.motion)
        if self.scene:
            words.append(self.scene)
        return " ".join(words)

    def matches(self, spec: ClipSpec, *, visible_only: bool = False) -> bool:
        """True when every attribute named is true of the clip.

        `visible_only` ignores what a single frame cannot show (direction, speed, falling),
        keeping what it can: scene, colours, shapes and that "colliding" means two objects.
        """
        if self.scene and self.scene != spec.scene:
            return False
        if not _objects_match(self.objects, spec.objects):
            return False
        if self.motion == "colliding" or not self.motion:
            return self.motion != "colliding" or len(spec.objects) == 2
        return visible_only or _motion_matches(self.motion, spec)


def _noun_phrase(colour: str | None, shape: str | None) -> str:
    if colour and shape:
        return f"a {colour} {shape}"
    if shape:
        return f"a {shape}"
    return f"a {colour} object" if colour else "something"


def _objects_match(named, objects: tuple[ObjectSpec, ...]) -> bool:
    """Each named object matches a different object of the clip."""
    if len(named) > len(objects):
        return False
    if len(named) == 2:
        return any(
            _object_matches(named[0], objects[i]) and _object_matches(named[1], objects[1 - i])
            for i in (0, 1)
        )
    return not named or any(_object_matches(named[0], o) for o in objects)


def _object_matches(named: tuple[str | None, str | None], obj: ObjectSpec) -> bool:
    colour, shape = named
    return (colour is None or colour == obj.colour) and (shape is None or shape == obj.shape)


def _motion_matches(motion: str, spec: ClipSpec) -> bool:
    """A query's motion; "moving left" names no speed band, so any speed matches."""
    if len(spec.objects) != 1:
        return False
    actual = spec.objects[0].motion
    if motion == "falling" or actual == "falling":
        return motion == actual
    want, have = motion.split()[1:], actual.split()[1:]
    return want[-1] == have[-1] and (len(want) == 1 or want == have)


def paraphrase(query: Query, rng: np.random.Generator) -> str:
    """The query in other words: synonyms of shapes, speeds and scenes, the speed after the direction, the
    scene first; it means what `query.text` means."""
    pick = lambda options: str(options[rng.integers(len(options))])  # noqa: E731
    nouns = [_noun_phrase(c, pick(SHAPE_SYNONYMS[s]) if s else None) for c, s in query.objects] or ["something"]
    words = (query.motion or "").split()
    if len(words) == 3:  # "moving quickly up" -> "moving fast up" / "moving up fast"
        speed = pick(SPEED_SYNONYMS[words[1]])
        words = ["moving", speed, words[2]] if rng.random() < 0.5 else ["moving", words[2], speed]
    subject = " ".join([" and ".join(nouns), *words])
    if not query.scene:
        return subject
    scene = pick(SCENE_SYNONYMS[query.scene])
    return f"{subject} {scene}" if rng.random() < 0.7 else f"{scene}, {subject}"


def full_query(spec: ClipSpec) -> Query:
    """The query of the clip's whole canonical caption."""
    objects = tuple((o.colour, o.shape) for o in spec.objects)
    return Query(spec.scene, objects, spec.motion)


def partial_query(spec: ClipSpec, rng: np.random.Generator) -> Query:
    """A random part of the clip's caption (each attribute kept or dropped), never empty."""
    full = full_query(spec)
    while True:
        keep = rng.random(4) < 0.5  # scene, colour, shape, motion
        objects = tuple(
            (c if keep[1] else None, s if keep[2] else None)
            for c, s in full.objects[: 1 if rng.random() < 0.5 else 2]
        )
        if not (keep[1] or keep[2]):
            objects = ()
        query = Query(full.scene if keep[0] else None, objects, full.motion if keep[3] else None)
        if query != Query() and query != full:
            return query
