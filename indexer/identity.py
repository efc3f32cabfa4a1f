"""Who wrote a store's vectors, told without loading any model (this module imports no torch).

A store records the writer of each collection and refuses vectors from another: the CLIP model
(`model_identity`) for videos, frames and prompts, the pixel descriptor (`DESCRIPTOR_NAME`,
`DESCRIPTOR_DIM`, computed by `indexer.fingerprint.describe`) for descriptors. Opening a store
for a light command (stats, an id look-up) needs these names, not the models.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from common.weights import Builtins, looks_like_path, weights_file

WEIGHTS_DIR = Path(__file__).parent / "weights"
BUILTIN = Builtins("CLIP model", WEIGHTS_DIR, declared=("reelbase-tiny",), make="`reelbase train clip` writes them")
DESCRIPTOR_DIM = 3 * 8 * 8
DESCRIPTOR_NAME = "reelbase-pixel-descriptor-v1"


def model_identity(spec: str) -> str:
    """The name a store records for the vectors a spec's model writes.

    Weights from a file are named by their content, not their place: `reelbase-tiny@<digest>`,
    `ARCH@<digest>` for `ARCH:/path`. So weights retrained under the same name are told apart
    (their vectors must not mix with the old ones), and the same weights at another path (in a
    container, say) are not. A pretrained tag names fixed weights: it is its own identity.
    """
    weights = clip_weights(spec)
    return f"{spec.partition(':')[0]}@{weights_digest(weights)}" if weights else spec


def clip_weights(spec: str) -> Path | None:
    """The local weights file a CLIP spec names, by the weights ladder (common/weights.py): `ARCH:path`
    (its file must exist) or a built-in name; None for anything else (an open_clip pretrained tag)."""
    _, _, source = spec.partition(":")
    if source and looks_like_path(source):
        return weights_file(source, "CLIP", spec)
    return BUILTIN.resolve(spec) if spec in BUILTIN.available() else None


def weights_digest(path: Path) -> str:
    """The first 12 hex digits of the file's SHA-256."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()[:12]

