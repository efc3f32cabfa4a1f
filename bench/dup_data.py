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


def path_distance(a: world.WorldClip, b: world.WorldClip) -> float:
    """The least mean distance (px) between the objects' centres over time shifts that keep half the clip."""
    T = len(a.centres)
    best = np.inf
    for k in range(-(T // 2), T // 2 + 1):
        ca = a.centres[max(0, k):T + min(0, k)]
        cb = b.centres[max(0, -k):T + min(0, -k)]
        best = min(best, float(np.linalg.norm(ca - cb, axis=-1).mean()))
    return best


def look(clip: world.WorldClip) -> tuple:
    """What a clip looks like but for its path and shapes: scene and object colours."""
    return clip.spec.scene, tuple(o.colour for o in clip.spec.objects)


def same_path(a: world.WorldClip, b: world.WorldClip) -> bool:
    """True when two clips of one look run within one object diameter of each other's path.

    Such a pair (the same path a few frames apart) is indistinguishable from a clip and its
    trimmed copy, so the benchmark counts it neither as a duplicate nor as a distinct pair.
    "One look" is the scene and the objects' colours: a ball and a square of one colour on one
    path differ by a few pixels at the corners, which a low-quality re-encode blurs away.
    """
    diameter = 2 * max(o.radius for o in a.spec.objects + b.spec.objects)
    return look(a) == look(b) and path_distance(a, b) < diameter


def caption_twin(clip: world.WorldClip, rng: np.random.Generator, tries: int = 100) -> world.WorldClip:
    """Another clip with the same caption (objects, scene, motion) at other positions and speeds, on another path."""
    for _ in range(tries):
        (twin,) = world.make_clips([_same_caption(clip.spec, rng)])
        if not same_path(twin, clip):
            return twin
    return twin


def _same_caption(spec: world.ClipSpec, rng: np.random.Generator) -> world.ClipSpec:
    size = world.SIZE
    if len(spec.objects) == 2:
        a, b = spec.objects
        while True:
            twin = world._sample_colliding(rng, spec.scene)
            span = twin.starts[1][0] - twin.starts[0][0]
            if span + a.radius + b.radius <= size - 1:
                y = rng.uniform(max(a.radius, b.radius), size - max(a.radius, b.radius))
                xa = rng.uniform(a.radius, size - b.radius - span)
                return world.ClipSpec(spec.scene, spec.objects, twin.speeds, ((xa, y), (xa + span, y)))
    (obj,) = spec.objects
    r = obj.radius
    if obj.motion == "falling":
        start = (rng.uniform(r, size - r), rng.uniform(r, size / 3 + r))
        return world.ClipSpec(spec.scene, spec.objects, (0.0,), (start,))
    words = obj.motion.split()
    band = world.SPEED_BANDS[words[1] if len(words) == 3 else ""]
    start = (rng.uniform(r, size - r), rng.uniform(r, size - r))
    return world.ClipSpec(spec.scene, spec.objects, (rng.uniform(*band),), (start,))


def write_clip(path: Path, frames: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_mp4(path, frames, world.FPS)
