"""Contrastive training of the temporal model (`indexer.temporal`) over a CLIP model's frame vectors.

The training windows are what the index makes of a video: its file read by the index reader at
the index rate, its frames embedded by the (frozen) CLIP model, cut into windows
(`indexer.temporal.window_spans`). They are made once and kept in the run folder
(`windows-*.npz`), so a resumed run does not make them again.
- The world (`reelbase train clip --temporal`): synthetic clips with their truth, written as
  H.264 and read back, so training sees the codec as ingest does. Each window is paired with a
  description of its clip, the full caption, a part of it ("something falling") or either in
  other words, and every compatible pair in a batch is a positive (the multi-positive InfoNCE
  of `indexer.train_clip`), judged with motion: "moving left" is not a ball moving right.
  The world's truth also names each window's motion and each text's, so small heads learn to
  tell them (direction and speed band) from both sides' states, beside the contrastive loss.
  Without them neither side starts with motion in it (the CLIP vectors carry none, and the
  built-in text model's outputs of "left" and "right" are the same), and the contrastive loss
  alone found no direction in 500 steps (precision at chance).
- A folder of captioned videos (`--data DIR`: `clip.mp4` beside `clip.json` with a `caption`,
  or `clip.txt`): each window of a video is paired with its caption, and windows of videos with
  the same caption are positives of each other.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from common.captions import captioned_videos, no_captioned_videos
from common.files import atomic_path, remove_stale_temp_files
from generator import world
from indexer.encoder import ClipEncoder
from indexer.reader import read_frames
from indexer.temporal import TemporalConfig, TemporalModel, window_spans
from indexer.temporal_models import save_temporal_model, text_features
from indexer.train_clip import lr_at, multi_positive_loss
from indexer.writer import INDEX_RATE, MAX_SAMPLED

log = logging.getLogger(__name__)

EVAL_SEED = 9_000_002  # held-out world clips for the scores (never a training seed, nor bench/retrieval.py's)
CHUNK = 256  # world clips made (rendered, encoded, read, embedded) and kept per file


@dataclass(frozen=True)
class TemporalTrainConfig:
    steps: int = 1500
    batch: int = 128  # windows per step
    clips: int = 12_000  # world clips in the training set
    eval_clips: int = 400
    lr: float = 1e-3
    warmup: int = 100
    weight_decay: float = 0.05
    width: int = 128
    layers: int = 2
    heads: int = 4
    pixels: int = 32
    full_share: float = 0.4  # of a batch's texts: full captions; then other words; the rest parts
    paraphrase_share: float = 0.2
    pixel_noise: float = 3.0  # max std of extra pixel noise, 0..255 scale
    motion_weight: float = 0.5  # of the motion heads' loss (world only)
    look_weight: float = 0.25  # of a text's pairing with a clip that looks as it says but moves otherwise
    seed: int = 0
    checkpoint_every: int = 100
    eval_every: int = 250


@dataclass
class WindowSet:
    """Training windows: padded (N, T, ...) arrays and what each window shows (a world spec or a caption)."""

    features: np.ndarray  # (N, T, D) float16 CLIP frame vectors
    pixels: np.ndarray  # (N, T, P, P, 3) uint8
    times: np.ndarray  # (N, T) float32 seconds
    mask: np.ndarray  # (N, T) bool
    labels: list  # world.ClipSpec or caption str per window

    def __len__(self) -> int:
        return len(self.labels)

    def tensors(self, rows: np.ndarray, device: str, noise: float, rng: torch.Generator):
        """The windows at `rows` as the model's inputs (with fresh pixel noise when `noise`)."""
        feats = torch.from_numpy(self.features[rows].astype(np.float32)).to(device)
        pixels = torch.from_numpy(self.pixels[rows]).to(device).permute(0, 1, 4, 2, 3).float().div_(255)
        if noise:
            std = torch.rand(pixels.shape[:2] + (1, 1, 1), generator=rng, device=device) * noise / 255
            pixels = (pixels + torch.randn(pixels.shape, generator=rng, device=device) * std).clamp_(0, 1)
        times = torch.from_numpy(self.times[rows]).to(device)
        return feats, pixels, times, torch.from_numpy(self.mask[rows]).to(device)


# ---------------------------------------------------------------------------------------------
# Making the windows, as the index makes them


