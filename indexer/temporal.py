"""The temporal model: a window of consecutive frames, and a text, embedded into one space where motion counts.

A CLIP model embeds single frames, so it sees colour, shape and scene but not what happens; its
text side learned to ignore the motion words a frame cannot show. The temporal model reads
what the index already has for a window of frames (about two seconds at the index rate):
each frame's CLIP vector, a small square of its pixels (and the change from the frame before),
and its time, through a small transformer across time (CLIP4Clip's "seqTransf", Luo et al.
2021, with a pixel stream for where things are). The text side reads the CLIP text model's
token features, where the motion words still are, through its own small transformer. Both
sides add their output to the CLIP vectors they start from (the mean of the window's frames;
the text's CLIP vector), so what CLIP knows stays, and training adds what happens.

The model is trained by `indexer.train_temporal` and saved as safetensors with its config and
the identity of the CLIP model it was trained over (`indexer.temporal_models`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

WINDOW_FRAMES = 5  # sampled frames a window holds: two seconds at the index rate of 2 frames/s (0, .5 ... 2 s)
WINDOW_STRIDE = 2  # sampled frames between window starts (one second at the index rate)


def window_spans(n: int, frames: int = WINDOW_FRAMES, stride: int = WINDOW_STRIDE) -> list[tuple[int, int]]:
    """The windows over `n` sampled frames, as (start, stop) positions: every `stride`, each `frames`
    long, the last one ending at the last frame; a video shorter than a window is one window."""
    if n <= frames:
        return [(0, n)] if n else []
    starts = list(range(0, n - frames + 1, stride))
    if starts[-1] + frames < n:
        starts.append(n - frames)
    return [(s, s + frames) for s in starts]


@dataclass(frozen=True)
class TemporalConfig:
    clip_dim: int  # the CLIP model's embedding size: both sides' output
    text_width: int  # the CLIP text model's token feature size
    width: int = 128
    layers: int = 2
    heads: int = 4
    pixels: int = 32  # side of the square of pixels each frame gives the pixel stream
    max_frames: int = 16  # time positions a window may hold
    max_tokens: int = 77  # text positions

    def to_dict(self) -> dict:
        return asdict(self)


class TemporalModel(nn.Module):
    """Windows of frames and texts to unit vectors of `clip_dim`, compared by cosine."""

    def __init__(self, cfg: TemporalConfig):
        super().__init__()
        self.cfg = cfg
        w = cfg.width
        self.frame_in = nn.Linear(cfg.clip_dim, w)
        self.pixel_stream = PixelStream(cfg.pixels, w)
        self.time_in = nn.Linear(2 * len(TIME_FREQUENCIES) + 1, w)
        self.frames = _encoder(w, cfg.layers, cfg.heads)
        self.frame_out = nn.Linear(w, cfg.clip_dim)
        self.token_in = nn.Linear(cfg.text_width, w)
        self.token_position = nn.Parameter(torch.zeros(cfg.max_tokens, w))
        self.tokens = _encoder(w, cfg.layers, cfg.heads)
        self.text_out = nn.Linear(w, cfg.clip_dim)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(30.0)))
        for out in (self.frame_out, self.text_out):  # start as CLIP alone: the learned parts add to it
            nn.init.zeros_(out.weight)
            nn.init.zeros_(out.bias)

    def embed_windows(self, features: torch.Tensor, pixels: torch.Tensor, times: torch.Tensor,
                      mask: torch.Tensor) -> torch.Tensor:
        """(B, T, D) CLIP frame vectors, (B, T, 3, P, P) pixels in 0..1, (B, T) seconds and (B, T) bool
        (True: a frame; False: padding) to (B, D) unit vectors."""
        return self.windows_out(features, mask, self.window_state(features, pixels, times, mask))

    def window_state(self, features: torch.Tensor, pixels: torch.Tensor, times: torch.Tensor,
                     mask: torch.Tensor) -> torch.Tensor:
        """The window read across time: (B, width), before it joins the CLIP vectors."""
        offsets = (times - times[:, :1]) * mask
        x = self.frame_in(features) + self.pixel_stream(pixels, mask) + self.time_in(time_features(offsets))
        return _masked_mean(self.frames(x, src_key_padding_mask=~mask), mask)

    def windows_out(self, features: torch.Tensor, mask: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        """The window's state added to the mean of its CLIP frame vectors, as (B, D) unit vectors."""
        return F.normalize(F.normalize(_masked_mean(features, mask), dim=-1) + self.frame_out(state), dim=-1)

    def embed_texts(self, pooled: torch.Tensor, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, D) CLIP text vectors, (B, L, W) the CLIP text model's token features and (B, L) bool (True:
        a token) to (B, D) unit vectors."""
        return self.texts_out(pooled, self.text_state(tokens, mask))

    def text_state(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The text read by the token transformer: (B, width), before it joins the CLIP text vector."""
        length = min(int(mask.sum(1).max()), self.cfg.max_tokens)  # padding is masked: leave it out
        tokens, mask = tokens[:, :length], mask[:, :length]
        x = self.token_in(tokens) + self.token_position[:length]
        return _masked_mean(self.tokens(x, src_key_padding_mask=~mask), mask)

    def texts_out(self, pooled: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        return F.normalize(F.normalize(pooled, dim=-1) + self.text_out(state), dim=-1)


def _masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The mean over dim 1 of (B, T, C) where mask (B, T) is True."""
    valid = mask.unsqueeze(-1).to(x.dtype)
    return (x * valid).sum(1) / valid.sum(1).clamp(min=1)


class PixelStream(nn.Module):
    """Each frame's small square of pixels and its change from the frame before, to a vector that keeps where
    things are (the feature map is flattened, not pooled)."""

    def __init__(self, pixels: int, width: int):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(6, 16, 3, stride=2, padding=1), nn.GELU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.GELU(),
            nn.Conv2d(32, 16, 3, stride=1, padding=1), nn.GELU(),
        )
        self.out = nn.Linear(16 * (pixels // 4) ** 2, width)

    def forward(self, pixels: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, t = pixels.shape[:2]
        change = torch.zeros_like(pixels)
        change[:, 1:] = (pixels[:, 1:] - pixels[:, :-1]) * (mask[:, 1:] & mask[:, :-1])[..., None, None, None]
        x = torch.cat([pixels - 0.5, change], dim=2).flatten(0, 1)  # (B*T, 6, P, P)
        return self.out(self.conv(x).flatten(1)).view(b, t, -1)


TIME_FREQUENCIES = (0.25, 0.5, 1.0, 2.0)  # cycles per second of a frame's time in its window


def time_features(offsets: torch.Tensor) -> torch.Tensor:
    """(B, T) seconds from the window's start to (B, T, 2F + 1) features: the seconds and their sines and cosines."""
    angles = offsets.unsqueeze(-1) * (2 * math.pi * torch.tensor(TIME_FREQUENCIES, device=offsets.device))
    return torch.cat([offsets.unsqueeze(-1), angles.sin(), angles.cos()], dim=-1)


def _encoder(width: int, layers: int, heads: int) -> nn.TransformerEncoder:
    layer = nn.TransformerEncoderLayer(width, heads, 4 * width, dropout=0.0, activation="gelu", batch_first=True,
                                       norm_first=True)
    return nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
