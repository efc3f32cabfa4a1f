"""Model files: safetensors weights with the config (and notes) as JSON in the metadata, and where they are.

A model rebuilds from its file alone; nothing is unpickled. A generator is a DiT checkpoint with
the frame autoencoder beside it, found by the weights ladder (common/weights.py): a checkpoint
path, or a built-in name `reelbase-NAME` for `generator-NAME.safetensors` in `generator/weights/`,
which is where `reelbase train generator --config NAME` exports.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from common.files import atomic_path, remove_stale_temp_files
from common.weights import Builtins, resolve, weights_file

WEIGHTS_DIR = Path(__file__).parent / "weights"  # the built-in models: shipped, or exported by training


def autoencoder_file(name: str) -> str:
    """The file of the autoencoder `name` (an `AE_CONFIGS` name), beside every generator trained on its latents."""
    return f"autoencoder-{name}.safetensors"


AUTOENCODER = autoencoder_file("tiny")  # the built-in generator's frame autoencoder
BUILTIN = Builtins("generator", WEIGHTS_DIR, files="generator-{}.safetensors", names="reelbase-{}",
                   declared=("reelbase-tiny",), make="`reelbase train generator --config NAME` exports reelbase-NAME")


def builtin_path(config: str) -> Path:
    """Where `reelbase train generator --config CONFIG` exports: the file of the built-in `reelbase-CONFIG`."""
    return BUILTIN.path(BUILTIN.names.format(config))


def generator_files(spec: str, autoencoder: str | Path | None = None) -> tuple[Path, Path]:
    """The DiT checkpoint a spec names (a path or a built-in name) and its autoencoder: the one given, else
    the one its config names (`DiTConfig.autoencoder`; "tiny" for older files) beside the checkpoint."""
    dit = resolve(spec, BUILTIN)
    if autoencoder is None:
        autoencoder = dit.with_name(autoencoder_file(read_config(dit).get("autoencoder", "tiny")))
    return dit, weights_file(autoencoder, "autoencoder")


def save_weights(path: str | Path, model: torch.nn.Module, config: dict, extra: dict | None = None) -> None:
    """Weights, config and JSON-ready `extra` in one safetensors file, written atomically."""
    path = Path(path)
    metadata = {"config": json.dumps(config), "extra": json.dumps(extra or {})}
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata=metadata)


def _metadata(path: str | Path) -> dict[str, str]:
    """The metadata of a file written by `save_weights`, read once; ValueError for any other file."""
    try:
        with safe_open(str(path), "pt") as f:
            metadata = f.metadata() or {}
    except (SafetensorError, OSError) as exc:
        raise ValueError(f"{path} is not a safetensors model file ({exc})") from None
    if "config" not in metadata:
        raise ValueError(f"{path} has no reelbase config in its metadata; it is not a reelbase model file")
    return metadata


def read_config(path: str | Path) -> dict:
    """The config of a file written by `save_weights`, without reading its weights."""
    return json.loads(_metadata(path)["config"])


def read_weights(path: str | Path) -> tuple[dict[str, torch.Tensor], dict, dict]:
    """The state dict, config and extra of a file written by `save_weights`."""
    metadata = _metadata(path)
    return load_file(str(path)), json.loads(metadata["config"]), json.loads(metadata.get("extra", "{}"))


def save_training_state(path: str | Path, parts: dict, **values) -> None:
    """Modules and optimizers (`parts`, by name) and plain `values` (step, ...); atomic, for resuming."""
    path = Path(path)
    state = {name: part.state_dict() for name, part in parts.items()} | values
    with atomic_path(path) as tmp:  # a kill never leaves half a state
        torch.save(state, tmp)


def load_training_state(path: str | Path, parts: dict) -> dict | None:
    """Load a saved state into `parts`; returns the whole state (with its values), or None if absent."""
    path = Path(path)
    remove_stale_temp_files(path.parent)  # what a killed save left
    if not path.exists():
        return None
    state = torch.load(path, map_location="cpu", weights_only=True)
    for name, part in parts.items():
        part.load_state_dict(state[name])
    return state
