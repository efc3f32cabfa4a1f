"""Does the generator's prompt reach the motion? Two direct measures of direction words.

1. Preference: for world clips of one object moving in a direction, the model's denoising error
   under the clip's caption, on the clip and on its counterfactual (`world.turned_round`: the same
   clip moving the other way), with the same noise at the same time. The share of clips whose own
   error is lower is 0.5 when the model cannot tell "left" from "right", 1.0 when it always can;
   over all the clips and over those moving along each axis.
2. Placement: where the model's prediction of the clean clip puts the object, early in sampling
   (t = 0.95, averaged over noises), in the first and the last frame, for "a white ball moving
   DIR on black": a model that knows a direction puts the object upstream first and downstream
   last; one that learned a direction as a place puts it on that side in every frame.
3. Same seed, each direction: "a white ball moving DIR on black" at seeds 0..n-1; the share of
   clips whose tracked object moves the asked way along the axis over the first 8 frames
   (mean velocity), and those velocities. `opposite` is, per axis, the share of seeds at which both
   of its directions move the asked way: a model whose noise rather than its prompt picks the way
   scores 0 there, however its single directions score. One candidate: the model itself, without
   the sampler's noise search for the asked motion.
4. When the way is decided: for "left" and "right" at the same seeds, the Euler sampler's
   prediction of the clean clip at a few steps; the share of clips whose object's x-shift over
   the first 8 frames in that prediction already has the sign it has at the end. Where the share
   is near 1 early, the first steps (at times near 1, where the prompt must set the way) decide it.

    python3 bench/conditioning.py [--model reelbase-tiny] [--clips 64] [--noises 32] [--seeds 8]
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from generator import world
from generator.autoencoder import to_video_tensor
from generator.dit import tokenize
from generator.evaluation import motion_kind
from generator.flow import denoising_errors, initial_noise, sample, sampling_times
from generator.motion import mass_centres
from generator.pipeline import Generator
from generator.tracker import track
from generator.train import object_weights

PROBE_SEED = 5_151_515  # a world stream no training run reads
TIMES = (0.5, 0.7, 0.9)


def moving_clips(n: int) -> tuple[list[world.WorldClip], list[world.WorldClip]]:
    """n clips of one object moving in a direction, and their counterfactuals."""
    clips, start = [], 0
    while len(clips) < n:
        clips += [c for c in world.sample_clips(PROBE_SEED, start, 64) if world.direction_of(c.spec)]
        start += 64
    clips = clips[:n]
    return clips, world.make_clips([world.turned_round(c.spec) for c in clips])


@torch.no_grad()
def latents_and_weights(gen: Generator, clips: list[world.WorldClip]) -> tuple[torch.Tensor, torch.Tensor]:
    """The clips' latents, and loss weights toward the cells objects cover (as training weighs them)."""
    video = to_video_tensor(np.stack([c.frames for c in clips]))
    latents = gen.autoencoder.encode(video)
    return latents, object_weights(video, latents.shape[-1], 1.5, gen.autoencoder.config.object_threshold)


@torch.no_grad()
def preference(gen: Generator, n: int) -> dict:
    """Share of clips the model's caption explains better than their counterfactual, per time:
    over all the clips, and over those moving along each axis."""
    clips, counter = moving_clips(n)
    own, other = latents_and_weights(gen, clips), latents_and_weights(gen, counter)
    tokens = tokenize([c.caption for c in clips], gen.dit.config.context_length)
    horizontal = torch.tensor([motion_kind(c.spec) == "left/right" for c in clips])
    g = torch.Generator().manual_seed(0)
    shares = {}
    for t in TIMES:
        noise, times = torch.randn(own[0].shape, generator=g), torch.full((n,), t)
        e = denoising_errors(gen.dit, own[0], noise, times, tokens, own[1])
        e_counter = denoising_errors(gen.dit, other[0], noise, times, tokens, other[1])
        wins = (e < e_counter).float()
        shares[f"t={t}"] = {"all": round(float(wins.mean()), 3), "left/right": round(float(wins[horizontal].mean()), 3),
                            "up/down": round(float(wins[~horizontal].mean()), 3)}
    return shares


@torch.no_grad()
def placement(gen: Generator, noises: int, t: float = 0.95) -> dict:
    """Per direction: the object's centre (x, y) in the first and the last frame of the model's
    clean-clip prediction at time t, averaged over `noises` noises (pixels brighter than each
    frame's median, on black)."""
    config = gen.dit.config
    shape = (noises, config.frames, config.latent_channels, config.latent_size, config.latent_size)
    noise = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    out = {}
    for direction in world.DIRECTIONS:
        tokens = tokenize([f"a white ball moving {direction} on black"] * noises, config.context_length)
        clean = noise - t * gen.dit(noise, torch.full((noises,), t), tokens)  # x_t - t v: the predicted clip
        centres = mass_centres(bright_mass(gen, clean).mean(0))  # (T, 2)
        out[direction] = {"first": [round(float(c), 1) for c in centres[0]],
                          "last": [round(float(c), 1) for c in centres[-1]]}
    return out


