"""Training the generator's ST-DiT on the latents of its (already trained) frame autoencoder.

`reelbase train generator` streams clips from the synthetic world (or reads a folder of
captioned videos, `--data DIR`), encodes them with the frozen autoencoder, and trains the DiT
with the rectified-flow loss (optionally weighted towards the cells objects cover), frame
masks (given first / last / random frames) and prompt dropout for guidance. It keeps an EMA of
the weights, checkpoints atomically and resumes, and uses CUDA with bf16 autocast where present.
A run lasts a step count or a time budget (`--minutes`: the learning rate follows the clock, and
the EMA is exported every 2 minutes as well as at the end).

So that an accelerator is never kept waiting, each world batch is planned on the CPU (frame masks,
simulation, captions, tokens: `plan_world_batch`) in worker processes ahead of the step that takes it
(`WorldStream`), and painted on the device (`WorldPlan.batch`); the step itself reads nothing back
to the host (the losses are fetched every LOG_EVERY steps), and the optimizer and EMA update all
weights in fused kernels.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import multiprocessing
import os
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import asdict, dataclass, replace
from functools import partial
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from common.captions import captioned_videos, no_captioned_videos
from generator import world
from generator.autoencoder import load_autoencoder, lr_at, object_mask, to_video_tensor
from generator.checkpoint import WEIGHTS_DIR, autoencoder_file, builtin_path, load_training_state, save_training_state
from generator.dit import (
    DIT_CONFIGS,
    DiTConfig,
    STDiT,
    load_checkpoint,
    save_checkpoint,
    tokenize,
    vocabulary_of,
    with_prompt_terms,
    with_vocabulary,
)
from generator.flow import contrast_loss, sample_frame_mask, training_loss, update_ema
from generator.prompt import known_words, parse_prompt
from generator.video import square_frames

log = logging.getLogger(__name__)
LOG_EVERY = 20  # steps between reading the losses back from the device (the progress bar's figure)

@dataclass(frozen=True)
class GeneratorTrainConfig:
    config: str = "tiny"  # a DIT_CONFIGS name
    steps: int = 2000
    batch: int = 16
    lr: float = 6e-4
    warmup: int = 100
    weight_decay: float = 0.0
    ema_decay: float = 0.998
    prompt_drop: float = 0.1  # share of prompts replaced by the null prompt (for guidance)
    object_weight: float = 0.0  # extra loss weight on latent cells an object covers (0: a plain mean)
    seed: int = 0
    checkpoint_every: int = 100
    minutes: float = 0.0  # a time budget: train until it is spent, instead of for `steps` (0: by steps)
    save_every_minutes: float = 2.0  # a timed run checkpoints and exports this often (not by steps), and at the end
    time_shift: float | None = None  # training times shifted toward noise (flow.shift_times), kept in the model
    # config; None: the started model's (--init or a resumed run), else none (1)
    contrast: float = 0.0  # weight of the direction contrast (flow.contrast_loss) on world clips; 0: off
    contrast_from: float = 0.0  # the contrast's times are drawn from [contrast_from, 1] (near noise); 0: all
    upstream: float = 0.0  # share of world clips moving in a direction started upstream (world.started_upstream)
    upstream_continued: float | None = None  # that share among clips with given frames (continued); None: `upstream`
    frame_prompt: bool = False  # give the model a per-frame prompt term (dit.FramePrompt) if it has none
    spacetime_prompt: bool = False  # give the model a per-token prompt term (dit.SpacetimePrompt) if it has none
    prompt_terms_lr: float = 0.0  # learning rate of the prompt terms (new parts of a started model); 0: lr
    data_workers: int | None = None  # processes planning world batches (`WorldStream`); None: on CUDA all the
    # cores but two (at most 12), else 0 (planned in the training process, between steps)


# ---------------------------------------------------------------------------------------------
# Data


@dataclass
class Batch:
    """Training clips (B, T, 3, H, W) in [-1, 1] with their captions, their CLIP BPE ids and which frames are
    given (the frame mask); world batches also bring each clip's counterfactual (`world.turned_round`) where
    its caption names the direction it turns. All tensors are on the training device."""

    video: torch.Tensor
    captions: list[str]
    tokens: torch.Tensor  # (B, L)
    frame_mask: torch.Tensor  # (B, T) bool: the frames given (`sample_frame_mask`)
    counter: torch.Tensor | None = None  # (K, T, 3, H, W): the clips at `turned`, moving the other way
    turned: torch.Tensor | None = None  # (K,) indices into the batch


CAPTIONS, UPSTREAM = 1, 2  # what a step's own random streams are for (`step_stream`)


def step_stream(step_seed: int, purpose: int) -> np.random.Generator:
    """A step's random stream for one purpose, independent of its clips' (`world.clip_rng(step_seed, i)`, from
    the seed [step_seed, i]): numpy draws the same stream from [s] as from [s, 0], and from [s, 1] as clip 1's,
    so the purpose is a spawn key, not another seed word."""
    return np.random.default_rng(np.random.SeedSequence(step_seed, spawn_key=(purpose,)))


def given_frames(step_seed: int, batch: int, frames: int) -> torch.Tensor:
    """A step's frame mask, (B, T) bool on the CPU (`flow.sample_frame_mask`): drawn from the step's seed
    alone, so a batch is the same whichever process plans it and in whatever order."""
    return sample_frame_mask(batch, frames, torch.Generator().manual_seed(step_seed))


def training_caption(spec: world.ClipSpec, rng: np.random.Generator) -> str:
    """The canonical caption most of the time; else synonyms, another word order, or a part."""
    roll = rng.random()
    if roll < 0.6:
        return spec.caption
    if roll < 0.75:
        return world.partial_query(spec, rng).text
    return world.paraphrase(world.full_query(spec), rng)


class FolderClips:
    """Training clips from a folder of videos with captions: `clip.mp4` beside `clip.json`
    (`{"caption": ...}`, as `reelbase world` writes) or `clip.txt`.

    Each video is decoded once, at the world's frame rate and size (centre-cropped square), and
    kept in memory; a batch takes random windows of `frames` frames (short videos hold their
    last frame).
    """

    def __init__(self, folder: str | Path, frames: int = world.NUM_FRAMES, max_seconds: float = 30.0):
        self.frames = frames
        self.clips: list[tuple[np.ndarray, str]] = []
        for path, caption in captioned_videos(folder):
            try:
                self.clips.append((_decode_for_training(path, max_seconds), caption))
            except ValueError as exc:
                log.warning("skipping %s: %s", path, exc)
        if not self.clips:
            raise no_captioned_videos(folder)
        log.info("training on %d captioned videos from %s", len(self.clips), folder)

    def batch(self, step_seed: int, batch: int, device, context_length: int) -> Batch:
        rng = np.random.default_rng(step_seed)
        videos, captions = [], []
        for i in rng.integers(len(self.clips), size=batch):
            frames, caption = self.clips[i]
            start = int(rng.integers(max(1, len(frames) - self.frames + 1)))
            window = frames[start:start + self.frames]
            if len(window) < self.frames:
                window = np.concatenate([window, np.repeat(window[-1:], self.frames - len(window), axis=0)])
            videos.append(window)
            captions.append(caption)
        tokens = tokenize(captions, context_length).to(device)
        return Batch(to_video_tensor(np.stack(videos), device), captions, tokens,
                     given_frames(step_seed, batch, self.frames).to(device))


def _decode_for_training(path: Path, max_seconds: float) -> np.ndarray:
    """(T, SIZE, SIZE, 3) uint8: the video at the world's frame rate, centre-cropped and resized; a ValueError
    when it cannot be decoded or holds no frames."""
    import av  # here, not above: only footage needs PyAV, and an accelerator machine training on the world may lack it

    kept, next_t = [], 0.0
    try:
        with av.open(str(path)) as container:
            for frame in container.decode(video=0):
                t = float(frame.time or 0.0)
                if t > max_seconds:
                    break
                if t + 1e-6 >= next_t:
                    kept.append(square_frames(frame.to_ndarray(format="rgb24")[None], world.SIZE)[0])
                    next_t += 1.0 / world.FPS
    except av.error.FFmpegError as exc:
        raise ValueError(f"cannot decode: {exc}") from exc
    if not kept:
        raise ValueError("no frames")
    return np.stack(kept)


def object_weights(video: torch.Tensor, latent_size: int, weight: float, threshold: float) -> torch.Tensor:
    """Loss weights (B, T, 1, h, w) for latents of `video` (B, T, 3, H, W): 1 + weight on the cells
    any object pixel falls in (the autoencoder's object mask), 1 elsewhere.

    Objects cover a few of a frame's cells and their motion is all the clip's story, but a plain
    mean spends most of the loss on the background (as the autoencoder's own loss weighs them).
    """
    B, T = video.shape[:2]
    mask = object_mask(video.flatten(0, 1), threshold)  # (B*T, 1, H, W)
    cells = F.adaptive_max_pool2d(mask, latent_size)  # (B*T, 1, h, w)
    return (1 + weight * cells).view(B, T, 1, latent_size, latent_size)


@dataclass
class WorldPlan:
    """A world batch as the CPU makes it, all but the pixels (`plan_world_batch`): small arrays a worker
    process sends back, which `batch` paints on the training device."""

    frame_mask: np.ndarray  # (B, T) bool
    captions: list[str]
    tokens: np.ndarray  # (B, L) CLIP BPE ids
    drawing: world.Drawing  # the clips
    turned: np.ndarray  # (K,) indices of the clips whose caption names the direction they turn
    counter: world.Drawing | None  # those clips turned round (`world.turned_round`); None when K is 0

    def batch(self, device) -> Batch:
        """The `Batch` on `device`: its clips (and counterfactuals) painted there."""
        def there(array: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(array).to(device, non_blocking=True)

        counter = None if self.counter is None else to_video_tensor(world.draw(self.counter, device), device)
        return Batch(to_video_tensor(world.draw(self.drawing, device), device), self.captions, there(self.tokens),
                     there(self.frame_mask), counter, None if counter is None else there(self.turned))


def plan_world_batch(step_seed: int, batch: int, frames: int = world.NUM_FRAMES, context_length: int = 32,
                     upstream: float = 0.0, upstream_continued: float | None = None) -> WorldPlan:
    """A step's world batch, all but the pixels: its frame mask (`given_frames`), fresh clips (a share of
    those moving in a direction started upstream, `world_specs`, told which clips have given frames),
    simulated, their training captions and tokens, and the counterfactuals of those whose caption names
    a direction. A function of its arguments alone, so any worker process makes the same plan."""
    mask = given_frames(step_seed, batch, frames)
    specs = world_specs(step_seed, batch, upstream, upstream_continued, mask.any(dim=1).tolist())
    rng = step_stream(step_seed, CAPTIONS)
    captions = [training_caption(spec, rng) for spec in specs]
    turned = [i for i, (spec, caption) in enumerate(zip(specs, captions)) if names_its_direction(spec, caption)]
    counter = [world.turned_round(specs[i]) for i in turned]
    return WorldPlan(mask.numpy(), captions, tokenize(captions, context_length).numpy(), _drawing(specs),
                     np.array(turned, dtype=np.int64), _drawing(counter) if counter else None)


def world_batch(step_seed: int, batch: int, device, upstream: float = 0.0, upstream_continued: float | None = None,
                frames: int = world.NUM_FRAMES, context_length: int = 32) -> Batch:
    """A step's world batch (`plan_world_batch`) on `device`, planned in this process."""
    return plan_world_batch(step_seed, batch, frames, context_length, upstream, upstream_continued).batch(device)


def _drawing(specs: list[world.ClipSpec]) -> world.Drawing:
    return world.pack(specs, world.simulate_batch(specs))


class WorldStream:
    """A run's world batches, planned ahead: the plans of consecutive step seeds from `first`, made by
    `plan` (a picklable function of the seed) in `workers` processes, or in this one for 0. At most
    `ahead` plans wait (made or being made), so a slow step never lets them pile up in memory. The
    plans are the same for any number of workers (`plan_world_batch` depends on the seed alone)."""

    def __init__(self, plan: Callable[[int], WorldPlan], first: int, workers: int = 0, ahead: int | None = None):
        self.plan, self.seed = plan, first
        self.ahead = ahead or 2 * workers
        self.pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) if workers else None
        self.waiting: deque[Future] = deque()

    def next(self) -> WorldPlan:
        """The next seed's plan."""
        if self.pool is None:
            self.seed += 1
            return self.plan(self.seed - 1)
        while len(self.waiting) < self.ahead:
            self.waiting.append(self.pool.submit(self.plan, self.seed + len(self.waiting)))
        self.seed += 1
        return self.waiting.popleft().result()

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)


