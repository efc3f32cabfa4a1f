"""Generation quality against the simulator's truth (PhyWorld-style, Kang et al. 2024).

Canonical prompts from clips of a seed never used in training; the tracker reads each generated
clip and scores colour, shape, count, direction, speed band, gravity and permanence. The same
metrics for the simulator's own clips (the ceiling) and an untrained model (the floor) are
printed in the same run. `extend` is scored separately: each true clip's first frames are given
and the rest generated, giving the velocity error against the simulator and whether the velocity
across the seam stays within 1 px/frame of the velocity before it. The direction share is also
printed by kind of motion (left/right, up/down, falling, colliding), since the kinds differ widely,
with why the movers that fail do (`evaluation.direction_fault`: wrong way, stalled, path, no object).

    python3 bench/generation.py [--prompts 100] [--steps 20] [--model reelbase-tiny] [--model-only]
        [--guidance G] [--guidance-start T --early-guidance S] [--frame-guidance F]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from collections import Counter

import numpy as np
import torch

from generator import world
from generator.dit import STDiT
from generator.evaluation import direction_fault, evaluate_clip, motion_kind, seam_velocity_ok, summarize
from generator.pipeline import Generator

EVAL_SEED = 4_242_424  # training streams use seeds seed*1000003+step; this one is never reached
SEAM = 8  # extend: frames given from the truth, then generated


def truth_clips(n: int) -> list[world.WorldClip]:
    return world.sample_clips(EVAL_SEED, 0, n)


def score_text_to_video(gen: Generator | None, clips, steps: int, **settings) -> tuple[dict, dict]:
    """Per-metric shares for clips generated from the captions (or the truth itself when gen is None),
    and the direction by kind of motion (`direction_by_motion`). `settings`: `GenerationParams` fields
    (guidance, candidates; None: the model's own)."""
    results, faults = [], []
    for i, clip in enumerate(clips):
        frames = clip.frames if gen is None else gen.generate(clip.caption, seed=i, steps=steps, **settings).frames
        results.append(evaluate_clip(frames, clip.spec))
        faults.append(None if results[-1]["direction"] else direction_fault(frames, clip.spec))
    return summarize(results), direction_by_motion(clips, results, faults)


def direction_by_motion(clips, results: list[dict], faults: list[str | None]) -> dict[str, str]:
    """For each kind of motion, the clips moving as asked out of all, and why the others fail where
    `direction_fault` tells (wrong way, stalled, path, no object)."""
    kinds: dict[str, list] = {}
    for clip, result, fault in zip(clips, results, faults):
        ok, failed = kinds.setdefault(motion_kind(clip.spec), [[], Counter()])
        ok.append(bool(result["direction"]))
        failed.update([fault] if fault else [])
    return {kind: f"{sum(ok)}/{len(ok)}" + "".join(f", {why} {n}" for why, n in failed.most_common())
            for kind, (ok, failed) in sorted(kinds.items())}


def score_extend(gen: Generator, clips, steps: int, **settings) -> dict:
    """Velocity error against the simulator and the seam check, for clips continued from SEAM true frames."""
    results, seams = [], []
    for i, clip in enumerate(clips):
        out = gen.extend(clip.frames[:SEAM], clip.caption, seed=i, steps=steps, **settings,
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
    parser.add_argument("--guidance", type=float, default=None,
                        help="guidance scale for every mode (default: the model's own for each: `guidance_for`)")
    parser.add_argument("--candidates", type=int, default=None,
                        help="starting noises searched for the asked motion, and clips finished for (extend) the "
                             "seam (default: the model's own); 1: no search")
    parser.add_argument("--model", default="reelbase-tiny")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--guidance-start", type=float, default=None,
                        help="full guidance at and below this time (default: the model's config says)")
    parser.add_argument("--early-guidance", type=float, default=None,
                        help="the share of the guidance above --guidance-start (default: the model's config says)")
    parser.add_argument("--frame-guidance", type=float, default=None,
                        help="how strongly given frames guide (extend; default: the model's config says)")
    parser.add_argument("--model-only", action="store_true",
                        help="leave out the ceiling and the floor (the same in every run; a third of the time)")
    args = parser.parse_args()
    clips = truth_clips(args.prompts)
    gen = Generator.load(args.model, args.device)
    recipe = {k: v for k, v in (("guidance_start", args.guidance_start), ("early_guidance", args.early_guidance),
                                ("frame_guidance", args.frame_guidance)) if v is not None}
    gen.dit.config = dataclasses.replace(gen.dit.config, **recipe)  # sample with another guidance recipe
    started = time.time()
    rows = {f"{args.model}": gen} if args.model_only else {
        "simulator (ceiling)": None, f"{args.model}": gen, "untrained (floor)": untrained(gen)}
    settings = {"guidance": args.guidance, "candidates": args.candidates}
    scored = {name: score_text_to_video(g, clips, args.steps, **settings) for name, g in rows.items()}
    guidance = args.guidance if args.guidance is not None else \
        f"the model's own ({gen.dit.config.guidance_for('text')}, continue {gen.dit.config.guidance_for('continue')})"
    candidates = args.candidates if args.candidates is not None else \
        f"the model's own ({gen.dit.config.candidates}; {gen.dit.config.seam_candidates} finished for a seam)"
    print(f"{args.prompts} canonical prompts (seed {EVAL_SEED}), {args.steps} steps, guidance {guidance}, "
          f"candidates {candidates}; the model samples with {gen.dit.config.sampling}")
    metrics = [k for k in next(iter(scored.values()))[0] if k != "velocity_error"]
    print(f"{'':22s}" + "".join(f"{m:>12s}" for m in metrics))
    for name, (row, _) in scored.items():
        print(f"{name:22s}" + "".join(f"{row[m]:12.3f}" if row[m] is not None else f"{'-':>12s}" for m in metrics))
    for name, (_, by_motion) in scored.items():
        print(f"direction by motion, {name}: " + "; ".join(f"{kind} {text}" for kind, text in by_motion.items()))
    extend = score_extend(gen, clips[: args.extend], args.steps, **settings)
    print(f"extend ({args.extend} clips, {SEAM} true frames given):", json.dumps(extend))
    print(f"({time.time() - started:.0f} s)")


if __name__ == "__main__":
    main()
