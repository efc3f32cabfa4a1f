"""The Generator: prompts (and frames to keep) in, clips out.

Every mode is one mechanism: what is given is kept, the rest is generated. Whole given frames
condition the DiT as clean frames (animate, extend); given pixels are kept by replacement at
each sampling step (inpaint, outpaint); variations start from the clip partly noised. The
output keeps every given frame and pixel exactly: generated pixels are composited around them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from generator.autoencoder import FrameAutoencoder, load_autoencoder, to_uint8, to_video_tensor
from generator.checkpoint import WEIGHTS_DIR
from generator.dit import STDiT, load_checkpoint, tokenize
from generator.flow import sample
from generator.prompt import parse_prompt
from generator.world import FPS, SIZE

log = logging.getLogger(__name__)

CONTEXT = 4  # frames a chained window is conditioned on
MAX_FRAMES = 1024  # frames one call may make (chained windows): 128 s at the world's 8 fps
# CPU threads while a window is sampled and decoded: how float32 matmuls and convolutions are
# split between threads changes their rounding, and 30 Euler steps grow that into different
# pixels, so a seed makes the same clip only under one fixed count (1 is fastest on a busy box).
SAMPLING_THREADS = 1
BUILTIN = {"reelbase-tiny": ("generator-tiny.safetensors", "autoencoder-tiny.safetensors")}

# callback(step, total) -> False to cancel; steps count across all chunks of a long clip
StepCallback = Callable[[int, int], bool | None]


@dataclass
class Clip:
    """Generated frames with the record of how they were made."""

    frames: np.ndarray  # (T, H, W, 3) uint8
    fps: int
    record: dict = field(default_factory=dict)


@contextmanager
def fixed_threads(n: int) -> Iterator[None]:
    """torch's CPU thread count (this thread's) set to n within the block, then restored."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def resolve_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