def data_workers(cfg: GeneratorTrainConfig, device) -> int:
    """How many processes plan world batches: the config's, else on CUDA all the cores but two (at most 12;
    one 256-clip plan takes a core about 0.13 s, a tiny step on an H200 0.044 s), else none."""
    if cfg.data_workers is not None:
        return cfg.data_workers
    return min(12, max(1, (os.cpu_count() or 1) - 2)) if torch.device(device).type == "cuda" else 0


def world_specs(step_seed: int, batch: int, upstream: float, upstream_continued: float | None = None,
                continued: list[bool] | None = None) -> list[world.ClipSpec]:
    """The world stream's next `batch` specs, a share of those moving in a direction started upstream
    (the rest as the world draws them): `upstream` of the clips made from the prompt alone, and
    `upstream_continued` (None: `upstream`) of those marked `continued` (they have given frames).

    The two kinds of clip teach different things. From a prompt alone, a clip that crosses the frame
    as asked shows its direction in every frame; continuing given frames, the model must carry on
    whatever they show, reflections off the edges included, and those are rare in upstream starts.
    """
    rng = step_stream(step_seed, UPSTREAM)
    specs = [world.sample_spec(world.clip_rng(step_seed, i)) for i in range(batch)]
    continued = continued or [False] * batch
    shares = [upstream if not c or upstream_continued is None else upstream_continued for c in continued]
    return [world.started_upstream(s, rng) if rng.random() < share else s for s, share in zip(specs, shares)]