def bright_mass(gen: Generator, latents: torch.Tensor) -> torch.Tensor:
    """(B, T, H, W): how much brighter than its frame's median each pixel of the decoded latents is."""
    bright = gen.autoencoder.decode(latents).mean(2)  # (B, T, H, W)
    return (bright - bright.flatten(2).median(-1).values[..., None, None]).clamp(min=0)


def same_seed_directions(gen: Generator, seeds: int, steps: int) -> dict:
    """Per direction: the share of seeds whose object moves the asked way, and the velocities."""
    out, velocities_of = {}, {}
    for direction, (dx, dy) in world.DIRECTIONS.items():
        axis, sign = (0, dx) if dx else (1, dy)
        velocities = velocities_of[direction] = []
        for seed in range(seeds):
            frames = gen.generate(f"a white ball moving {direction} on black", seed=seed, steps=steps,
                                  candidates=1).frames  # the model's own way, without the noise search
            found = track(frames, "on black").tracks
            tr = max(found, key=lambda tr: tr.present.sum(), default=None)
            v = np.nan if tr is None else float(np.nanmean(np.diff(tr.centres[:8, axis])))
            velocities.append(v)
        right_way = [v * sign > 0.5 for v in velocities if not np.isnan(v)]
        out[direction] = {"right_way": round(float(np.mean(right_way)) if right_way else 0.0, 3),
                          "velocities": " ".join(f"{v:+.2f}" for v in velocities)}
    out["mean_right_way"] = round(float(np.mean([out[d]["right_way"] for d in world.DIRECTIONS])), 3)
    out["opposite"] = {f"{a}/{b}": both_ways(velocities_of[a], velocities_of[b], world.DIRECTIONS[a])
                       for a, b in (("left", "right"), ("up", "down"))}
    return out


def both_ways(first: list[float], second: list[float], direction: tuple[float, float]) -> float:
    """The share of seeds at which `first` moves along `direction` and `second` against it (> 0.5 px/frame)."""
    sign = sum(direction)
    return round(float(np.mean([a * sign > 0.5 and b * sign < -0.5 for a, b in zip(first, second)])), 3)


@torch.no_grad()
def decided(gen: Generator, seeds: int, steps: int, guidance: float = 4.0, at: tuple[int, ...] = (1, 3, 6, 10)) -> dict:
    """Per step in `at`: the share of "left"/"right" clips at seeds 0..n-1 whose predicted clean clip
    shifts its object along x (frames 0 to 7) the way the finished clip does; and that step's time.

    The clips are `flow.sample`'s own, from the first noise `Generator.generate` draws for a seed; an Euler
    step's prediction is x - t v, with v = (x' - x) / (t' - t) from the latents on each side of it."""
    config = gen.dit.config
    times = sampling_times(steps, 1.0, config.time_shift)
    agree = {i: [] for i in at}
    for direction in ("left", "right"):
        tokens = tokenize([f"a white ball moving {direction} on black"], config.context_length)
        for seed in range(seeds):
            path = sampled_path(gen, tokens, seed, steps, guidance)
            final = x_shift(gen, path[-1])
            for i in at:
                v = (path[i + 1] - path[i]) / (times[i + 1] - times[i])
                agree[i].append(np.sign(x_shift(gen, path[i] - times[i] * v)) == np.sign(final))
    return {f"step {i} (t={float(times[i]):.3f})": round(float(np.mean(a)), 3) for i, a in agree.items()}


def sampled_path(gen: Generator, tokens: torch.Tensor, seed: int, steps: int, guidance: float) -> list[torch.Tensor]:
    """The latents (1, T, C, h, w) before each of `flow.sample`'s steps and after the last, from a seed's noise."""
    config = gen.dit.config
    shape = (1, config.frames, config.latent_channels, config.latent_size, config.latent_size)
    path = [initial_noise(shape, torch.Generator().manual_seed(seed), "cpu")]
    sample(gen.dit, shape, tokens, steps=steps, guidance=guidance, generator=torch.Generator().manual_seed(seed),
           **config.sampling, callback=lambda _step, _steps, x: path.append(x.clone()))
    return path


def x_shift(gen: Generator, latents: torch.Tensor) -> float:
    """How far the bright mass of decoded latents (1, T, C, h, w) moves along x from frame 0 to 7."""
    centres = mass_centres(bright_mass(gen, latents)[0])
    return float(centres[7, 0] - centres[0, 0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="reelbase-tiny", help="a built-in name or a generator file")
    parser.add_argument("--clips", type=int, default=64, help="moving clips for the preference")
    parser.add_argument("--noises", type=int, default=32, help="noises averaged for the placement")
    parser.add_argument("--seeds", type=int, default=8, help="seeds per direction for the same-seed test")
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    gen = Generator.load(args.model, "cpu")
    report = {"model": args.model, "preference": preference(gen, args.clips), "placement": placement(gen, args.noises)}
    print(json.dumps(report), flush=True)
    report["same_seed"] = same_seed_directions(gen, args.seeds, args.steps)
    report["decided"] = decided(gen, args.seeds, args.steps)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
