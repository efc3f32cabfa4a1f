"""The encoder unit of the indexing pipeline: frames and texts to L2-normalised CLIP vectors."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from common.device import resolve_device
from indexer.models import ClipModel, load_clip
from indexer.vocabulary import unknown_words, unknown_words_notice


class ClipEncoder:
    """Batched CLIP embeddings on the CPU or CUDA (fp16 autocast there)."""

    def __init__(self, clip: ClipModel, device: str = "cpu", batch_size: int = 128):
        self.clip = clip
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.clip.model.to(self.device)
        mean, std = torch.tensor(clip.mean), torch.tensor(clip.std)
        self._mean = mean.view(1, 3, 1, 1).to(self.device)
        self._std = std.view(1, 3, 1, 1).to(self.device)

    @classmethod
    def load(cls, spec: str, device: str = "auto") -> ClipEncoder:
        """Load the model a spec names (see indexer.models) onto `device`."""
        device = resolve_device(device)
        return cls(load_clip(spec, device), device)

    @property
    def name(self) -> str:
        """The model's identity: its name and a digest of its weights (see `indexer.models.model_identity`)."""
        return self.clip.identity

    @property
    def dim(self) -> int:
        return self.clip.dim

    def encode_images(self, frames: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) uint8 frames to (N, D) float32 unit vectors."""
        step = self.batch_size
        out = [self._encode_image_batch(frames[i : i + step]) for i in range(0, len(frames), step)]
        return np.concatenate(out) if out else np.zeros((0, self.dim), np.float32)

    def encode_texts(self, texts: list[str]) -> np.ndarray:
        """Texts to (N, D) float32 unit vectors."""
        out = []
        for i in range(0, len(texts), self.batch_size):
            tokens = self.clip.tokenizer(texts[i : i + self.batch_size]).to(self.device)
            with torch.inference_mode(), self._autocast():
                out.append(F.normalize(self.clip.model.encode_text(tokens).float(), dim=-1).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.dim), np.float32)

    def encode_text(self, text: str) -> np.ndarray:
        return self.encode_texts([text])[0]

    def unknown_words(self, text: str) -> list[str]:
        """The words of `text` the text model was never taught (none for a real CLIP: BPE knows all English)."""
        return unknown_words(text, self.clip.vocabulary)

    def vocabulary_notice(self, text: str) -> str | None:
        """A one-line notice naming the words of `text` the model does not know, with how to use a real CLIP."""
        return unknown_words_notice(self.clip.spec, self.unknown_words(text))

    def preprocess(self, frames: np.ndarray) -> torch.Tensor:
        """uint8 frames to the model's input: short side resized, centre-cropped, normalised."""
        return self.normalize(self.resize(frames))

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, S, S) pixels in 0..1 to the model's input scale."""
        return (x - self._mean) / self._std

    def resize(self, frames: np.ndarray, size: int | None = None) -> torch.Tensor:
        """uint8 (N, H, W, 3) to (N, 3, S, S) in 0..1: the centre square, resized to S (the model's input size
        unless `size` is given).

        Cropping first keeps memory to the square: a 20 x 2,000,000 image costs 20 x 20 pixels,
        not the 64 x 6,400,000 that scaling its short side up first would make.
        """
        _, h, w, _ = frames.shape
        side = min(h, w)
        top, left = (h - side) // 2, (w - side) // 2
        square = np.require(frames[:, top : top + side, left : left + side], requirements=["C", "W"])
        x = torch.from_numpy(square).to(self.device).permute(0, 3, 1, 2).float().div_(255)  # (N, 3, side, side)
        size = size or self.clip.image_size
        if side != size:
            x = F.interpolate(x, size=(size, size), mode="bicubic", antialias=True, align_corners=False)
        return x

    def _encode_image_batch(self, frames: np.ndarray) -> np.ndarray:
        with torch.inference_mode(), self._autocast():
            features = self.clip.model.encode_image(self.preprocess(frames))
        return F.normalize(features.float(), dim=-1).cpu().numpy()

    def _autocast(self):
        return torch.autocast("cuda", dtype=torch.float16, enabled=self.device.type == "cuda")
