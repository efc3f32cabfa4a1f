"""The motion a prompt asks for, and the motion a clip shows: what the sampler's noise search compares.

The built-in model does not steer an object's way by the prompt alone: the starting noise decides
which way it goes, in the first few steps (model card, sessions 11 to 14). So when a prompt names a
way to move, the sampler tries several starting noises and goes on with the one whose early
prediction moves that way (`flow.NoiseSearch`). This module says which way a prompt asks for
(`asked_motion`), how far a clip moves along it (`motion_along`: the least-squares slope, in
pixels a frame, of the centre of each frame's moving mass, `moving_mass`) and what the search keeps
(`motion_score`: that travel, less how unsteady the moving mass is over the frames).
"""

from __future__ import annotations

import torch

from generator.prompt import parse_prompt
from generator.world import DIRECTIONS

FALLING = (0.0, 1.0)  # a falling object moves down first
STEADY_WEIGHT = 5.0  # px/frame of travel the search gives up for each unit of the moving mass's relative spread


def asked_motion(prompt: str) -> tuple[float, float] | None:
    """The unit (x, y) way a prompt asks its object to move (y grows downward): its direction word, down
    for a falling object; None when it names no way (colliding objects, a prompt about no motion)."""
    parsed = parse_prompt(prompt)
    if parsed.direction is not None:
        return DIRECTIONS[parsed.direction]
    return FALLING if parsed.action == "falling" else None


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


def motion_score(frames: torch.Tensor, motion: tuple[float, float]) -> float:
    """What the noise search keeps the highest of: the travel along `motion` (`motion_along`), less
    STEADY_WEIGHT times the spread of the moving mass over the frames (its standard deviation over its
    mean). An object that splits, appears or fades part-way changes the mass; one that moves does not."""
    mass = moving_mass(frames.float())
    total = mass.sum((1, 2))
    spread = float(total.std() / total.mean().clamp(min=1e-6))
    return _along(mass, motion) - STEADY_WEIGHT * spread


def _along(mass: torch.Tensor, motion: tuple[float, float]) -> float:
    velocity = slope(mass_centres(mass))  # (2,) px/frame
    return float(velocity[0] * motion[0] + velocity[1] * motion[1])