def names_its_direction(spec: world.ClipSpec, caption: str) -> bool:
    """True for one object moving in a direction that the caption names (partial captions may not)."""
    direction = world.direction_of(spec)
    return direction is not None and parse_prompt(caption).direction == direction


# ---------------------------------------------------------------------------------------------
# Training loop


def lr_over_time(step: int, seconds: float, budget_s: float, lr: float, warmup: int) -> float:
    """Linear warm-up over the first `warmup` steps, then cosine to a tenth over a time budget."""
    if step < warmup:
        return lr * (step + 1) / warmup
    progress = min(1.0, seconds / budget_s)
    return lr * (0.1 + 0.45 * (1 + math.cos(math.pi * progress)))


@dataclass
class Schedule:
    """When a run stops, its learning rate and when it saves: a step count, or a time budget."""

    cfg: GeneratorTrainConfig

    def learning_rate(self, step: int, seconds: float) -> float:
        if self.cfg.minutes:
            return lr_over_time(step, seconds, 60 * self.cfg.minutes, self.cfg.lr, self.cfg.warmup)
        return lr_at(step, self.cfg.steps, self.cfg.lr, self.cfg.warmup)

    def finished(self, step: int, seconds: float, step_s: float) -> bool:
        """Done when the steps are made, or when one more step would end past the time budget."""
        if self.cfg.minutes:
            return seconds + step_s > 60 * self.cfg.minutes
        return step >= self.cfg.steps

    def save_due(self, step: int, seconds: float, last_save_s: float) -> bool:
        """Every `checkpoint_every` steps; in a timed run every `save_every_minutes` instead (a save waits for the
        device and copies the model: on an accelerator, 100 steps are a few seconds)."""
        if self.cfg.minutes:
            return seconds - last_save_s >= 60 * self.cfg.save_every_minutes
        return step % self.cfg.checkpoint_every == 0


