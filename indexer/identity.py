"""Who wrote a store's vectors, told without loading any model (this module imports no torch).

A store records the writer of each collection and refuses vectors from another: the CLIP model
(`model_identity`) for videos, frames and prompts, the pixel descriptor (`DESCRIPTOR_NAME`,
`DESCRIPTOR_DIM`, computed by `indexer.fingerprint.describe`) for fingerprints. Opening a store
for a light command (stats, an id look-up) needs these names, not the models.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

ID_LENGTH = 32  # hex digits of the sha256 of a video file's bytes kept as its content id (indexer.ingest)
WEIGHTS_DIR = Path(__file__).parent / "weights"
BUILTIN = ("reelbase-tiny",)
DESCRIPTOR_DIM = 3 * 8 * 8
DESCRIPTOR_NAME = "reelbase-pixel-descriptor-v1"


class UnknownModel(ValueError):
    """A spec that names no local file, built-in model or open_clip pretrained tag."""


def model_identity(spec: str) -> str:
    """The name a store records for the vectors a spec's model writes.

    Weights from a file are named by their content, not their place: `reelbase-tiny@<digest>`,
    `ARCH@<digest>` for `ARCH:/path`. So weights retrained under the same name are told apart
    (their vectors must not mix with the old ones), and the same weights at another path (in a
    container, say) are not. A pretrained tag names fixed weights: it is its own identity.
    """
    name, _, source = spec.partition(":")
    if source and looks_like_path(source):
        return f"{name}@{weights_digest(_weights_file(spec, Path(source).expanduser()))}"
    if spec in BUILTIN:
        return f"{spec}@{weights_digest(_weights_file(spec, WEIGHTS_DIR / f'{spec}.safetensors'))}"
    return spec


def weights_digest(path: Path) -> str:
    """The first 12 hex digits of the file's SHA-256."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()[:12]


def looks_like_path(source: str) -> bool:
    """Whether the part of a spec after the colon names a weights file rather than a pretrained tag."""
    return "/" in source or source.endswith((".safetensors", ".bin", ".pt", ".pth"))


def _weights_file(spec: str, path: Path) -> Path:
    if not path.is_file():
        raise UnknownModel(f"CLIP weights file not found: {path} (from spec '{spec}')")
    return path
