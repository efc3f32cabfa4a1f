"""Temporal model files: which one serves a CLIP model, told without loading torch, and the encoder that uses it.

A temporal model (`indexer.temporal`) is trained over one CLIP model's vectors and means nothing
over another's. Its file, `NAME.temporal.safetensors`, keeps in its metadata the config and the
identity of that CLIP model (`indexer.identity.model_identity`). The setting
`REELBASE_TEMPORAL_MODEL` is `auto` (the first file in the data folder's `models/`, where
`reelbase train clip --data DIR` writes, or the built-in weights folder, whose CLIP identity is
the configured CLIP model's), `none`, or a file path.
A store records the temporal model that wrote its windows as it records the CLIP model
(`temporal_identity`), so windows of two temporal models never mix.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from indexer.identity import WEIGHTS_DIR, weights_digest
from indexer.records import VideoWindows

if TYPE_CHECKING:
    import numpy as np

    from indexer.encoder import ClipEncoder
    from indexer.temporal import TemporalModel

SUFFIX = ".temporal.safetensors"
FORMAT = "reelbase-temporal-1"
MODELS_FOLDER = "models"  # in the data folder: temporal models trained on a user's footage


class TemporalModelError(ValueError):
    """A temporal model file that cannot serve: not one, or trained over another CLIP model."""


@dataclass(frozen=True)
class TemporalFile:
    """A temporal model file and what its header says, read without torch."""

    path: Path
    clip_model: str  # the identity of the CLIP model it was trained over
    config: dict
    card: dict  # how it was trained: command, steps, time, scores

    @cached_property  # a digest of the file: read once
    def identity(self) -> str:
        """What a store records for the windows this model writes: its name and a digest of its file
        (`reelbase-tiny.temporal@<12 hex digits>`)."""
        return f"{self.path.name.removesuffix('.safetensors')}@{weights_digest(self.path)}"

    @property
    def dim(self) -> int:
        return int(self.config["clip_dim"])


def read_header(path: Path) -> TemporalFile:
    """The metadata of a temporal model file (the safetensors header: 8 bytes of length, then JSON)."""
    try:
        with open(path, "rb") as f:
            (length,) = struct.unpack("<Q", f.read(8))
            if length > 100 << 20:
                raise ValueError("header too large")
            meta = json.loads(f.read(length))["__metadata__"]
        if meta.get("format") != FORMAT:
            raise ValueError(f"format {meta.get('format')!r}")
        card = json.loads(meta.get("card", "{}"))
        return TemporalFile(Path(path), meta["clip_model"], json.loads(meta["config"]), card)
    except (OSError, ValueError, KeyError, struct.error, TypeError) as exc:
        raise TemporalModelError(f"{path} is not a reelbase temporal model ({exc})") from exc


def find_temporal_model(setting: str, clip_identity: str, data_dir: Path | None = None) -> TemporalFile | None:
    """The temporal model a setting names for the configured CLIP model: `none` gives None; `auto` the first
    file trained over `clip_identity` in the data folder's `models/` (a user's own), then the built-in weights
    folder (None when there is none); a path that file, which must have been trained over `clip_identity`."""
    if setting == "none":
        return None
    if setting != "auto":
        found = read_header(Path(setting).expanduser())
        if found.clip_model != clip_identity:
            raise TemporalModelError(f"the temporal model {setting} was trained over the CLIP model "
                                     f"{found.clip_model}, not the configured {clip_identity}")
        return found
    folders = ([Path(data_dir) / MODELS_FOLDER] if data_dir else []) + [WEIGHTS_DIR]
    for folder in folders:
        for path in sorted(folder.glob(f"*{SUFFIX}")):
            try:
                found = read_header(path)
            except TemporalModelError:
                continue
            if found.clip_model == clip_identity:
                return found
    return None


def save_temporal_model(model: TemporalModel, path: Path, clip_identity: str, card: dict) -> Path:
    """Write a temporal model (fp16 weights, config, CLIP identity and model card in the header), atomically."""
    import torch
    from safetensors.torch import save_file

    from common.files import atomic_path

    state = {k: v.detach().to(torch.float16).contiguous().cpu() for k, v in model.state_dict().items()}
    meta = {"format": FORMAT, "clip_model": clip_identity, "config": json.dumps(model.cfg.to_dict()),
            "card": json.dumps(card)}
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata=meta)
        tmp.chmod(0o644)  # safetensors writes 0600: a model file is for every user of the machine or image
    return path


def load_temporal_model(file: TemporalFile, device: str = "cpu") -> TemporalModel:
    """The model of a temporal model file, in float32 on `device`, in eval mode."""
    from safetensors.torch import load_file

    from indexer.temporal import TemporalConfig, TemporalModel

    model = TemporalModel(TemporalConfig(**file.config))
    state = {k: v.float() for k, v in load_file(str(file.path)).items()}
    model.load_state_dict(state)
    return model.to(device).eval()


class TemporalEncoder:
    """Windows of a video's sampled frames, and texts, to the temporal model's vectors, over a CLIP encoder."""

    def __init__(self, clip: ClipEncoder, model: TemporalModel, identity: str):
        self.clip, self.model, self.identity = clip, model, identity
        self.device = clip.device

    @classmethod
    def load(cls, clip: ClipEncoder, file: TemporalFile) -> TemporalEncoder:
        if file.clip_model != clip.name:
            raise TemporalModelError(f"the temporal model {file.path} was trained over the CLIP model "
                                     f"{file.clip_model}, not {clip.name}")
        return cls(clip, load_temporal_model(file, str(clip.device)), file.identity)

    @property
    def dim(self) -> int:
        return self.model.cfg.clip_dim

    def windows(self, frames: np.ndarray, embeddings: np.ndarray, indices: np.ndarray, times: np.ndarray
                ) -> VideoWindows:
        """A video's windows (`indexer.temporal.window_spans`) from its sampled frames ((N, H, W, 3) uint8),
        their CLIP vectors ((N, D)), frame indices and times ((N,) seconds)."""
        import numpy as np
        import torch

        from indexer.temporal import window_spans

        spans = window_spans(len(frames))
        pixels = self.pixels(frames)  # (N, 3, P, P)
        feats = torch.from_numpy(np.asarray(embeddings, np.float32)).to(self.device)
        t = torch.from_numpy(np.asarray(times, np.float32)).to(self.device)
        batch = stack_windows([(feats[a:b], pixels[a:b], t[a:b]) for a, b in spans])
        with torch.inference_mode():
            vectors = self.model.embed_windows(*batch).cpu().numpy()
        starts, ends = np.array([a for a, _ in spans]), np.array([b - 1 for _, b in spans])
        times = np.asarray(times, np.float64)
        return VideoWindows(np.asarray(indices)[starts], times[starts], times[ends], vectors)

    def pixels(self, frames: np.ndarray):
        """(N, H, W, 3) uint8 frames to the pixel stream's (N, 3, P, P) squares in 0..1 (the centre square,
        as CLIP sees it)."""
        return self.clip.resize(frames, self.model.cfg.pixels)

    def encode_texts(self, texts: list[str]) -> np.ndarray:
        """Texts to (N, D) unit vectors comparable with windows."""
        import torch

        with torch.inference_mode():
            pooled, tokens, mask = text_features(self.clip, texts)
            return self.model.embed_texts(pooled, tokens, mask).cpu().numpy()

    def encode_text(self, text: str) -> np.ndarray:
        return self.encode_texts([text])[0]


def stack_windows(windows: list[tuple]):
    """[(feats (T, D), pixels (T, 3, P, P), times (T,))] of various T to padded (B, Tmax, ...) tensors and
    a (B, Tmax) mask."""
    import torch

    longest = max(len(f) for f, _, _ in windows)

    def pad(x):
        return torch.cat([x, x.new_zeros((longest - len(x), *x.shape[1:]))])

    feats = torch.stack([pad(f) for f, _, _ in windows])
    pixels = torch.stack([pad(p) for _, p, _ in windows])
    times = torch.stack([pad(t) for _, _, t in windows])
    mask = torch.stack([torch.arange(longest, device=feats.device) < len(f) for f, _, _ in windows])
    return feats, pixels, times, mask


def text_features(clip: ClipEncoder, texts: list[str]):
    """The CLIP text model's view of texts: (N, D) unit text vectors, (N, L, W) token features and a (N, L) mask
    of real tokens. From open_clip's CLIP (built-in text tower) a token's features are its output (after the last
    layer norm) beside its input word embedding: a text model trained on single frames can all but erase the
    words a frame cannot show from its outputs ("left" and "right" come out of reelbase-tiny's at cosine 0.994,
    its word embeddings at 0.27). From CustomTextCLIP (`text.output_tokens`) the outputs alone; a model with
    neither gives its text vector as one token."""
    import torch
    import torch.nn.functional as F
    from open_clip.transformer import text_global_pool

    model = clip.clip.model
    tokens = clip.clip.tokenizer(texts).to(clip.device)
    with clip._autocast():
        if hasattr(model, "token_embedding") and hasattr(model, "ln_final"):
            words = model.token_embedding(tokens)
            x = model.ln_final(model.transformer(words + model.positional_embedding, attn_mask=model.attn_mask))
            pooled = _project(model, text_global_pool(x, tokens, model.text_pool_type,
                                                      eos_token_id=getattr(model, "text_eos_id", None)))
            x = torch.cat([x, words.to(x.dtype)], dim=-1)
        elif hasattr(getattr(model, "text", None), "output_tokens"):
            model.text.output_tokens = True
            try:
                pooled, x = model.text(tokens)
            finally:
                model.text.output_tokens = False
        else:
            pooled = model.encode_text(tokens)
            x = pooled.unsqueeze(1)
    if x.shape[1] == tokens.shape[1]:
        mask = tokens != 0  # open_clip pads with 0
    else:
        mask = torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
    mask[:, 0] = True
    return F.normalize(pooled.float(), dim=-1), x.float(), mask.to(x.device)


def _project(model, pooled):
    """The text projection of open_clip's CLIP.encode_text (a Linear or a matrix)."""
    projection = model.text_projection
    if projection is None:
        return pooled
    return projection(pooled) if callable(projection) else pooled @ projection
