"""Generation speed: time per clip beside its guided model forwards x one forward's time, in one run.

The sampler's own overhead (text encoding, the autoencoder, known-latent bookkeeping, judging the
noise search's candidates) should stay within 10% of the clip's time. The forwards are the steps,
and the search's probes when the prompt asks for a motion (`--candidates`; the model's own by
default), as the step callback counts them. Also prints peak memory (CUDA allocator, or the
process's peak resident set on the CPU).

    python3 bench/generation_speed.py [--steps 30] [--clips 3] [--candidates K] [--model reelbase-tiny]
"""

from __future__ import annotations

import argparse
import resource
import time

import torch

from generator.dit import tokenize
from generator.flow import guided_velocity, prompt_context
from generator.params import GenerationParams
from generator.pipeline import Generator

PROMPT = "a red ball moving right on black"


def time_forward(gen: Generator, repeats: int) -> float:
    """Seconds of one guided forward (conditional and unconditional batched)."""
    cfg = gen.dit.config
    x = torch.randn(1, cfg.frames, cfg.latent_channels, cfg.latent_size, cfg.latent_size, device=gen.device)
    tokens = tokenize([PROMPT], cfg.context_length).to(gen.device)
    with torch.no_grad():
        context, mask = prompt_context(gen.dit, tokens, None, 4.0)
        t = torch.full((1,), 0.5, device=gen.device)
        guided_velocity(gen.dit, x, t, context, mask, 4.0)  # warm up
        _sync(gen)
        started = time.perf_counter()
        for _ in range(repeats):
            guided_velocity(gen.dit, x, t, context, mask, 4.0)
        _sync(gen)
    return (time.perf_counter() - started) / repeats


def _sync(gen: Generator) -> None:
    if gen.device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--clips", type=int, default=3)
    parser.add_argument("--model", default="reelbase-tiny")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--candidates", type=int, default=None,
                        help="starting noises searched for the prompt's motion (default: the model's own)")
    args = parser.parse_args()
    gen = Generator.load(args.model, args.device)
    gen.generate(PROMPT, steps=2, candidates=args.candidates)  # warm up
    forward = time_forward(gen, repeats=args.steps)
    forwards = []  # the total the step callback reports: the steps and the search's probes (of every window)
    started = time.perf_counter()
    for seed in range(args.clips):
        gen.generate(PROMPT, seed=seed, steps=args.steps, candidates=args.candidates,
                     callback=lambda _step, total: forwards.append(total))
    _sync(gen)
    per_clip = (time.perf_counter() - started) / args.clips
    overhead = (per_clip - forwards[-1] * forward) / per_clip
    if gen.device.type == "cuda":
        peak = f"{torch.cuda.max_memory_allocated() / 2**20:.0f} MiB (CUDA allocator)"
    else:
        peak = f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB (process peak RSS)"
    print(f"device {gen.device}, threads {torch.get_num_threads()}, {args.steps} steps, guidance on, "
          f"candidates {gen.candidates(GenerationParams(prompt=PROMPT, candidates=args.candidates))}")
    print(f"one guided forward {forward * 1000:.1f} ms; {forwards[-1]} forwards (steps and probes) x forward "
          f"{forwards[-1] * forward:.3f} s")
    print(f"time per clip {per_clip:.3f} s; sampler overhead {overhead * 100:.1f}%")
    print(f"peak memory {peak}")


if __name__ == "__main__":
    main()
