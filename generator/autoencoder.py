"""A small per-frame convolutional autoencoder: 64x64 RGB frames to 8x8 latents and back.

Sora's recipe (Brooks et al. 2024) after latent diffusion (Rombach et al. 2022): the diffusion
transformer works on a compressed latent space, here 8x8xC per frame. There is no temporal
compression, so a frame mask over latents is exactly a frame mask over the video. Instead of a
KL term, training adds small Gaussian noise to the latents and a small L2 penalty keeps them
bounded; after training the latents are shifted and scaled to unit variance per channel, like
Stable Diffusion's scaling factor.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from tqdm import tqdm

from generator import world
from generator.checkpoint import load_training_state, read_weights, save_training_state, save_weights

log = logging.getLogger(__name__)

EVAL_SEED = 9_100_001  # held-out clips for metrics and latent statistics


@dataclass(frozen=True)
class AutoencoderConfig:
    latent_channels: int = 8
    widths: tuple[int, ...] = (32, 64, 128)  # channels after each stride-2 step: 32, 16, 8 px
    groups: int = 8  # GroupNorm groups
    latent_noise: float = 0.1  # std of the noise added to latents in training (KL-free regulariser)
    latent_l2: float = 1e-3  # weight of the L2 penalty on latents
    object_weight: float = 10.0  # extra loss weight on pixels that differ from their row's median
    object_threshold: float = 0.1  # in [-1, 1] units, about 13 of 255 levels
    refine_blocks: int = 0  # decoder ResBlocks at full resolution, before the output (sharper edges and corners)

    @property
    def downscale(self) -> int:
        """Pixels a side of the square one latent cell stands for: a stride-2 step per width."""
        return 2 ** len(self.widths)

    def check_latents(self, channels: int, size: int, frame_size: int) -> None:
        """A clear error unless a model of `channels` x `size` x `size` latents of `frame_size` px frames (a
        DiT's config) models this autoencoder's latents."""
        if channels != self.latent_channels or size * self.downscale != frame_size:
            raise ValueError(f"the DiT models {channels} x {size} x {size} latents of {frame_size} px frames, but "
                             f"its autoencoder makes {self.latent_channels} x {frame_size // self.downscale} x "
                             f"{frame_size // self.downscale} latents of them")


AE_CONFIGS = {
    "tiny": AutoencoderConfig(),
    "fine": AutoencoderConfig(latent_channels=4, widths=(32, 64)),  # 16 x 16 x 4 latents: 4 px cells keep corners
    "test": AutoencoderConfig(latent_channels=4, widths=(8, 16, 16), groups=4),
}


class ResBlock(nn.Module):
    """GroupNorm -> SiLU -> conv, twice, with a residual connection."""

    def __init__(self, channels: int, groups: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.GroupNorm(groups, channels), nn.SiLU(), nn.Conv2d(channels, channels, 3, padding=1),
            nn.GroupNorm(groups, channels), nn.SiLU(), nn.Conv2d(channels, channels, 3, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.net(x)


def make_encoder(cfg: AutoencoderConfig) -> nn.Sequential:
    """Frames (N, 3, 64, 64) -> raw latents (N, C, 8, 8): a stride-2 conv and a ResBlock per level."""
    layers, prev = [nn.Conv2d(3, cfg.widths[0], 3, padding=1)], cfg.widths[0]
    for width in cfg.widths:
        layers += [nn.Conv2d(prev, width, 3, stride=2, padding=1), ResBlock(width, cfg.groups)]
        prev = width
    layers += [nn.GroupNorm(cfg.groups, prev), nn.SiLU(), nn.Conv2d(prev, cfg.latent_channels, 3, padding=1)]
    return nn.Sequential(*layers)


def make_decoder(cfg: AutoencoderConfig) -> nn.Sequential:
    """Raw latents (N, C, 8, 8) -> frames (N, 3, 64, 64): the encoder mirrored, nearest upsampling,
    then `refine_blocks` ResBlocks at full resolution."""
    widths = cfg.widths[::-1]
    layers, prev = [nn.Conv2d(cfg.latent_channels, widths[0], 3, padding=1)], widths[0]
    for i, width in enumerate(widths):
        out = widths[min(i + 1, len(widths) - 1)]
        layers += [ResBlock(width, cfg.groups), nn.Upsample(scale_factor=2.0, mode="nearest"),
                   nn.Conv2d(prev, out, 3, padding=1)]
        prev = out
    layers += [ResBlock(prev, cfg.groups) for _ in range(cfg.refine_blocks)]
    layers += [nn.GroupNorm(cfg.groups, prev), nn.SiLU(), nn.Conv2d(prev, 3, 3, padding=1)]
    return nn.Sequential(*layers)


def grow_decoder(model: FrameAutoencoder, refine_blocks: int) -> FrameAutoencoder:
    """The same autoencoder with `refine_blocks` full-resolution ResBlocks in its decoder: the new
    blocks' last convolutions start at zero, so it decodes exactly as before until trained."""
    have = model.config.refine_blocks
    if refine_blocks < have:
        raise ValueError(f"the decoder has {have} refinement blocks; it can only grow")
    grown = FrameAutoencoder(replace(model.config, refine_blocks=refine_blocks)).to(model.latent_scale.device)
    first_new = len(model.decoder) - 3  # make_decoder's output layers (GroupNorm, SiLU, conv) move behind the new
    added = refine_blocks - have
    state = grown.state_dict()
    for name, value in model.state_dict().items():
        part, index, rest = (name.split(".", 2) + ["", ""])[:3]
        if part == "decoder" and int(index) >= first_new:
            name = f"decoder.{int(index) + added}.{rest}"
        state[name] = value
    grown.load_state_dict(state)
    for block in grown.decoder[first_new:first_new + added]:
        nn.init.zeros_(block.net[-1].weight)
        nn.init.zeros_(block.net[-1].bias)
    return grown.eval()


class FrameAutoencoder(nn.Module):
    """Per-frame encoder and decoder with a calibrated latent shift and scale."""

    def __init__(self, config: AutoencoderConfig):
        super().__init__()
        self.config = config
        self.encoder = make_encoder(config)
        self.decoder = make_decoder(config)
        self.register_buffer("latent_shift", torch.zeros(config.latent_channels))  # (C,)
        self.register_buffer("latent_scale", torch.ones(config.latent_channels))  # (C,) 1 / std

    def encode(self, video: torch.Tensor) -> torch.Tensor:
        """Video (B, T, 3, H, W) in [-1, 1] -> latents (B, T, C, h, w) of about unit variance."""
        B, T = video.shape[:2]
        z = self.encoder(video.flatten(0, 1))  # (B*T, C, h, w)
        z = (z - self.latent_shift.view(-1, 1, 1)) * self.latent_scale.view(-1, 1, 1)
        return z.view(B, T, *z.shape[1:])

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Latents (B, T, C, h, w) -> video (B, T, 3, H, W), about [-1, 1] (not clamped)."""
        B, T = latents.shape[:2]
        z = latents.flatten(0, 1) / self.latent_scale.view(-1, 1, 1) + self.latent_shift.view(-1, 1, 1)
        x = self.decoder(z)  # (B*T, 3, H, W)
        return x.view(B, T, *x.shape[1:])

    def loss(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Training loss on frames (N, 3, H, W) in [-1, 1]; returns (loss, reconstruction)."""
        z = self.encoder(frames)  # (N, C, h, w), raw: the shift and scale are set after training
        recon = self.decoder(z + self.config.latent_noise * torch.randn_like(z))
        err = (recon - frames).abs() + (recon - frames).pow(2)  # L1 + MSE
        weight = 1 + self.config.object_weight * object_mask(frames, self.config.object_threshold)
        pixel = (weight * err).mean() / weight.mean()
        return pixel + self.config.latent_l2 * z.pow(2).mean(), recon

    @torch.no_grad()
    def calibrate(self, frames: torch.Tensor) -> None:
        """Set the latent shift and scale so latents of `frames` (N, 3, H, W) have mean 0, std 1."""
        z = self.encoder(frames).transpose(0, 1).flatten(1)  # (C, N*h*w)
        self.latent_shift.copy_(z.mean(1))
        self.latent_scale.copy_(1 / z.std(1).clamp(min=1e-6))


def object_mask(frames: torch.Tensor, threshold: float) -> torch.Tensor:
    """Pixels that differ from the median colour of their row, (N, 1, H, W) float 0/1.

    Backgrounds are uniform or vertical gradients and objects are small, so a row's median is
    its background; a plain loss under-weights the few object pixels.
    """
    background = frames.median(dim=-1, keepdim=True).values  # (N, 3, H, 1)
    return ((frames - background).abs().amax(dim=1, keepdim=True) > threshold).float()


def to_video_tensor(frames: np.ndarray | torch.Tensor, device: str | torch.device = "cpu") -> torch.Tensor:
    """uint8 frames (..., H, W, 3) -> float (..., 3, H, W) in [-1, 1]."""
    x = torch.as_tensor(frames, device=device).movedim(-1, -3)
    return x.float() / 127.5 - 1


def to_uint8(video: torch.Tensor) -> np.ndarray:
    """Float (..., 3, H, W) in [-1, 1] -> uint8 frames (..., H, W, 3)."""
    x = ((video.detach().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.movedim(-3, -1).cpu().numpy()


def psnr(recon: torch.Tensor, frames: torch.Tensor, mask: torch.Tensor | None = None) -> float:
    """Peak signal-to-noise ratio in dB on the [0, 1] scale, over the pixels of `mask` if given."""
    se = ((recon.clamp(-1, 1) - frames) / 2).pow(2).mean(dim=1, keepdim=True)  # (N, 1, H, W)
    mse = se.mean() if mask is None else (se * mask).sum() / mask.sum().clamp(min=1)
    return float(-10 * math.log10(max(mse.item(), 1e-10)))


# ---------------------------------------------------------------------------------------------
# Training on the synthetic world


def world_frames(seed: int, start: int, clips: int, per_clip: int, device) -> torch.Tensor:
    """`per_clip` random frames of each of `clips` world clips, (N, 3, H, W) in [-1, 1]."""
    video = to_video_tensor(np.stack([c.frames for c in world.sample_clips(seed, start, clips, device)]), device)
    rng = np.random.default_rng([seed, start])
    index = torch.as_tensor(np.stack([rng.choice(video.shape[1], per_clip, replace=False) for _ in range(clips)]))
    return video[torch.arange(clips)[:, None], index].flatten(0, 1)


@torch.no_grad()
def evaluate(model: FrameAutoencoder, device, clips: int = 16) -> dict:
    """PSNR over all pixels and over object pixels of held-out frames."""
    model.eval()
    frames = world_frames(EVAL_SEED, 0, clips, 4, device)
    recon = model.decoder(model.encoder(frames))
    mask = object_mask(frames, model.config.object_threshold)
    return {"psnr": round(psnr(recon, frames), 2), "psnr_objects": round(psnr(recon, frames, mask), 2)}


def lr_at(step: int, steps: int, lr: float, warmup: int) -> float:
    """Linear warm-up, then cosine decay to a tenth."""
    if step < warmup:
        return lr * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, steps - warmup))
    return lr * (0.1 + 0.45 * (1 + math.cos(math.pi * progress)))


def train_autoencoder(run_dir: str | Path, steps: int = 1500, batch: int = 32, device: str = "cpu",
                      lr: float = 2e-3, config: AutoencoderConfig = AE_CONFIGS["tiny"], seed: int = 0,
                      frames_per_clip: int = 4, warmup: int = 50, checkpoint_every: int = 100,
                      init: str | Path | None = None, decoder_only: bool = False,
                      object_weight: float | None = None, refine_blocks: int | None = None) -> dict:
    """Train (or resume) in `run_dir`, write `autoencoder.safetensors` there and return metrics.

    `init` starts from a trained file (its config, not `config`). `decoder_only` trains the decoder
    alone: the encoder and its latent calibration stay as they were, so a generator trained on its
    latents keeps working and draws what the better decoder makes of them. `object_weight` replaces
    the config's extra loss weight on object pixels, and `refine_blocks` grows the decoder of `init`
    (`grow_decoder`) or sets a new one's.
    """
    if decoder_only and not init:
        raise ValueError("decoder_only trains the decoder of a trained autoencoder: give init")
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    model, earlier = _starting_model(init, config, refine_blocks, object_weight, device)
    model.encoder.requires_grad_(not decoder_only)
    trained = model.decoder if decoder_only else model
    optimizer = torch.optim.AdamW(trained.parameters(), lr=lr, weight_decay=0.0)
    state = load_training_state(run_dir / "checkpoint.pt", {"model": model, "optimizer": optimizer})
    step, elapsed = (state["step"], state["elapsed"]) if state else (0, 0.0)
    clips = max(1, batch // frames_per_clip)
    started, losses = time.time() - elapsed, []
    bar = tqdm(range(step, steps), initial=step, total=steps, desc="train autoencoder")
    for step in bar:
        model.train()
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, steps, lr, warmup)
        loss, _ = model.loss(world_frames(seed, (earlier + step) * clips, clips, frames_per_clip, device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trained.parameters(), 1.0)
        optimizer.step()
        losses.append(loss.item())
        bar.set_postfix(loss=f"{loss.item():.4f}")
        if (step + 1) % checkpoint_every == 0 or step + 1 == steps:
            save_training_state(run_dir / "checkpoint.pt", {"model": model, "optimizer": optimizer},
                                step=step + 1, elapsed=time.time() - started)
    model.eval()
    if not decoder_only:  # a new encoder: calibrate its latents; else they stay the generator's
        model.calibrate(world_frames(EVAL_SEED + 1, 0, 32, 4, device))
    metrics = {"steps": steps, "seconds": round(time.time() - started, 1),
               "loss": float(np.mean(losses[-20:])) if losses else None, **evaluate(model, device),
               "steps_total": earlier + steps, **({"init": str(init), "decoder_only": decoder_only} if init else {})}
    save_autoencoder(run_dir / "autoencoder.safetensors", model, metrics)
    log.info("autoencoder: %s", metrics)
    return metrics


def _starting_model(init, config: AutoencoderConfig, refine_blocks: int | None, object_weight: float | None,
                    device) -> tuple[FrameAutoencoder, int]:
    """A new autoencoder, or the one in `init` (grown to `refine_blocks`), with the steps that made it:
    a run numbers its frames after them, so a run from `init` sees fresh ones."""
    if init:
        model, extra = load_autoencoder(init, device)
        if refine_blocks is not None:
            model = grow_decoder(model, refine_blocks)
        earlier = int(extra.get("steps_total", extra.get("steps", 0)))
    else:
        blocks = config.refine_blocks if refine_blocks is None else refine_blocks
        model = FrameAutoencoder(replace(config, refine_blocks=blocks)).to(device)
        earlier = 0
    if object_weight is not None:
        model.config = replace(model.config, object_weight=object_weight)
    return model, earlier


def save_autoencoder(path: str | Path, model: FrameAutoencoder, extra: dict | None = None) -> None:
    """Weights as safetensors with the config JSON in the metadata, written atomically."""
    save_weights(path, model, asdict(model.config), extra)


def config_from(raw: dict) -> AutoencoderConfig:
    """An autoencoder file's config (`checkpoint.read_config`) as the dataclass."""
    return AutoencoderConfig(**{**raw, "widths": tuple(raw["widths"])})


def load_autoencoder(path: str | Path, device: str = "cpu") -> tuple[FrameAutoencoder, dict]:
    """Rebuild the autoencoder from its safetensors file alone; returns (model, extra)."""
    state, raw, extra = read_weights(path)
    model = FrameAutoencoder(config_from(raw))
    model.load_state_dict(state)
    return model.to(device).eval(), extra