def train_generator(run_dir: str | Path, cfg: GeneratorTrainConfig = GeneratorTrainConfig(), device: str = "cpu",
                    autoencoder: str | Path | None = None,
                    export: str | Path | None = builtin_path("tiny"),
                    init: str | Path | None = None, data: str | Path | None = None,
                    dit_config: DiTConfig | None = None, clock: Callable[[], float] = time.monotonic) -> dict:
    """Train (or resume) the DiT in `run_dir` for `cfg.steps` steps or `cfg.minutes`; export its
    EMA weights (fp16) at every save of a timed run and when done.

    `init` starts a new run from a model file (the shipped weights, say) instead of from scratch,
    so training can go on across machines that keep only the shipped file. `data` is a folder
    of captioned videos to train on instead of the world stream (see `FolderClips`).
    `dit_config` trains that model config instead of the registry's `cfg.config` (`init`'s
    own config wins over both). The model's token table has rows for the words it trains on
    (`training_vocabulary`): the world's, and a folder's captions'. It trains on the latents of
    `autoencoder`, by default the built-in one its config names (`DiTConfig.autoencoder`): an export to the
    built-in folder finds it beside itself; an export elsewhere loads with that autoencoder given.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    resumed = (run_dir / "state.pt").exists()
    start, start_extra = _weights_to_start_from(run_dir / "ema.safetensors" if resumed else init)
    base = start.config if start else dit_config or DIT_CONFIGS[cfg.config]
    folder = FolderClips(data, base.frames) if data else None
    if start is not None and not resumed:
        start = with_vocabulary(start, training_vocabulary(folder, start.config.vocabulary))
        start = with_prompt_terms(start, cfg.frame_prompt, cfg.spacetime_prompt)
    architecture = start.config if start else replace(
        base, vocabulary=training_vocabulary(folder), frame_prompt=base.frame_prompt or cfg.frame_prompt,
        spacetime_prompt=base.spacetime_prompt or cfg.spacetime_prompt)
    dit_config = architecture if cfg.time_shift is None else replace(architecture, time_shift=cfg.time_shift)

    ae, _ = load_autoencoder(autoencoder or WEIGHTS_DIR / autoencoder_file(dit_config.autoencoder), device)
    ae.config.check_latents(dit_config.latent_channels, dit_config.latent_size, dit_config.frame_size)
    ae.requires_grad_(False)
    model = STDiT(dit_config).to(device)
    if start is not None:
        model.load_state_dict(start.state_dict())
    ema = copy.deepcopy(model).requires_grad_(False)
    groups = parameter_groups(model, cfg)
    optimizer = torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)  # one kernel
    step, elapsed, earlier = _resume(run_dir, model, ema, optimizer, init, start_extra)
    keep_fused(optimizer)
    for group, ours in zip(optimizer.param_groups, groups):  # a resumed state's groups: this run's rates
        group["lr_scale"] = ours["lr_scale"]
    # Batches are numbered across runs (`earlier` steps came before), so a run continued from
    # shipped weights sees fresh world clips rather than the first run's again.
    seeds = cfg.seed * 1_000_003 + earlier  # step k's batch is drawn from seeds + k
    plan = partial(plan_world_batch, batch=cfg.batch, frames=dit_config.frames,
                   context_length=dit_config.context_length, upstream=cfg.upstream,
                   upstream_continued=cfg.upstream_continued)
    stream = None if folder else WorldStream(plan, seeds + step, data_workers(cfg, device))
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=torch.device(device).type == "cuda")
    schedule, losses, unread, saved_at = Schedule(cfg), [], [], []
    started = clock() - elapsed
    last_save_s, step_s, now = elapsed, 0.0, clock()
    bar = tqdm(initial=step, total=None if cfg.minutes else cfg.steps, desc="train generator")
    try:
        while not schedule.finished(step, now - started, step_s):
            for group in optimizer.param_groups:
                group["lr"] = schedule.learning_rate(step, now - started) * group["lr_scale"]
            batch = stream.next().batch(device) if stream else \
                folder.batch(seeds + step, cfg.batch, device, dit_config.context_length)
            latents, weight = _latents(ae, batch.video, cfg.object_weight)  # (B, T, C, h, w)
            with autocast:
                loss = training_loss(model, latents, batch.tokens, batch.frame_mask, cfg.prompt_drop, weight=weight,
                                     time_shift=dit_config.time_shift)
                if cfg.contrast and batch.counter is not None:
                    loss = loss + cfg.contrast * _contrast(model, ae, batch, latents, weight, batch.tokens, cfg)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            update_ema(ema, model, min(cfg.ema_decay, (1 + step) / (10 + step)))
            unread.append(loss.detach())
            step += 1
            before, now = now, clock()
            step_s = now - before if step_s == 0 else 0.9 * step_s + 0.1 * (now - before)  # a running mean
            bar.update()
            save = schedule.save_due(step, now - started, last_save_s)
            if save or len(unread) >= LOG_EVERY:  # the only reads from the device
                losses += torch.stack(unread).float().tolist()
                unread.clear()
                bar.set_postfix(loss=f"{np.mean(losses[-LOG_EVERY:]):.4f}")
            if save:
                _save(run_dir, model, ema, optimizer, step, now - started, earlier, dit_config)
                last_save_s = now - started
                saved_at.append(step)
                log.info("step %d loss %.4f", step, np.mean(losses[-100:]))
                if export and cfg.minutes:  # a timed run's export is never older than a few minutes
                    _export(export, ema, dit_config, _result(cfg, step, now - started, device, losses, earlier,
                                                             data, final=False))
    finally:
        if stream:
            stream.close()
    bar.close()
    losses += torch.stack(unread).float().tolist() if unread else []
    if not saved_at or saved_at[-1] != step:
        _save(run_dir, model, ema, optimizer, step, now - started, earlier, dit_config)
    result = _result(cfg, step, now - started, device, losses, earlier, data, final=True)
    (run_dir / "result.json").write_text(json.dumps(result, indent=2))
    if export:
        _export(export, ema, dit_config, result)
    return result


def keep_fused(optimizer: torch.optim.Optimizer) -> None:
    """Fused updates again after a resume: `load_state_dict` takes the options the state was saved with (unfused
    before session 21), and the fused kernel reads each step count as a float on the weights' device."""
    for group in optimizer.param_groups:
        group["fused"], group["foreach"] = True, None
        for param in group["params"]:
            state = optimizer.state.get(param, {})
            if "step" in state:
                state["step"] = state["step"].to(param.device, torch.float32)