class Generator:
    """A trained ST-DiT with its frame autoencoder."""

    def __init__(self, dit: STDiT, autoencoder: FrameAutoencoder, name: str, device: str = "cpu"):
        self.dit = dit.to(device).eval()
        self.autoencoder = autoencoder.to(device).eval()
        self.name = name
        self.device = torch.device(device)
        self.window = dit.config.frames  # frames the model makes at once
        self.frame_size = SIZE  # frames are frame_size x frame_size pixels

    @classmethod
    def load(cls, spec: str = "reelbase-tiny", device: str = "auto",
             autoencoder: str | Path | None = None) -> Generator:
        """A checkpoint path (autoencoder beside it or given) or a built-in name."""
        device = resolve_device(device)
        if Path(spec).suffix == ".safetensors":
            dit_path = Path(spec)
            ae_path = Path(autoencoder) if autoencoder else dit_path.with_name("autoencoder-tiny.safetensors")
        elif spec in BUILTIN:
            dit_path, ae_path = (WEIGHTS_DIR / f for f in BUILTIN[spec])
        else:
            raise ValueError(f"unknown generator '{spec}': give a .safetensors checkpoint or one of {list(BUILTIN)}")
        for path in (dit_path, ae_path):
            if not path.is_file():
                raise FileNotFoundError(f"generator weights not found: {path} (train with `reelbase train generator`)")
        dit, _, _ = load_checkpoint(dit_path, device)
        ae, _ = load_autoencoder(ae_path, device)
        return cls(dit, ae, spec, device)

    # --- modes -----------------------------------------------------------------------------

    def generate(self, prompt: str, *, negative_prompt: str = "", seed: int = 0, steps: int = 30,
                 guidance: float = 4.0, frames: int = 16, callback: StepCallback | None = None) -> Clip:
        """Text to video; clips longer than the model's window are chained chunks."""
        chunks = self._chunks(frames)
        clip = self._run(prompt, negative_prompt, seed, steps, guidance, None, None, callback=callback, chunks=chunks)
        if frames > self.window:
            clip = self._continue(clip, prompt, negative_prompt, seed, steps, guidance, frames - self.window,
                                  callback, first_chunk=1, total_chunks=chunks)
        return self._finish(clip.frames[:frames], "generate", prompt, negative_prompt, seed, steps, guidance)

    def animate(self, image: np.ndarray, prompt: str, *, negative_prompt: str = "", seed: int = 0, steps: int = 30,
                guidance: float = 4.0, frames: int = 16, callback: StepCallback | None = None) -> Clip:
        """Image to video: the image is the first frame."""
        clip = self.extend(np.asarray(image)[None], prompt, negative_prompt=negative_prompt, seed=seed, steps=steps,
                           guidance=guidance, new_frames=frames - 1, context=1, callback=callback)
        return self._finish(clip.frames, "animate", prompt, negative_prompt, seed, steps, guidance)

    def extend(self, frames: np.ndarray, prompt: str, *, negative_prompt: str = "", seed: int = 0, steps: int = 30,
               guidance: float = 4.0, new_frames: int = 16, context: int = CONTEXT,
               callback: StepCallback | None = None) -> Clip:
        """Continue a clip: the given frames, then `new_frames` more, each chunk conditioned on the last ones."""
        given = _check_frames(frames)
        clip = self._continue(Clip(given, FPS), prompt, negative_prompt, seed, steps, guidance, new_frames, callback,
                              context=context)
        out = self._finish(clip.frames, "extend", prompt, negative_prompt, seed, steps, guidance)
        out.record.update(context=context, given_frames=len(given), seam=len(given))
        return out

    def inpaint(self, frames: np.ndarray, mask: np.ndarray, prompt: str, *, negative_prompt: str = "", seed: int = 0,
                steps: int = 30, guidance: float = 4.0, callback: StepCallback | None = None) -> Clip:
        """Regenerate where `mask` is True ((H, W) or (T, H, W)); keep every other pixel."""
        given = _check_frames(frames, exact_window=self.window)
        keep = ~np.broadcast_to(np.asarray(mask, bool), given.shape[:3])
        clip = self._run(prompt, negative_prompt, seed, steps, guidance, given, keep, callback=callback)
        return self._finish(clip.frames, "inpaint", prompt, negative_prompt, seed, steps, guidance)

    def outpaint(self, frames: np.ndarray, keep: np.ndarray, prompt: str, **kwargs) -> Clip:
        """Regenerate everything outside the region `keep` ((H, W) or (T, H, W) bool)."""
        clip = self.inpaint(frames, ~np.asarray(keep, bool), prompt, **kwargs)
        clip.record["mode"] = "outpaint"
        return clip

    def vary(self, frames: np.ndarray, prompt: str, *, strength: float = 0.6, negative_prompt: str = "",
             seed: int = 0, steps: int = 30, guidance: float = 4.0, callback: StepCallback | None = None) -> Clip:
        """A variation: the clip noised to `strength` (0 keeps it, 1 ignores it), then denoised with the prompt."""
        if not 0.0 <= strength <= 1.0:
            raise ValueError(f"strength must be within 0..1, got {strength}")
        given = _check_frames(frames, exact_window=self.window)
        clip = self._run(prompt, negative_prompt, seed, steps, guidance, None, None, start=given, strength=strength,
                         callback=callback)
        out = self._finish(clip.frames, "vary", prompt, negative_prompt, seed, steps, guidance)
        out.record["strength"] = strength
        return out

    # --- the one mechanism -----------------------------------------------------------------

    def _run(self, *args, **kwargs) -> Clip:
        """One window (`_sample_window`), under the fixed thread count that makes a seed's clip exact."""
        with fixed_threads(SAMPLING_THREADS):
            return self._sample_window(*args, **kwargs)

    @torch.no_grad()
    def _sample_window(self, prompt, negative_prompt, seed, steps, guidance, given, keep, *, start=None,
                       strength=1.0, callback=None, chunk=0, chunks=1) -> Clip:
        """Sample latents keeping `given` pixels where `keep`, decode, composite."""
        _check_params(steps, guidance)
        T = self.window
        # A CPU generator on every device: a seed draws the same noise on the CPU and a GPU.
        generator = torch.Generator().manual_seed(int(seed) + 1_000 * chunk)
        tokens = tokenize([prompt], self.dit.config.context_length).to(self.device)
        neg = tokenize([negative_prompt], self.dit.config.context_length).to(self.device) if negative_prompt else None
        known = known_mask = start_latents = None
        if given is not None:
            known, known_mask = self._known_latents(given, keep)
        if start is not None:
            start_latents = self.autoencoder.encode(to_video_tensor(start[None], self.device))
        step_cb = None if callback is None else (lambda i, n, _x: callback(chunk * n + i, chunks * n))
        shape = (1, T, self.dit.config.latent_channels, self.dit.config.latent_size, self.dit.config.latent_size)
        latents = sample(self.dit, shape, tokens, neg, steps=steps, guidance=guidance, generator=generator,
                         known=known, known_mask=known_mask, start_latents=start_latents, strength=strength,
                         time_shift=self.dit.config.time_shift, callback=step_cb)
        frames = to_uint8(self.autoencoder.decode(latents))[0]  # (T, H, W, 3)
        if given is not None:
            frames = np.where(keep[..., None], given, frames)  # given pixels exactly as they were
        return Clip(frames, FPS)

    def _known_latents(self, given: np.ndarray, keep: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Latents of the given frames and a latent mask: a cell is known when all its pixels are."""
        latents = self.autoencoder.encode(to_video_tensor(given[None], self.device))  # (1, T, C, h, w)
        h = latents.shape[-1]
        cells = torch.from_numpy(np.ascontiguousarray(keep)).float().to(self.device)  # (T, H, W)
        cell_known = -torch.nn.functional.max_pool2d(-cells[:, None], SIZE // h)  # (T, 1, h, w): min-pool
        return latents, cell_known[None]  # (1, T, 1, h, w)

    def _continue(self, clip: Clip, prompt, negative_prompt, seed, steps, guidance, new_frames, callback,
                  context: int = CONTEXT, first_chunk: int = 0, total_chunks: int | None = None) -> Clip:
        """Chain windows, each with the last `context` frames given, until `new_frames` are made."""
        if not 1 <= new_frames <= MAX_FRAMES:
            raise ValueError(f"new_frames must be within 1..{MAX_FRAMES}, got {new_frames}")
        context = max(1, min(context, self.window - 1, len(clip.frames)))
        frames = clip.frames
        chunks = -(-new_frames // (self.window - context))
        total_chunks = total_chunks or chunks
        for chunk in range(first_chunk, first_chunk + chunks):
            window = np.zeros((self.window, SIZE, SIZE, 3), np.uint8)
            window[:context] = frames[-context:]
            keep = np.zeros(window.shape[:3], bool)
            keep[:context] = True
            out = self._run(prompt, negative_prompt, seed, steps, guidance, window, keep, callback=callback,
                            chunk=chunk, chunks=total_chunks)
            frames = np.concatenate([frames, out.frames[context:]])
        return Clip(frames[: len(clip.frames) + new_frames], FPS)

    def _chunks(self, frames: int) -> int:
        if not 1 <= frames <= MAX_FRAMES:
            raise ValueError(f"frames must be within 1..{MAX_FRAMES}, got {frames}")
        return 1 + max(0, -(-(frames - self.window) // (self.window - CONTEXT)))

    def _finish(self, frames, mode, prompt, negative_prompt, seed, steps, guidance) -> Clip:
        """The record of how a clip was made, with the parsed prompt and any warning."""
        parsed = parse_prompt(prompt)
        warning = parsed.warning()
        if warning:
            log.warning(warning)
        record = {"mode": mode, "prompt": prompt, "negative_prompt": negative_prompt, "seed": int(seed),
                  "steps": int(steps), "guidance": float(guidance), "frames": int(len(frames)), "fps": FPS,
                  "model": self.name, "parsed_prompt": parsed.to_dict(), "warnings": [warning] if warning else [],
                  "created_at": time.time()}
        return Clip(np.ascontiguousarray(frames), FPS, record)


def _check_frames(frames: np.ndarray, exact_window: int | None = None) -> np.ndarray:
    """Given frames as (T, 64, 64, 3) uint8, or a clear error."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[1:] != (SIZE, SIZE, 3) or frames.dtype != np.uint8:
        raise ValueError(f"frames must be (T, {SIZE}, {SIZE}, 3) uint8, got {frames.shape} {frames.dtype}")
    if exact_window and len(frames) != exact_window:
        raise ValueError(f"this mode takes exactly {exact_window} frames, got {len(frames)}")
    if len(frames) == 0:
        raise ValueError("no frames given")
    return frames


def _check_params(steps: int, guidance: float) -> None:
    if not 1 <= steps <= 1000:
        raise ValueError(f"steps must be within 1..1000, got {steps}")
    if not 0.0 <= guidance <= 50.0:
        raise ValueError(f"guidance must be within 0..50, got {guidance}")
