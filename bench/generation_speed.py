"""Generation speed: time per clip beside its guided model forwards x one forward's time, in one run.

The sampler's own overhead (text encoding, the autoencoder, known-latent bookkeeping, judging and
checking the noise search's candidates) should stay within 10% of the clip's time. The forwards are the model's
batched passes as they run: the steps, the search's probes when the prompt asks for a motion
(`--candidates`; the model's own by default), and the candidates finished where the first one finished
does not show all the prompt asks (with the model's further rounds where none of them does).
With `--extend`, each clip continues a world clip's first 8 frames by 8 more in one window: its forwards
are every step of each finished seam candidate, and each also runs the pass the given frames guide by,
where the model's config says they guide. Also prints peak memory (CUDA allocator, or the process's peak
resident set on the CPU).

    python3 bench/generation_speed.py [--steps 30] [--clips 3] [--candidates K] [--extend] [--model reelbase-tiny]
"""

from __future__ import annotations

import argparse
import resource
import time

import torch

from generator import world
from generator.dit import tokenize
from generator.flow import guided_velocity, prompt_context
from generator.pipeline import SAMPLING_THREADS, Generator, fixed_threads

PROMPT = "a red ball moving right on black"
GIVEN = 8  # --extend: frames given, and frames made


def time_forward(gen: Generator, repeats: int, given: int = 0) -> float:
    """Seconds of one guided forward (conditional and unconditional batched; with `given` frames and the
    model's frame guidance, the pass without them too), on the threads a clip samples with."""
    cfg = gen.dit.config
    x = torch.randn(1, cfg.frames, cfg.latent_channels, cfg.latent_size, cfg.latent_size, device=gen.device)
    tokens = tokenize([PROMPT], cfg.context_length).to(gen.device)
    frame_mask = (torch.arange(cfg.frames, device=gen.device) < given)[None] if given else None
    with torch.no_grad(), fixed_threads(SAMPLING_THREADS):
        context, mask = prompt_context(gen.dit, tokens, None, 4.0)
        t = torch.full((1,), 0.5, device=gen.device)

        def forward():
            guided_velocity(gen.dit, x, t, context, mask, 4.0, frame_mask, x, cfg.frame_guidance)

        forward()  # warm up
        _sync(gen)
        started = time.perf_counter()
        for _ in range(repeats):
            forward()
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
                        help="starting noises searched for the prompt's motion, or clips finished for the seam "
                             "(default: the model's own)")
    parser.add_argument("--extend", action="store_true", help=f"continue {GIVEN} given frames by {GIVEN} instead")
    args = parser.parse_args()
    gen = Generator.load(args.model, args.device)
    given = world.sample_clips(0, 0, 1)[0].frames[:GIVEN]

    def make(seed: int, steps: int):
        if args.extend:
            return gen.extend(given, PROMPT, seed=seed, steps=steps, candidates=args.candidates, new_frames=GIVEN,
                              context=GIVEN)
        return gen.generate(PROMPT, seed=seed, steps=steps, candidates=args.candidates)

    make(0, 2)  # warm up
    forward = time_forward(gen, repeats=args.steps, given=GIVEN if args.extend else 0)
    velocity, calls = gen.dit.velocity, []

    def counted(*inputs, **options):  # each batched pass of the model, as it runs
        calls.append(1)
        return velocity(*inputs, **options)

    gen.dit.velocity = counted
    started = time.perf_counter()
    for seed in range(args.clips):
        record = make(seed, args.steps).record
    _sync(gen)
    per_clip = (time.perf_counter() - started) / args.clips
    forwards = len(calls) / args.clips
    overhead = (per_clip - forwards * forward) / per_clip
    if gen.device.type == "cuda":
        peak = f"{torch.cuda.max_memory_allocated() / 2**20:.0f} MiB (CUDA allocator)"
    else:
        peak = f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB (process peak RSS)"
    print(f"device {gen.device}, sampling threads {SAMPLING_THREADS}, {args.steps} steps, guidance on, "
          f"{'continuing ' + str(GIVEN) + ' given frames, ' if args.extend else ''}candidates {record['candidates']}")
    print(f"one guided forward {forward * 1000:.1f} ms; {forwards:.1f} forwards a clip (steps, probes, finished "
          f"candidates) x forward {forwards * forward:.3f} s")
    print(f"time per clip {per_clip:.3f} s; sampler overhead {overhead * 100:.1f}%")
    print(f"peak memory {peak}")


if __name__ == "__main__":
    main()