def parameter_groups(model: STDiT, cfg: GeneratorTrainConfig) -> list[dict]:
    """The optimizer's parameter groups, each with the share `lr_scale` of the scheduled rate it takes:
    one for the whole model; with `cfg.prompt_terms_lr`, the prompt terms (`FramePrompt`,
    `SpacetimePrompt`) in a second group at that rate. Added to a trained model they start at zero
    and have everything to learn, while the rest is only refined at a rate that keeps what it knows.
    """
    terms = [p for part in (model.frame_prompt, model.spacetime_prompt) if part is not None for p in part.parameters()]
    if not cfg.prompt_terms_lr or not terms:
        return [{"params": list(model.parameters()), "lr_scale": 1.0}]
    ids = {id(p) for p in terms}
    rest = [p for p in model.parameters() if id(p) not in ids]
    return [{"params": rest, "lr_scale": 1.0}, {"params": terms, "lr_scale": cfg.prompt_terms_lr / cfg.lr}]


def _latents(ae, video: torch.Tensor, object_weight: float) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The autoencoder's latents of a video batch, and their loss weights (None for a plain mean)."""
    with torch.no_grad():
        latents = ae.encode(video)
        weight = object_weights(video, latents.shape[-1], object_weight, ae.config.object_threshold) \
            if object_weight else None
    return latents, weight


