"""The near-duplicate benchmark's data: world clips, transformed copies and caption twins."""

from __future__ import annotations

import io
from pathlib import Path

import av
import numpy as np
import torch
import torch.nn.functional as F

from generator import world
from generator.video import write_mp4

TRIM = 3  # frames trimmed from the start by the "trimmed" copy


def _resize(frames: np.ndarray, h: int, w: int) -> np.ndarray:
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float()
    y = F.interpolate(x, size=(h, w), mode="bilinear", antialias=True, align_corners=False)
    return y.round().clamp(0, 255).byte().permute(0, 2, 3, 1).numpy()


def reencoded(frames: np.ndarray) -> np.ndarray:
    """Through H.264 at a low quality (crf 40) and back."""
    buf = io.BytesIO()
    with av.open(buf, mode="w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=world.FPS)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        stream.options = {"crf": "40"}
        for f in frames:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
        out.mux(stream.encode())
    buf.seek(0)
    with av.open(buf) as inp:
        return np.stack([f.to_ndarray(format="rgb24") for f in inp.decode(video=0)])


def resized(frames: np.ndarray) -> np.ndarray:
    """Down to half size and back up."""
    h, w = frames.shape[1:3]
    return _resize(_resize(frames, h // 2, w // 2), h, w)


def cropped(frames: np.ndarray) -> np.ndarray:
    """10% cut away (5% a side), shown at the original size."""
    h, w = frames.shape[1:3]
    dy, dx = round(h * 0.05), round(w * 0.05)
    return _resize(np.ascontiguousarray(frames[:, dy:h - dy, dx:w - dx]), h, w)


def brightened(frames: np.ndarray) -> np.ndarray:
    return np.clip(frames.astype(np.float32) * 1.2 + 30, 0, 255).astype(np.uint8)


def noised(frames: np.ndarray, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(frames + rng.normal(0, 12, frames.shape), 0, 255).astype(np.uint8)


def trimmed(frames: np.ndarray) -> np.ndarray:
    return frames[TRIM:]


TRANSFORMS = {"reencoded": reencoded, "resized": resized, "cropped": cropped, "brightened": brightened,
              "noised": noised, "trimmed": trimmed}


def caption_twin(spec: world.ClipSpec, rng: np.random.Generator) -> world.ClipSpec:
    """Another clip with the same caption: the same objects, scene and motion, other starts and speeds."""
    size = world.SIZE
    if len(spec.objects) == 2:
        while True:
            twin = world._sample_colliding(rng, spec.scene)
            if twin.objects == spec.objects or rng.random() < 0.05:
                break
            # same objects, the new geometry: shift the sampled line to fit these radii
            a, b = spec.objects
            span = twin.starts[1][0] - twin.starts[0][0]
            if span + a.radius + b.radius <= size - 1:
                y = rng.uniform(max(a.radius, b.radius), size - max(a.radius, b.radius))
                xa = rng.uniform(a.radius, size - b.radius - span)
                return world.ClipSpec(spec.scene, spec.objects, twin.speeds, ((xa, y), (xa + span, y)))
        return world.ClipSpec(spec.scene, spec.objects, twin.speeds, twin.starts)
    (obj,) = spec.objects
    r = obj.radius
    if obj.motion == "falling":
        return world.ClipSpec(spec.scene, spec.objects, (0.0,), ((rng.uniform(r, size - r), rng.uniform(r, size / 3 + r)),))
    words = obj.motion.split()
    band = world.SPEED_BANDS[words[1] if len(words) == 3 else ""]
    start = (rng.uniform(r, size - r), rng.uniform(r, size - r))
    return world.ClipSpec(spec.scene, spec.objects, (rng.uniform(*band),), (start,))


def write_clip(path: Path, frames: np.ndarray) -> Path:
    return write_mp4(path, frames, world.FPS)
