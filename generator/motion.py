"""What a prompt asks a clip to show, and what a clip shows: what the sampler's noise search compares.

The built-in model does not steer an object's way by the prompt alone: the starting noise decides
which way it goes, and whether an object splits or gains a copy, in the first few steps (model card,
sessions 11 to 14 and 20). So when a prompt asks for motion, the sampler tries several starting
noises and goes on with the one whose early prediction shows what was asked (`flow.NoiseSearch`).
This module says what a prompt asks for (`asked`: the way to move, how many objects), how far a
clip moves along that way (`motion_along`: the least-squares slope, in pixels a frame, of the
centre of each frame's moving mass, `moving_mass`), in how many of its frames the moving mass
falls into as many pieces as the prompt names objects (`shows_objects`) and what the search keeps
(`search_score`: the travel and those frames, less how unsteady the moving mass is over the frames).
The search also checks each finished clip it goes on with (`shows_asked`): read with the world's tracker,
as the bench reads it, do the objects the prompt names move as it says (a steady path the asked way,
turning back only at the frame's edges; a fall; a collision), stay whole and alone, and have its shapes?
The early prediction cannot show an object that slows and stops short, splits, or passes through another.
A window that continues given frames is searched for the noise that keeps their motion across the
seam instead (`seam_jump`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from generator.autoencoder import to_uint8
from generator.evaluation import Look, guess_scene, prompt_checks
from generator.prompt import parse_prompt
from generator.tracker import label_components
from generator.world import DIRECTIONS

FALLING = (0.0, 1.0)  # a falling object moves down first
STEADY_WEIGHT = 5.0  # px/frame of travel the search gives up for each unit of the moving mass's relative spread
OBJECTS_WEIGHT = 4.0  # px/frame of travel the search gives up for every frame showing the objects asked for
OBJECT_MASS = 1.0  # moving mass (L1 over RGB in [-1, 1]) from which a pixel belongs to an object
MIN_PIECE = 20  # px: a smaller piece of moving mass is a speck, not an object (a ball of radius 4 is ~50)
# what the search's check of a finished clip weighs (`shows_asked`): its motion and keeping its objects alike,
# its shapes half as much (model card, session 25)
CHECK_WEIGHTS = {"direction": 2.0, "permanence": 2.0, "shape": 1.0}


@dataclass(frozen=True)
class Asked:
    """What a prompt asks a clip to show that the search can check: whether it names a motion (`moves`:
    a way, falling, colliding), the unit (x, y) way (`motion`, y grows downward; None where it names
    none), how many objects it names (`objects`; 0 where it names none, at least 2 colliding), whether
    its way is a steady path (`path`: a direction word, not a fall, which speeds up), and for the check of
    a finished clip (`shows_asked`): its objects' looks (colour, shape; None where it does not say; as many
    as `objects`, and one at least where it names a motion), its motion in the world's words (`words`:
    "moving left", "falling", "colliding"; None where it names none) and its scene (None where it names
    none)."""

    moves: bool
    motion: tuple[float, float] | None
    objects: int
    path: bool = False
    looks: tuple[Look, ...] = ()
    words: str | None = None
    scene: str | None = None


def asked(prompt: str) -> Asked:
    """What `prompt` asks for (`Asked`), in the world's words (`prompt.parse_prompt`)."""
    parsed = parse_prompt(prompt)
    way = DIRECTIONS[parsed.direction] if parsed.direction is not None else \
        FALLING if parsed.action == "falling" else None
    objects = max(len(parsed.objects), 2) if parsed.action == "colliding" else len(parsed.objects)
    looks = [(o["colour"], o["shape"]) for o in parsed.objects]
    looks += [(None, None)] * (max(objects, parsed.action is not None) - len(looks))  # a motion moves something
    words = f"moving {parsed.direction}" if parsed.direction is not None else parsed.action
    return Asked(moves=parsed.action is not None, motion=way, objects=objects, path=parsed.direction is not None,
                 looks=tuple(looks), words=words, scene=parsed.scene)


def mass_centres(mass: torch.Tensor) -> torch.Tensor:
    """(T, 2): the centre (x, y) in pixels of each frame's mass (T, H, W); the frame's middle where it has none."""
    t, h, w = mass.shape
    total = mass.sum((1, 2))
    xs = torch.arange(w, dtype=mass.dtype, device=mass.device) + 0.5
    ys = torch.arange(h, dtype=mass.dtype, device=mass.device) + 0.5
    divisor = total.clamp(min=1e-6)
    centres = torch.stack([(mass.sum(1) * xs).sum(-1) / divisor, (mass.sum(2) * ys).sum(-1) / divisor], -1)
    middle = torch.tensor([w / 2, h / 2], dtype=mass.dtype, device=mass.device)
    return torch.where((total > 0)[:, None], centres, middle)


def moving_mass(frames: torch.Tensor) -> torch.Tensor:
    """(T, H, W): how unlike the background each pixel of (T, 3, H, W) frames is: the smaller of its L1
    distances to its frame's median colour (a plain background) and to its own median over time (a
    still one, such as a sunset's gradient). A still object's mass is small too: it does not move."""
    frame_median = frames.flatten(2).median(-1).values[..., None, None]  # (T, 3, 1, 1)
    time_median = frames.median(0).values  # (3, H, W)
    return torch.minimum((frames - frame_median).abs().sum(1), (frames - time_median).abs().sum(1))