def _contrast(model, ae, batch: Batch, latents, weight, tokens, cfg: GeneratorTrainConfig) -> torch.Tensor:
    """The direction contrast (flow.contrast_loss) of the batch's clips that have a counterfactual."""
    counter, counter_weight = _latents(ae, batch.counter, cfg.object_weight)
    own_weight = None if weight is None else weight[batch.turned]
    return contrast_loss(model, latents[batch.turned], counter, tokens[batch.turned], own_weight, counter_weight,
                         t_from=cfg.contrast_from)


def _result(cfg, step: int, seconds: float, device, losses: list[float], earlier: int, data, final: bool) -> dict:
    """What a run did: steps, time, losses and settings (kept in the exported file)."""
    return {"steps": step, "seconds": round(seconds, 1), "device": str(device), "batch": cfg.batch,
            "initial_loss": float(np.mean(losses[:10])) if losses else None,
            "final_loss": float(np.mean(losses[-10:])) if losses else None, "config": asdict(cfg),
            "steps_before": earlier, "steps_total": earlier + step, "data": str(data) if data else "world",
            "final": final}


def _export(path: str | Path, ema, dit_config: DiTConfig, result: dict) -> None:
    """The EMA weights as fp16 (a copy: training goes on with the fp32 EMA)."""
    save_checkpoint(path, copy.deepcopy(ema).half(), dit_config, {"train": result})
    log.info("wrote %s (step %d)", path, result["steps"])


