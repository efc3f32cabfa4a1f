"""Contrastive training of the built-in CLIP model (`reelbase-tiny`) on the synthetic world.

Each step renders fresh world clips, takes a few frames of each, and pairs every frame with a
description of its clip: the full caption or a random part of it ("a red ball", "something at
sunset"). Partial descriptions fit many frames of a batch, so the loss is CLIP's symmetric
cross-entropy with every compatible pair as a positive (a multi-positive InfoNCE, as in
SupCon, Khosla et al. 2020), judged on what a single frame can show.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from tqdm import tqdm

from common.files import atomic_path, remove_stale_temp_files
from generator import world
from indexer.encoder import ClipEncoder
from indexer.models import WEIGHTS_DIR, random_clip
from indexer.vocabulary import words_of, write_vocabulary

log = logging.getLogger(__name__)

EVAL_SEED = 9_000_001  # held out: never used for training batches


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 1500
    clips_per_step: int = 64
    frames_per_clip: int = 4  # batch = clips_per_step * frames_per_clip images
    lr: float = 5e-4
    warmup: int = 100
    weight_decay: float = 0.05
    full_caption_share: float = 0.5  # the rest are partial descriptions
    noise_std: float = 4.0  # max std of pixel noise, 0..255 scale (codec-like jitter)
    seed: int = 0
    checkpoint_every: int = 100
    eval_every: int = 250


def make_batch(step_seed: int, cfg: TrainConfig, device: str):
    """Frames (N, H, W, 3) uint8, their texts, and the (N, N) compatibility of texts and frames."""
    rng = np.random.default_rng(step_seed)
    clips = world.sample_clips(step_seed, 0, cfg.clips_per_step, device=device)
    frames, specs, texts = [], [], []
    for clip in clips:
        for t in rng.choice(len(clip.frames), cfg.frames_per_clip, replace=False):
            frames.append(clip.frames[t])
            specs.append(clip.spec)
            full = rng.random() < cfg.full_caption_share
            query = world.full_query(clip.spec) if full else world.partial_query(clip.spec, rng)
            texts.append(query)
    compat = np.array([[q.matches(s, visible_only=True) for s in specs] for q in texts])
    return np.stack(frames), [q.text for q in texts], torch.from_numpy(compat)


def multi_positive_loss(image_emb, text_emb, compat, logit_scale):
    """Symmetric InfoNCE where every compatible (text, image) pair is a positive (`compat` may weigh them)."""
    logits = logit_scale * text_emb @ image_emb.T  # (N texts, N images)
    target = compat.float().to(logits.device)
    loss_t = -(target / target.sum(1, keepdim=True) * F.log_softmax(logits, 1)).sum(1).mean()
    loss_i = -(target.T / target.T.sum(1, keepdim=True) * F.log_softmax(logits.T, 1)).sum(1).mean()
    return (loss_t + loss_i) / 2


def augment(x: torch.Tensor, rng: torch.Generator, noise_std: float) -> torch.Tensor:
    """Per-image Gaussian pixel noise, like the jitter of a lossy codec (x in 0..1)."""
    std = torch.rand(x.shape[0], 1, 1, 1, generator=rng, device=x.device) * noise_std / 255
    return (x + torch.randn(x.shape, generator=rng, device=x.device) * std).clamp(0, 1)


def lr_at(step: int, cfg) -> float:
    """Linear warm-up, then cosine decay to a tenth (`cfg` has `lr`, `warmup` and `steps`: this module's
    TrainConfig, or the temporal model's)."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    progress = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def evaluate(encoder: ClipEncoder, n_clips: int = 300) -> dict:
    """Text-to-frame retrieval on held-out clips: share of top-5 frames matching the query."""
    clips = world.sample_clips(EVAL_SEED, 0, n_clips)
    frames = np.stack([c.frames[8] for c in clips])
    image_emb = encoder.encode_images(frames)
    rng = np.random.default_rng(EVAL_SEED)
    scores = {}
    for kind in ("full", "partial"):
        queries = [world.full_query(c.spec) if kind == "full" else world.partial_query(c.spec, rng)
                   for c in clips[:100]]
        sims = encoder.encode_texts([q.text for q in queries]) @ image_emb.T
        top = np.argsort(-sims, axis=1)[:, :5]
        hits = [np.mean([q.matches(clips[j].spec, visible_only=True) for j in row]) for q, row in zip(queries, top)]
        scores[f"p@5_{kind}"] = float(np.mean(hits))
    return scores


def train(run_dir: str | Path, cfg: TrainConfig = TrainConfig(), device: str = "cpu",
          export: bool = True) -> dict:
    """Train (or resume) in `run_dir`; export the result as the built-in reelbase-tiny weights."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    clip = random_clip("reelbase-tiny", device)
    encoder = ClipEncoder(clip, device)
    model = clip.model
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    step, elapsed = _resume(run_dir, model, optimizer)
    noise_rng = torch.Generator(device).manual_seed(cfg.seed + step)
    history = []
    bar = tqdm(range(step, cfg.steps), initial=step, total=cfg.steps, desc="train clip")
    started = time.time() - elapsed
    for step in bar:
        model.train()
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, cfg)
        frames, texts, compat = make_batch(cfg.seed * 1_000_003 + step, cfg, device)
        x = encoder.normalize(augment(encoder.resize(frames), noise_rng, cfg.noise_std))
        image_emb = F.normalize(model.encode_image(x), dim=-1)
        text_emb = F.normalize(model.encode_text(clip.tokenizer(texts).to(device)), dim=-1)
        loss = multi_positive_loss(image_emb, text_emb, compat, model.logit_scale.exp().clamp(max=100))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        bar.set_postfix(loss=f"{loss.item():.3f}")
        history.append(loss.item())
        done = step + 1
        if done % cfg.eval_every == 0 or done == cfg.steps:
            model.eval()
            log.info("step %d loss %.3f %s", done, np.mean(history[-50:]), evaluate(encoder))
        if done % cfg.checkpoint_every == 0 or done == cfg.steps:
            _save_checkpoint(run_dir, model, optimizer, done, time.time() - started)
    model.eval()
    result = {"steps": cfg.steps, "seconds": round(time.time() - started, 1), "device": device,
              "final_loss": float(np.mean(history[-50:])) if history else None, **evaluate(encoder)}
    (run_dir / "result.json").write_text(json.dumps({"config": asdict(cfg), **result}, indent=2))
    if export:
        export_weights(model, WEIGHTS_DIR / "reelbase-tiny.safetensors")
        write_vocabulary(WEIGHTS_DIR / "reelbase-tiny.safetensors", training_vocabulary())
    return result


def training_vocabulary() -> frozenset[str]:
    """Every word the training texts can hold, from the caption grammar (`world.Query.text`).

    A text's words are its parts' words, so the texts of each attribute alone cover them all:
    each scene, each (colour, shape) noun phrase (either may be missing), two objects, and every
    motion of `world.sample_spec` (each speed word and direction, falling, colliding).
    """
    colours, shapes = [*world.COLOURS, None], [*world.SHAPES, None]
    motions = [world.motion_words(speed, d) for speed in world.SPEED_BANDS for d in world.DIRECTIONS]
    queries = [world.Query(scene=s) for s in world.SCENES]
    queries += [world.Query(objects=((c, s),)) for c in colours for s in shapes]
    queries += [world.Query(objects=((c, s), (c, s))) for c in colours for s in shapes]
    queries += [world.Query(motion=m) for m in [*motions, "falling", "colliding"]]
    return frozenset(w for q in queries for w in words_of(q.text))


def export_weights(model: torch.nn.Module, path: Path) -> None:
    """Save the weights as fp16 safetensors (the config JSON lives beside them)."""
    state = {k: v.detach().to(torch.float16).contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(state, str(path))
    log.info("wrote %s", path)


def _save_checkpoint(run_dir: Path, model, optimizer, step: int, elapsed: float) -> None:
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step, "elapsed": elapsed}
    with atomic_path(run_dir / "checkpoint.pt") as tmp:  # a kill never leaves half a checkpoint
        torch.save(state, tmp)


def _resume(run_dir: Path, model, optimizer) -> tuple[int, float]:
    path = run_dir / "checkpoint.pt"
    remove_stale_temp_files(run_dir)  # what a killed save left
    if not path.exists():
        return 0, 0.0
    state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    log.info("resumed from %s at step %d", path, state["step"])
    return state["step"], state.get("elapsed", 0.0)
