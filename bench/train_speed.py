"""Training speed of the generator's DiT per config: clips a second and MFU on this device.

One training step as `generator.train` runs it (rectified-flow loss with frame masks, backward,
gradient clip, AdamW, EMA; bf16 autocast on CUDA) on random latents and prompts, so the world's
rendering and the autoencoder are left out. FLOPs are counted by torch's FlopCounterMode on one
step; MFU is achieved FLOP/s over the peak a large dense matmul reaches here (bf16 on CUDA,
float32 on the CPU), measured in the same run. A last line says how many world clips a second the
training's data stream plans (`generator.train.WorldStream`: simulation, captions, tokens) with
`--data-workers` processes, and paints on the device: the data a run can feed its steps.

    python3 bench/train_speed.py [--configs tiny base] [--batch 16] [--steps 5] [--device auto] [--data-workers 2]
"""

from __future__ import annotations

import argparse
import copy
import time
from dataclasses import replace
from functools import partial

import torch
from torch.utils.flop_counter import FlopCounterMode

from generator.dit import DIT_CONFIGS, STDiT
from generator.flow import sample_frame_mask, training_loss, update_ema
from generator.train import WorldStream, plan_world_batch, training_vocabulary


def matmul_peak(device: torch.device, size: int = 4096, reps: int = 5) -> float:
    """FLOP/s of a dense square matmul: the practical peak the MFU is measured against."""
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    a = torch.randn(size, size, device=device, dtype=dtype)
    a @ a  # warm-up
    synchronize(device)
    started = time.perf_counter()
    for _ in range(reps):
        a @ a
    synchronize(device)
    return 2 * size**3 * reps / (time.perf_counter() - started)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


class TrainStep:
    """One optimisation step of the DiT on a fixed random batch."""

    def __init__(self, config, batch: int, device: torch.device):
        config = replace(config, vocabulary=training_vocabulary())  # the token table a run trains
        self.model = STDiT(config).to(device)
        self.ema = copy.deepcopy(self.model).requires_grad_(False)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=1e-4, fused=True)  # as generator.train
        g = torch.Generator().manual_seed(0)
        shape = (batch, config.frames, config.latent_channels, config.latent_size, config.latent_size)
        self.latents = torch.randn(shape, generator=g).to(device)  # (B, T, C, h, w)
        self.tokens = torch.randint(1, config.vocab_size, (batch, config.context_length), generator=g).to(device)
        self.frame_mask = sample_frame_mask(batch, config.frames, g, device)
        self.autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")

    def __call__(self) -> None:
        with self.autocast:
            loss = training_loss(self.model, self.latents, self.tokens, self.frame_mask)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.optimizer.step()
        update_ema(self.ema, self.model, 0.998)


def step_flops(step: TrainStep) -> int:
    with FlopCounterMode(display=False) as counter:
        step()
    return counter.get_total_flops()


def seconds_per_step(step: TrainStep, steps: int, device: torch.device) -> float:
    step()  # warm-up
    synchronize(device)
    started = time.perf_counter()
    for _ in range(steps):
        step()
    synchronize(device)
    return (time.perf_counter() - started) / steps


def data_clips_per_second(batch: int, workers: int, device: torch.device, plans: int) -> float:
    """World clips a second that a run's data stream plans with `workers` processes and paints on `device`."""
    stream = WorldStream(partial(plan_world_batch, batch=batch), first=0, workers=workers)
    try:
        for _ in range(max(1, stream.ahead)):  # every worker started, and a warm-up
            stream.next().batch(device)
        synchronize(device)
        started = time.perf_counter()
        for _ in range(plans):
            stream.next().batch(device)
        synchronize(device)
        return batch * plans / (time.perf_counter() - started)
    finally:
        stream.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=["tiny", "base"], choices=sorted(DIT_CONFIGS))
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=5, help="timed steps per config (after one warm-up step)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--data-workers", type=int, default=2, help="processes planning world batches (0: none)")
    parser.add_argument("--data-batches", type=int, default=8, help="timed world batches")
    args = parser.parse_args()
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          "cpu" if args.device == "auto" else args.device)
    peak = matmul_peak(device)
    where = torch.cuda.get_device_name() if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"{where}: dense matmul peak {peak / 1e12:.3f} TFLOP/s; batch {args.batch}")
    print(f"{'config':8s}{'params (M)':>12s}{'GFLOP/step':>12s}{'s/step':>10s}{'clips/s':>10s}{'MFU':>8s}")
    for name in args.configs:
        step = TrainStep(DIT_CONFIGS[name], args.batch, device)
        params = sum(p.numel() for p in step.model.parameters()) / 1e6
        flops = step_flops(step)
        seconds = seconds_per_step(step, args.steps, device)
        print(f"{name:8s}{params:12.1f}{flops / 1e9:12.2f}{seconds:10.3f}{args.batch / seconds:10.1f}"
              f"{flops / seconds / peak:8.1%}")
    clips = data_clips_per_second(args.batch, args.data_workers, device, args.data_batches)
    print(f"world data: {clips:.0f} clips/s planned by {args.data_workers} worker processes and painted on {device}")


if __name__ == "__main__":
    main()