def video_windows(path: Path, encoder: ClipEncoder, pixels: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """A video file's windows, read and embedded as ingest does: [(features (T, D), pixels (T, P, P, 3) uint8,
    times (T,))]."""
    sampled = read_frames(path, INDEX_RATE, MAX_SAMPLED)
    features = encoder.encode_images(sampled.frames)
    squares = (encoder.resize(sampled.frames, pixels) * 255).round().byte().permute(0, 2, 3, 1).cpu().numpy()
    return [(features[a:b], squares[a:b], sampled.times[a:b].astype(np.float32))
            for a, b in window_spans(len(sampled.frames))]


def padded(windows: list[tuple[np.ndarray, np.ndarray, np.ndarray]], labels: list) -> WindowSet:
    longest = max(len(f) for f, _, _ in windows)
    n, (d, p) = len(windows), (windows[0][0].shape[1], windows[0][1].shape[1])
    out = WindowSet(np.zeros((n, longest, d), np.float16), np.zeros((n, longest, p, p, 3), np.uint8),
                    np.zeros((n, longest), np.float32), np.zeros((n, longest), bool), list(labels))
    for i, (f, px, t) in enumerate(windows):
        out.features[i, :len(f)], out.pixels[i, :len(f)], out.times[i, :len(f)], out.mask[i, :len(f)] = f, px, t, True
    return out


def world_windows(run_dir: Path, seed: int, count: int, encoder: ClipEncoder, pixels: int, name: str) -> WindowSet:
    """The windows of world clips 0..count of `seed`, made once per chunk and kept in the run folder."""
    parts = []
    for start in tqdm(range(0, count, CHUNK), desc=f"{name} windows", unit="chunk"):
        size = min(CHUNK, count - start)
        path = run_dir / f"{name}-{seed}-{start:06d}-{size}.npz"
        parts.append(_world_chunk(path, seed, start, size, encoder, pixels))
    return WindowSet(np.concatenate([p.features for p in parts]), np.concatenate([p.pixels for p in parts]),
                     np.concatenate([p.times for p in parts]), np.concatenate([p.mask for p in parts]),
                     [label for p in parts for label in p.labels])


def _world_chunk(path: Path, seed: int, start: int, count: int, encoder: ClipEncoder, pixels: int) -> WindowSet:
    specs = [world.sample_spec(world.clip_rng(seed, i)) for i in range(start, start + count)]
    if path.exists():
        with np.load(path) as kept:
            return WindowSet(kept["features"], kept["pixels"], kept["times"], kept["mask"], specs)
    from generator.video import write_mp4

    windows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n, clip in enumerate(world.make_clips(specs)):
            file = write_mp4(Path(tmp) / f"{n}.mp4", clip.frames, world.FPS)
            (window,) = video_windows(file, encoder, pixels)  # a world clip is two seconds: one window
            windows.append(window)
    made = padded(windows, specs)
    with atomic_path(path) as tmp_path, open(tmp_path, "wb") as f:
        np.savez(f, features=made.features, pixels=made.pixels, times=made.times, mask=made.mask)
    return made


def folder_windows(folder: Path, encoder: ClipEncoder, pixels: int) -> WindowSet:
    """The windows of every captioned video in a folder (`clip.mp4` with `clip.json` or `clip.txt`), each
    labelled with its video's caption; a video that cannot be read is skipped with a warning."""
    from indexer.probe import BadVideo

    windows, captions = [], []
    for path, caption in captioned_videos(folder):
        try:
            found = video_windows(path, encoder, pixels)
        except BadVideo as bad:
            log.warning("skipping %s: %s", path, bad.reason)
            continue
        windows += found
        captions += [caption] * len(found)
    if not windows:
        raise no_captioned_videos(folder)
    log.info("training on %d windows of %d captions from %s", len(windows), len(set(captions)), folder)
    return padded(windows, captions)


# ---------------------------------------------------------------------------------------------
# Texts


class TextCache:
    """The CLIP text model's features of each text, computed once (the CLIP model is frozen)."""

    def __init__(self, encoder: ClipEncoder):
        self.encoder = encoder
        self._kept: dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}

    def batch(self, texts: list[str]):
        """(B, D) text vectors, (B, L, W) token features and (B, L) masks of `texts`."""
        new = [t for t in dict.fromkeys(texts) if t not in self._kept]
        if new:
            with torch.inference_mode():
                pooled, tokens, mask = text_features(self.encoder, new)
            self._kept.update(zip(new, zip(pooled.clone(), tokens.clone(), mask.clone())))
        rows = [self._kept[t] for t in texts]
        return tuple(torch.stack([r[i] for r in rows]) for i in range(3))


def world_texts(specs: list[world.ClipSpec], cfg: TemporalTrainConfig, rng: np.random.Generator):
    """A description of each clip (full, in other words, or a part), the (B texts, B windows) weights of which
    descriptions fit which clips (1 where all of it does, motion included; `look_weight` where all but the motion
    does, so that after the clips that fit come those that look right), and the queries the descriptions say."""
    queries, texts = [], []
    for spec in specs:
        roll, whole = rng.random(), cfg.full_share + cfg.paraphrase_share
        query = world.full_query(spec) if roll < whole else world.partial_query(spec, rng)
        other_words = cfg.full_share <= roll < whole or rng.random() < 0.2
        queries.append(query)
        texts.append(world.paraphrase(query, rng) if other_words else query.text)
    fits = np.array([[q.matches(s) for s in specs] for q in queries], np.float32)
    looks = np.array([[q.matches(s, visible_only=True) for s in specs] for q in queries], np.float32)
    return texts, torch.from_numpy(np.maximum(fits, cfg.look_weight * looks)), queries


