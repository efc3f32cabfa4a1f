"""Folders of captioned videos, the training data a user brings: `clip.mp4` beside `clip.json`
(`{"caption": ...}`, as `reelbase world` writes) or `clip.txt`. The generator's and the temporal
model's `--data` read them the same way."""

from __future__ import annotations

import json
import logging
from pathlib import Path

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".webm", ".mkv", ".avi")


def captioned_videos(folder: str | Path) -> list[tuple[Path, str]]:
    """Every video file under `folder` (sorted) with its caption; videos without one are left out with a
    warning, and a folder where none has one is a ValueError."""
    found, skipped = [], []
    for path in sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file()):
        caption = caption_beside(path)
        if caption is None:
            skipped.append(path.name)
        else:
            found.append((path, caption))
    if skipped:
        log.warning("%d videos have no caption (.json with 'caption', or .txt) and are skipped", len(skipped))
    if not found:
        raise no_captioned_videos(folder)
    return found


def no_captioned_videos(folder: str | Path) -> ValueError:
    """The error of a folder with no captioned video to train on."""
    return ValueError(f"no captioned videos in {folder}: each video needs a .json with a 'caption' "
                      "or a .txt beside it")


def caption_beside(path: Path) -> str | None:
    """The caption of a video: `caption` of the JSON file beside it, else the text file beside it; None when
    neither holds one."""
    json_path, txt_path = path.with_suffix(".json"), path.with_suffix(".txt")
    if json_path.is_file():
        try:
            caption = json.loads(json_path.read_text()).get("caption")
        except (ValueError, AttributeError):
            return None
        return caption.strip() if isinstance(caption, str) and caption.strip() else None
    if txt_path.is_file():
        return txt_path.read_text().strip() or None
    return None