def _save(run_dir: Path, model, ema, optimizer, step: int, elapsed: float, earlier: int, dit_config) -> None:
    """Training state (atomic) and the EMA weights as a loadable safetensors checkpoint."""
    save_training_state(run_dir / "state.pt", {"model": model, "ema": ema, "optimizer": optimizer},
                        step=step, elapsed=elapsed, earlier=earlier)
    save_checkpoint(run_dir / "ema.safetensors", ema, dit_config, {"step": step, "steps_total": earlier + step})


def _weights_to_start_from(path: Path | str | None) -> tuple[STDiT | None, dict]:
    """The model in a file (a resumed run's EMA, which its state then overwrites, or `init`) and the
    file's notes, if there is a file: its config is the run's."""
    if not path:
        return None, {}
    model, _, extra = load_checkpoint(path)
    return model, extra


def training_vocabulary(folder: FolderClips | None = None, known: tuple[int, ...] | None = ()) -> tuple[int, ...]:
    """The BPE ids a model gets rows for: every word of the world (`prompt.known_words`), a folder's
    captions', and those `known` to the model it starts from (None: it has a row for every id)."""
    words = known_words() + ([caption for _, caption in folder.clips] if folder else [])
    return tuple(sorted(set(vocabulary_of(words)) | set(known or ())))


def _resume(run_dir: Path, model, ema, optimizer, init, init_extra: dict) -> tuple[int, float, int]:
    """(step, seconds, steps trained before this run): from the run's state, or `init` weights (already
    in `model` and `ema`; `init_extra` is the notes of its file)."""
    try:
        state = load_training_state(run_dir / "state.pt", {"model": model, "ema": ema, "optimizer": optimizer})
    except ValueError as exc:  # the optimizer's groups differ: a run started with(out) prompt_terms_lr
        raise ValueError(f"{run_dir} was trained with other parameter groups ({exc}); resume it with the "
                         "prompt terms' learning rate it started with") from exc
    if state:
        log.info("resumed from %s at step %d", run_dir / "state.pt", state["step"])
        return state["step"], state["elapsed"], state.get("earlier", 0)
    if init:
        trained = init_extra.get("train", init_extra)  # shipped weights keep the run's result; run EMAs their step
        earlier = int(trained.get("steps_total", trained.get("steps", 0)))
        log.info("starting from %s (trained %d steps before)", init, earlier)
        return 0, 0.0, earlier
    return 0, 0.0, 0
