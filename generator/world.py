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
    pos = np.array(spec.starts, dtype=np.float64)  # (K, 2)
    vel = np.array([_initial_velocity(o, s) for o, s in zip(spec.objects, spec.speeds)])
    radii = np.array([o.radius for o in spec.objects], dtype=np.float64)
    falling = np.array([o.motion == "falling" for o in spec.objects])
    if len(spec.objects) == 2:
        vel[1, 0] *= -1  # the right-hand object moves left, toward the other
    out = np.empty((num_frames, len(spec.objects), 2))
    out[0] = pos
    for t in range(1, num_frames):
        vel[falling, 1] += GRAVITY
        pos += vel
        _reflect_off_edges(pos, vel, radii, falling)
        if len(spec.objects) == 2:
            _collide(pos, vel, radii)
        out[t] = pos
    return out


def _initial_velocity(obj: ObjectSpec, speed: float) -> tuple[float, float]:
    if obj.motion == "falling":
        return (0.0, 0.0)
    if obj.motion == "colliding":
        return (speed, 0.0)  # toward the right; simulate() turns the second one round
    dx, dy = DIRECTIONS[obj.motion.split()[-1]]
    return (dx * speed, dy * speed)


def _reflect_off_edges(pos, vel, radii, falling) -> None:
    """Elastic reflection off all four edges; falling objects keep 80% off the bottom."""
    for axis in (0, 1):
        low, high = radii, SIZE - radii
        under, over = pos[:, axis] < low, pos[:, axis] > high
        pos[under, axis] = 2 * low[under] - pos[under, axis]
        vel[under, axis] *= -1
        keep = np.where(falling & (axis == 1), BOUNCE, 1.0)
        pos[over, axis] = high[over] - keep[over] * (pos[over, axis] - high[over])
        vel[over, axis] *= -keep[over]


def _collide(pos, vel, radii) -> None:
    """Equal masses, perfectly elastic: exchange velocities, positions as if hit on time."""
    left, right = (0, 1) if pos[0, 0] <= pos[1, 0] else (1, 0)
    overlap = radii[0] + radii[1] - (pos[right, 0] - pos[left, 0])
    if overlap > 0 and vel[left, 0] > vel[right, 0]:
        vel[[0, 1], 0] = vel[[1, 0], 0]
        pos[left, 0] -= overlap
        pos[right, 0] += overlap


# ---------------------------------------------------------------------------------------------
# Rendering


def render(specs: list[ClipSpec], centres: list[np.ndarray], device: str | torch.device = "cpu") -> torch.Tensor:
    """Render a batch of simulated clips, (B, T, H, W, 3) uint8 on `device`."""
    num_frames = centres[0].shape[0]
    k_max = max(len(s.objects) for s in specs)
    B = len(specs)
    pos = torch.zeros(B, num_frames, k_max, 2)
    radius = torch.zeros(B, k_max)
    colour = torch.zeros(B, k_max, 3)
    square = torch.zeros(B, k_max, dtype=torch.bool)
    present = torch.zeros(B, k_max)
    for b, (spec, c) in enumerate(zip(specs, centres)):
        for k, obj in enumerate(spec.objects):
            pos[b, :, k] = torch.from_numpy(c[:, k]).float()
            radius[b, k] = obj.radius
            colour[b, k] = torch.tensor(COLOURS[obj.colour], dtype=torch.float32)
            square[b, k] = obj.shape == "square"
            present[b, k] = 1.0
    pos, radius, colour, square, present = (x.to(device) for x in (pos, radius, colour, square, present))
    image = backgrounds([s.scene for s in specs], device)[:, None].expand(B, num_frames, SIZE, SIZE, 3)
    grid = torch.arange(SIZE, device=device, dtype=torch.float32) + 0.5  # pixel centres
    for k in range(k_max):  # later objects are drawn over earlier ones
        dx = grid.view(1, 1, 1, SIZE) - pos[:, :, k, 0, None, None]  # (B, T, 1, W)
        dy = grid.view(1, 1, SIZE, 1) - pos[:, :, k, 1, None, None]  # (B, T, H, 1)
        r = radius[:, k].view(B, 1, 1, 1)
        disc = (r + 0.5 - torch.sqrt(dx * dx + dy * dy)).clamp(0, 1)
        box = (r + 0.5 - dx.abs()).clamp(0, 1) * (r + 0.5 - dy.abs()).clamp(0, 1)
        alpha = torch.where(square[:, k].view(B, 1, 1, 1), box, disc) * present[:, k].view(B, 1, 1, 1)
        alpha = alpha[..., None]  # (B, T, H, W, 1)
        image = image * (1 - alpha) + colour[:, k].view(B, 1, 1, 1, 3) * alpha
    return image.round().clamp(0, 255).to(torch.uint8)


def backgrounds(scenes: list[str], device: str | torch.device = "cpu") -> torch.Tensor:
    """Background images, (B, H, W, 3) float in 0..255."""
    top = torch.tensor([SCENES[s][0] for s in scenes], dtype=torch.float32, device=device)
    bottom = torch.tensor([SCENES[s][1] for s in scenes], dtype=torch.float32, device=device)
    rows = torch.arange(SIZE, dtype=torch.float32, device=device) / (SIZE - 1)  # (H,)
    col = top[:, None] + (bottom - top)[:, None] * rows[None, :, None]  # (B, H, 3)
    return col[:, :, None, :].expand(len(scenes), SIZE, SIZE, 3)


# ---------------------------------------------------------------------------------------------
# Public entry points


def make_clips(specs: list[ClipSpec], device: str | torch.device = "cpu") -> list[WorldClip]:
    """Simulate and render clips for the given specs."""
    centres = [simulate(s) for s in specs]
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