def slope(values: torch.Tensor) -> torch.Tensor:
    """The least-squares slope of (T, ...) values over their index, per trailing element."""
    t = torch.arange(len(values), dtype=values.dtype, device=values.device)
    t = (t - t.mean()).reshape(-1, *([1] * (values.dim() - 1)))
    return (values * t).sum(0) / (t * t).sum()


def motion_along(frames: torch.Tensor, motion: tuple[float, float]) -> float:
    """How many pixels a frame the moving mass of (T, 3, H, W) frames travels along the unit `motion`:
    positive the asked way, negative against it, near zero for a still or sideways clip."""
    return _along(moving_mass(frames.float()), motion)


def piece_centres(mass: torch.Tensor) -> list[np.ndarray]:
    """For each frame of moving mass (T, H, W), the (x, y) centres in pixels, (n, 2), of its pieces: the
    4-connected pieces of at least MIN_PIECE px where it reaches OBJECT_MASS, each weighted by its mass."""
    mass = mass.cpu().numpy()
    labels = label_components(mass >= OBJECT_MASS)
    ys, xs = np.mgrid[: mass.shape[1], : mass.shape[2]] + 0.5
    centres = []
    for frame, label in zip(mass, labels):
        ids, sizes = np.unique(label[label >= 0], return_counts=True)
        pieces = [label == i for i in ids[sizes >= MIN_PIECE]]
        centres.append(np.array([[(xs[p] * frame[p]).sum(), (ys[p] * frame[p]).sum()] / frame[p].sum()
                                 for p in pieces]).reshape(-1, 2))
    return centres


def object_pieces(mass: torch.Tensor) -> np.ndarray:
    """(T,): how many pieces the moving mass (T, H, W) of each frame has (`piece_centres`)."""
    return np.array([len(c) for c in piece_centres(mass)])


def shows_objects(mass: torch.Tensor, objects: int) -> float:
    """The share of frames whose moving mass (T, H, W) is in as many pieces as `objects`, or one fewer
    where there are several (two touching objects are one piece), but at least one."""
    pieces = object_pieces(mass)
    return float(((pieces <= objects) & (pieces >= max(1, objects - 1))).mean())


def search_score(frames: torch.Tensor, wanted: Asked) -> float:
    """What the noise search keeps the highest of, for (T, 3, H, W) frames and what their prompt asks
    (`asked`): the travel along its way (`motion_along`, where it names one), plus OBJECTS_WEIGHT times
    the share of frames showing its objects (`shows_objects`, where it names any), less STEADY_WEIGHT
    times the spread of the moving mass over the frames (its standard deviation over its mean). An
    object that splits, appears or fades part-way changes the mass; one that moves does not."""
    mass = moving_mass(frames.float())
    total = mass.sum((1, 2))
    score = -STEADY_WEIGHT * float(total.std() / total.mean().clamp(min=1e-6))
    if wanted.motion is not None:
        score += _along(mass, wanted.motion)
    if wanted.objects:
        score += OBJECTS_WEIGHT * shows_objects(mass, wanted.objects)
    return score


def shows_asked(frames: torch.Tensor, wanted: Asked) -> float:
    """How much of what a prompt asks (`asked`) finished (T, 3, H, W) frames in [-1, 1] show, read with the
    world's tracker as the bench reads them (`evaluation.prompt_checks`): its objects moving as it says, kept
    (each in every frame at a steady size, nothing else lasting) and of the shapes it names, weighed by
    CHECK_WEIGHTS; 1 where they show all three, 0 where none. A way asked must also be the way the moving mass
    travels over the first half of the frames. 1 where it names no motion: nothing to check.
    The scene is the prompt's, else the one the frames' background is nearest to."""
    if not wanted.moves:
        return 1.0
    clip = to_uint8(frames)  # (T, H, W, 3)
    checks = prompt_checks(clip, list(wanted.looks), wanted.words, wanted.scene or guess_scene(clip))
    if wanted.path:  # and it sets off the asked way: from an edge, a path turned back at once fits either way
        checks["direction"] &= _along(moving_mass(frames[: len(frames) // 2].float()), wanted.motion) > 0
    return sum(weight * checks[name] for name, weight in CHECK_WEIGHTS.items()) / sum(CHECK_WEIGHTS.values())


def seam_jump(frames: torch.Tensor, seam: int) -> float:
    """How far the motion of (T, 3, H, W) frames breaks where frame `seam` follows the frames before it, in
    px/frame: for each piece of moving mass in frame seam - 1 (`piece_centres`), the step from the nearest
    piece in the frame before against the step to the piece in frame `seam` nearest where that step leads;
    the largest. inf when a piece has none before or after it, or when the frames before the seam show a
    piece that the whole clip's moving mass loses (an object that stops at the seam becomes background);
    0 when there is no piece to follow."""
    before, last, after = piece_centres(moving_mass(frames.float())[seam - 2 : seam + 1])
    if not len(last):
        return math.inf if len(piece_centres(moving_mass(frames[:seam].float()))[-1]) else 0.0
    if not len(before) or not len(after):
        return math.inf
    worst = 0.0
    for centre in last:
        step = centre - before[np.linalg.norm(before - centre, axis=1).argmin()]
        landing = after[np.linalg.norm(after - (centre + step), axis=1).argmin()]
        worst = max(worst, float(np.linalg.norm(landing - centre - step)))
    return worst


def _along(mass: torch.Tensor, motion: tuple[float, float]) -> float:
    velocity = slope(mass_centres(mass))  # (2,) px/frame
    return float(velocity[0] * motion[0] + velocity[1] * motion[1])
