"""Generation quality against the simulator's truth (PhyWorld-style, Kang et al. 2024).

Canonical prompts from clips of a seed never used in training; the tracker reads each generated
clip and scores colour, shape, count, direction, speed band, gravity and permanence. The same
metrics for the simulator's own clips (the ceiling) and an untrained model (the floor) are
printed in the same run. `extend` is scored separately: each true clip's first frames are given
and the rest generated, giving the velocity error against the simulator and whether the velocity
across the seam stays within 1 px/frame of the velocity before it.

    python3 bench/generation.py [--prompts 100] [--steps 20] [--model reelbase-tiny]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from generator import world
from generator.dit import STDiT
from generator.evaluation import evaluate_clip, seam_velocity_ok, summarize
from generator.pipeline import Generator

EVAL_SEED = 4_242_424  # training streams use seeds seed*1000003+step; this one is never reached
SEAM = 8  # extend: frames given from the truth, then generated


def truth_clips(n: int) -> list[world.WorldClip]:
    return world.sample_clips(EVAL_SEED, 0, n)


def score_text_to_video(gen: Generator | None, clips, steps: int, guidance: float) -> dict:
    """Per-metric shares for clips generated from the captions (or the truth itself when gen is None)."""
    results = []
    for i, clip in enumerate(clips):
        frames = clip.frames if gen is None else gen.generate(clip.caption, seed=i, steps=steps,
                                                              guidance=guidance).frames
        results.append(evaluate_clip(frames, clip.spec))
    return summarize(results)


def score_extend(gen: Generator, clips, steps: int, guidance: float) -> dict:
    """Velocity error against the simulator and the seam check, for clips continued from SEAM true frames."""
    results, seams = [], []
    for i, clip in enumerate(clips):
        out = gen.extend(clip.frames[:SEAM], clip.caption, seed=i, steps=steps, guidance=guidance,
                         new_frames=len(clip.frames) - SEAM, context=SEAM).frames
        results.append(evaluate_clip(out, clip.spec, clip.centres))
        truth_ok = seam_velocity_ok(clip.frames, SEAM, scene=clip.spec.scene)
        if truth_ok:  # a bounce or collision exactly at the seam breaks the check for the truth too
            seams.append(seam_velocity_ok(out, SEAM, scene=clip.spec.scene) is True)
    summary = summarize(results)
    return {"velocity_error_px_per_frame": summary["velocity_error"], "seam_within_1px": float(np.mean(seams)),
            "seam_clips": len(seams), "direction": summary["direction"], "permanence": summary["permanence"]}


def untrained(gen: Generator) -> Generator:
    torch.manual_seed(0)
    return Generator(STDiT(gen.dit.config), gen.autoencoder, "untrained", str(gen.device))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=100)
    parser.add_argument("--extend", type=int, default=50, help="clips for the extend evaluation")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--guidance", type=float, default=4.0)
    parser.add_argument("--model", default="reelbase-tiny")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    clips = truth_clips(args.prompts)
    gen = Generator.load(args.model, args.device)
    started = time.time()
    table = {
        "simulator (ceiling)": score_text_to_video(None, clips, args.steps, args.guidance),
        f"{args.model}": score_text_to_video(gen, clips, args.steps, args.guidance),
        "untrained (floor)": score_text_to_video(untrained(gen), clips, args.steps, args.guidance),
    }
    print(f"{args.prompts} canonical prompts (seed {EVAL_SEED}), {args.steps} steps, guidance {args.guidance}")
    metrics = [k for k in next(iter(table.values())) if k != "velocity_error"]
    print(f"{'':22s}" + "".join(f"{m:>12s}" for m in metrics))
    for name, row in table.items():
        print(f"{name:22s}" + "".join(f"{row[m]:12.3f}" if row[m] is not None else f"{'-':>12s}" for m in metrics))
    extend = score_extend(gen, clips[: args.extend], args.steps, args.guidance)
    print(f"extend ({args.extend} clips, {SEAM} true frames given):", json.dumps(extend))
    print(f"({time.time() - started:.0f} s)")


if __name__ == "__main__":
    main()