DIRECTIONS = (*world.DIRECTIONS, "falling", "colliding")  # what moves how, as the motion heads tell it
SPEEDS = tuple(world.SPEED_BANDS)  # "slowly", "" and "quickly"


def motion_classes(motion: str | None, named: bool) -> tuple[int, int]:
    """A motion's (direction, speed) classes. The class after the last stands for none: no motion named, or no
    speed (falling, colliding; or a text's "moving left", which names any speed, where a clip's is the middle
    band: `named` is False for a clip's motion)."""
    if motion is None:
        return len(DIRECTIONS), len(SPEEDS)
    if motion in DIRECTIONS:
        return DIRECTIONS.index(motion), len(SPEEDS)
    words = motion.split()[1:]  # "moving [speed] direction"
    speed = words[0] if len(words) == 2 else None if named else ""
    return DIRECTIONS.index(words[-1]), SPEEDS.index(speed) if speed is not None else len(SPEEDS)


class MotionHeads(torch.nn.Module):
    """Training-only heads: a window's and a text's motion (direction, speed band) from their states."""

    def __init__(self, width: int):
        super().__init__()
        self.window = torch.nn.ModuleList([torch.nn.Linear(width, len(DIRECTIONS) + 1),
                                           torch.nn.Linear(width, len(SPEEDS) + 1)])
        self.text = torch.nn.ModuleList([torch.nn.Linear(width, len(DIRECTIONS) + 1),
                                         torch.nn.Linear(width, len(SPEEDS) + 1)])

    def loss(self, window_state, specs, text_state, queries) -> torch.Tensor:
        total = 0.0
        for heads, state, labels in ((self.window, window_state, [motion_classes(s.motion, False) for s in specs]),
                                     (self.text, text_state, [motion_classes(q.motion, True) for q in queries])):
            target = torch.tensor(labels, device=state.device)
            total = total + sum(F.cross_entropy(head(state), target[:, i]) for i, head in enumerate(heads))
        return total / 4


def caption_texts(captions: list[str]):
    """Each window's caption, which windows share a caption, and no queries (a caption's motion is not known)."""
    compat = np.array([[a == b for b in captions] for a in captions])
    return list(captions), torch.from_numpy(compat), []


# ---------------------------------------------------------------------------------------------
# Training


def evaluate(model: TemporalModel, texts: TextCache, held_out: WindowSet, device: str, queries: int = 200) -> dict:
    """Text-to-window retrieval on held-out world clips: precision@5 of full captions with motion judged and
    with only what one frame shows, precision@10 of partial descriptions that name a motion."""
    model.eval()
    with torch.inference_mode():
        vectors = torch.cat([model.embed_windows(*held_out.tensors(np.arange(i, min(i + 256, len(held_out))),
                                                                   device, 0, None))
                             for i in range(0, len(held_out), 256)])
    specs = held_out.labels
    rng = np.random.default_rng(EVAL_SEED)
    full = [world.full_query(s) for s in specs[:queries]]
    partial = []
    while len(partial) < queries:
        q = world.partial_query(specs[int(rng.integers(len(specs)))], rng)
        if q.motion:
            partial.append(q)
    scores = {}
    for name, qs, k, visible in (("full_motion@5", full, 5, False), ("full_visible@5", full, 5, True),
                                 ("partial_motion@10", partial, 10, False)):
        with torch.inference_mode():
            sims = model.embed_texts(*texts.batch([q.text for q in qs])) @ vectors.T
        top = sims.argsort(dim=1, descending=True)[:, :k].cpu().numpy()
        scores[name] = round(float(np.nanmean([_precision(q, row, specs, k, visible) for q, row in zip(qs, top)])), 3)
    return scores


def _precision(query: world.Query, row: np.ndarray, specs: list, k: int, visible: bool) -> float:
    true = sum(query.matches(s, visible_only=visible) for s in specs)
    k = min(k, true)
    return sum(query.matches(specs[j], visible_only=visible) for j in row[:k]) / k if k else float("nan")


