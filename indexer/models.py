"""CLIP model specs: the weights ladder (common/weights.py) from a spec string to a loaded open_clip model.

A spec is, in this order (like open_clip's own factory, kept small):
1. `NAME:/path/to/weights` — an open_clip architecture with local weights (safetensors or a
   torch checkpoint, loaded without unpickling);
2. a built-in name (`reelbase-tiny`) — an open_clip config and safetensors in `indexer/weights/`,
   trained by `reelbase train clip`;
3. `NAME:TAG` — an open_clip pretrained tag: its cached weights, with no network access, else
   downloaded by open_clip where the download source answers (a quick check first, so an
   offline machine gets one clear line instead of a minute of retries).

A vocabulary file beside local weights (`<weights stem>.vocab.txt`, see indexer.vocabulary)
names the only words the text model was taught; without one, every word is known (BPE).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import open_clip
import torch

from common.weights import UnknownModel
from indexer import pretrained
from indexer.identity import BUILTIN, WEIGHTS_DIR, clip_weights, model_identity
from indexer.vocabulary import read_vocabulary

log = logging.getLogger(__name__)

PREPROCESS_KEYS = ("mean", "std", "interpolation", "resize_mode", "fill_color")  # a tag's, as open_clip applies
POPULAR_TAGS = ("ViT-B-32:laion2b_s34b_b79k", "ViT-B-16:laion2b_s34b_b88k", "ViT-L-14:openai", "ViT-B-32:openai")

open_clip.add_model_config(WEIGHTS_DIR)  # registers reelbase-tiny as an open_clip architecture


@dataclass
class ClipModel:
    """A loaded open_clip model with what it takes to feed it."""

    spec: str
    identity: str  # what a store records as its writer (see `model_identity`)
    model: torch.nn.Module
    tokenizer: object
    image_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    dim: int
    vocabulary: frozenset[str] | None = None  # the words the text model knows; None: all of them


def load_clip(spec: str, device: str = "cpu") -> ClipModel:
    """Resolve `spec` (explicit path, built-in name, pretrained tag) and load it on `device`."""
    name, _, source = spec.partition(":")
    weights = clip_weights(spec)
    if weights:
        return _create(spec, name, str(weights), device, model_identity(spec), read_vocabulary(weights))
    if source and (name, source) in set(open_clip.list_pretrained()):
        cfg = open_clip.get_pretrained_cfg(name, source)
        return _create(spec, name, _pretrained_file(spec, name, cfg), device, spec, preprocess=cfg)
    raise UnknownModel(f"unknown CLIP model spec '{spec}'. {available_models()}")


def available_models() -> str:
    """A one-paragraph list of what a spec may name."""
    tags = [f"{n}:{t}" for n, t in open_clip.list_pretrained()]
    examples = [t for t in POPULAR_TAGS if t in tags] or tags[:4]
    return (
        f"Built in: {', '.join(BUILTIN.available())}. open_clip pretrained tags ({len(tags)}), e.g. "
        f"{', '.join(examples)}, ... (all: python -c 'import open_clip; "
        "print(open_clip.list_pretrained())'). Local weights: ARCH:/path/to/weights, "
        f"ARCH one of open_clip's {len(open_clip.list_models())} architectures."
    )


def random_clip(arch: str, device: str = "cpu") -> ClipModel:
    """An open_clip architecture with random weights (for speed benchmarks, never for search)."""
    return _create(f"{arch}:random", arch, None, device, f"{arch}:random")


def _pretrained_file(spec: str, arch: str, cfg: dict) -> str:
    """The local file of a pretrained tag's weights: the cached one, else downloaded if the source answers."""
    cached = pretrained.cached_file(cfg)
    if cached:
        return cached
    source = pretrained.source_url(cfg)
    if not pretrained.reachable(source):
        raise UnknownModel(
            f"the weights of '{spec}' are not in the cache and {source or 'their source'} cannot be reached; "
            f"download them where a network is, or give a weights file: REELBASE_CLIP_MODEL={arch}:/path/to/weights"
        )
    return open_clip.download_pretrained(cfg)


def _create(spec: str, arch: str, weights: str | None, device: str, identity: str,
            vocabulary: frozenset[str] | None = None, preprocess: dict | None = None) -> ClipModel:
    """Build `arch` with the weights file (None: random); `preprocess` is a tag's mean, std, ..."""
    if arch not in open_clip.list_models():
        raise UnknownModel(f"unknown open_clip architecture '{arch}' in spec '{spec}'. {available_models()}")
    force = {k: v for k, v in (preprocess or {}).items() if k in PREPROCESS_KEYS}
    model = open_clip.create_model(arch, pretrained=weights, device=device, weights_only=True,
                                   force_preprocess_cfg=force)
    model.eval()
    cfg = model.visual.preprocess_cfg
    size = cfg["size"]
    tokenizer = open_clip.get_tokenizer(arch)
    with torch.inference_mode():
        dim = model.encode_text(tokenizer(["a"]).to(device)).shape[-1]
    return ClipModel(
        spec=spec,
        identity=identity,
        model=model,
        tokenizer=tokenizer,
        image_size=size if isinstance(size, int) else size[0],
        mean=tuple(cfg["mean"]),
        std=tuple(cfg["std"]),
        dim=dim,
        vocabulary=vocabulary,
    )
