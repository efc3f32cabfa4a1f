"""Where an open_clip pretrained tag's weights are: a local cache, or a download source.

open_clip downloads a tag's weights from the Hugging Face hub (or, without one, a URL) on every
load, asking the network first even when the file is cached; without a network that is a
minute of retries and a traceback. These helpers find the cached file without any network
access, and tell quickly whether the download source answers at all.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from pathlib import Path

HF_WEIGHTS_NAME = "open_clip_pytorch_model.bin"  # open_clip's default file of an hf_hub entry
REACH_TIMEOUT_S = 3.0


def cached_file(cfg: dict) -> str | None:
    """The local file of a tag's weights (its open_clip pretrained config), or None when not cached."""
    if cfg.get("file"):
        return cfg["file"] if os.path.isfile(cfg["file"]) else None
    if cfg.get("hf_hub"):
        found = _hf_cached_file(cfg["hf_hub"])
        if found:
            return found
    if cfg.get("url"):
        path = url_cache_dir() / os.path.basename(cfg["url"])
        if path.is_file():
            return str(path)
    return None


def source_url(cfg: dict) -> str:
    """Where open_clip would download the weights from (the HF hub preferred, as open_clip does)."""
    if cfg.get("hf_hub"):
        from huggingface_hub import constants

        return f"{constants.ENDPOINT}/{cfg['hf_hub'].rstrip('/')}"
    return cfg.get("url", "")


def reachable(url: str, timeout: float = REACH_TIMEOUT_S) -> bool:
    """Whether the server of `url` answers within `timeout` seconds (any HTTP status counts)."""
    if not url or _hf_offline(url):
        return False
    request = urllib.request.Request(url, method="HEAD")
    try:
        with urllib.request.urlopen(request, timeout=timeout):
            return True
    except urllib.error.HTTPError:
        return True  # the server answered, if only to refuse
    except (OSError, ValueError):  # URLError, timeouts, refused connections, a bad URL
        return False


def url_cache_dir() -> Path:
    """open_clip's own cache of URL downloads (its `download_pretrained_from_url` default)."""
    return Path(os.path.expanduser("~/.cache/clip"))


def _hf_cached_file(hf_hub: str) -> str | None:
    """The cached file of an `org/repo/[filename]` hub entry, its safetensors twin first (as open_clip)."""
    from huggingface_hub import try_to_load_from_cache

    model_id, filename = os.path.split(hf_hub)  # "org/repo/" names the default file
    for name in _safe_first(filename or HF_WEIGHTS_NAME):
        found = try_to_load_from_cache(model_id, name)
        if isinstance(found, str) and os.path.isfile(found):
            return found
    return None


def _safe_first(filename: str) -> list[str]:
    """The safetensors names open_clip tries before `filename`, then `filename` itself."""
    if filename == HF_WEIGHTS_NAME:
        return ["open_clip_model.safetensors", filename]
    if filename.endswith((".bin", ".pth")):
        return [filename[:-4] + ".safetensors", filename]
    return [filename]


def _hf_offline(url: str) -> bool:
    """HF_HUB_OFFLINE=1 forbids the hub: its URLs count as unreachable without asking."""
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE) and url.startswith(constants.ENDPOINT)