def train(run_dir: str | Path, encoder: ClipEncoder, cfg: TemporalTrainConfig = TemporalTrainConfig(),
          data: str | Path | None = None, export: Path | None = None, command: str = "") -> dict:
    """Train (or resume) the temporal model over `encoder`'s CLIP model in `run_dir`, on the world or on a
    folder of captioned videos (`data`); export it to `export` (a `.temporal.safetensors` path)."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_temp_files(run_dir)
    device = str(encoder.device)
    torch.manual_seed(cfg.seed)
    train_set = (folder_windows(Path(data), encoder, cfg.pixels) if data else
                 world_windows(run_dir, cfg.seed + 1, cfg.clips, encoder, cfg.pixels, "train"))
    held_out = world_windows(run_dir, EVAL_SEED, cfg.eval_clips, encoder, cfg.pixels, "eval") if not data else None
    texts = TextCache(encoder)
    text_width = texts.batch(["a"])[1].shape[-1]
    model = TemporalModel(TemporalConfig(clip_dim=encoder.dim, text_width=text_width, width=cfg.width,
                                         layers=cfg.layers, heads=cfg.heads, pixels=cfg.pixels,
                                         max_tokens=max(77, encoder.clip.tokenizer(["a"]).shape[1]))).to(device)
    heads = MotionHeads(cfg.width).to(device)
    optimizer = torch.optim.AdamW([*model.parameters(), *heads.parameters()], lr=cfg.lr,
                                  weight_decay=cfg.weight_decay)
    step, elapsed = _resume(run_dir, model, heads, optimizer)
    noise = torch.Generator(device).manual_seed(cfg.seed + step)
    batch = min(cfg.batch, len(train_set))
    started, history = time.time() - elapsed, []
    bar = tqdm(range(step, cfg.steps), initial=step, total=cfg.steps, desc="train temporal")
    for step in bar:
        model.train()
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, cfg)
        rng = np.random.default_rng([cfg.seed, step])
        rows = np.sort(rng.choice(len(train_set), batch, replace=False))
        labels = [train_set.labels[i] for i in rows]
        batch_texts, compat, queries = world_texts(labels, cfg, rng) if not data else caption_texts(labels)
        features, pixels, times, mask = train_set.tensors(rows, device, cfg.pixel_noise, noise)
        window_state = model.window_state(features, pixels, times, mask)
        windows = model.windows_out(features, mask, window_state)
        unique, which = np.unique(batch_texts, return_inverse=True)  # partial descriptions repeat
        pooled, tokens, token_mask = texts.batch(list(unique))
        which = torch.from_numpy(which.reshape(-1))
        text_state = model.text_state(tokens, token_mask)[which]
        text_vectors = model.texts_out(pooled[which], text_state)
        loss = multi_positive_loss(windows, text_vectors, compat, model.logit_scale.exp().clamp(max=100))
        if queries:
            loss = loss + cfg.motion_weight * heads.loss(window_state, labels, text_state, queries)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([*model.parameters(), *heads.parameters()], 1.0)
        optimizer.step()
        history.append(loss.item())
        bar.set_postfix(loss=f"{np.mean(history[-20:]):.3f}")
        done = step + 1
        if held_out is not None and (done % cfg.eval_every == 0 or done == cfg.steps):
            log.info("step %d loss %.3f %s", done, np.mean(history[-50:]), evaluate(model, texts, held_out, device))
        if done % cfg.checkpoint_every == 0 or done == cfg.steps:
            _save_checkpoint(run_dir, model, heads, optimizer, done, time.time() - started)
    model.eval()
    result = {"steps": cfg.steps, "seconds": round(time.time() - started, 1), "device": device,
              "clip_model": encoder.name, "data": str(data) if data else "world",
              "windows": len(train_set), "final_loss": float(np.mean(history[-50:])) if history else None}
    if held_out is not None:
        result |= evaluate(model, texts, held_out, device)
    (run_dir / "result.json").write_text(json.dumps({"config": asdict(cfg), **result}, indent=2))
    if export:
        save_temporal_model(model, Path(export), encoder.name, {"command": command, **result})
        log.info("wrote %s", export)
    return result


def _save_checkpoint(run_dir: Path, model, heads, optimizer, step: int, elapsed: float) -> None:
    state = {"model": model.state_dict(), "heads": heads.state_dict(), "optimizer": optimizer.state_dict(),
             "step": step, "elapsed": elapsed}
    with atomic_path(run_dir / "checkpoint.pt") as tmp:  # a kill never leaves half a checkpoint
        torch.save(state, tmp)


def _resume(run_dir: Path, model, heads, optimizer) -> tuple[int, float]:
    path = run_dir / "checkpoint.pt"
    if not path.exists():
        return 0, 0.0
    state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(state["model"])
    heads.load_state_dict(state["heads"])
    optimizer.load_state_dict(state["optimizer"])
    log.info("resumed from %s at step %d", path, state["step"])
    return state["step"], state.get("elapsed", 0.0)
