"""Each library video's fingerprint thumbnails, kept beside the library so that verifying duplicates decodes no video.

One compressed `<video_id>.npz` per video in a folder of the data dir (`<data dir>/fingerprints/`):
the thumbnails (`indexer.thumbnails`: at most MAX_FRAMES of SIDE x SIDE x 3 bytes, 12 KB a frame
before compression, so under 800 KB for the longest video and about 100 KB for a 2 s clip) and
their times. Files rather than the catalog: Milvus keeps vectors and short strings, not blobs
of this size, and a file per video is written once (temp name, then an atomic rename) like
the library's own files, so the folder can live on the same share. A fingerprint is made from
the thumbnails in milliseconds (`indexer.fingerprint.fingerprint`); keeping the fingerprint
itself would take ten times the room (ten crop hypotheses of 3,072 values a frame).

A file that is missing, unreadable or of another VERSION reads as None: the caller computes it
from the video file once and writes it again.
"""

from __future__ import annotations

import logging
import zipfile
from pathlib import Path

import numpy as np

from common.files import atomic_path
from indexer.thumbnails import MAX_FRAMES, RATE, SIDE

log = logging.getLogger(__name__)

VERSION = f"reelbase-fingerprint-thumbnails-v1-{SIDE}px-{RATE:g}fps-{MAX_FRAMES}"  # what the files hold
SUFFIX = ".npz"


class FingerprintFiles:
    """The folder of kept fingerprint thumbnails, one file per video id."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)

    def path(self, video_id: str) -> Path:
        return self.folder / f"{video_id}{SUFFIX}"

    def write(self, video_id: str, thumbs: np.ndarray, times: np.ndarray) -> None:
        """Keep a video's (n, SIDE, SIDE, 3) uint8 thumbnails shown at `times` (atomically)."""
        thumbs, times = np.asarray(thumbs), np.asarray(times, dtype=np.float64)
        if not _well_formed(thumbs, times):
            raise ValueError(f"need (n, {SIDE}, {SIDE}, 3) uint8 thumbnails and n times, got {thumbs.shape} "
                             f"{thumbs.dtype} and {times.shape}")
        self.folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.path(video_id)) as tmp, open(tmp, "wb") as f:
            np.savez_compressed(f, version=np.array(VERSION), thumbnails=thumbs, times=times)

    def read(self, video_id: str) -> tuple[np.ndarray, np.ndarray] | None:
        """A video's kept thumbnails and times, or None when there are none (or they are unreadable or stale)."""
        path = self.path(video_id)
        try:
            with np.load(path, allow_pickle=False) as data:
                if str(data["version"]) != VERSION:
                    return None
                thumbs, times = data["thumbnails"], data["times"]
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as exc:
            log.warning("%s: unreadable fingerprint (%s); it is made again from the video", path, exc)
            return None
        return (thumbs, times) if _well_formed(thumbs, times) else None

    def delete(self, video_id: str) -> None:
        self.path(video_id).unlink(missing_ok=True)

    def files(self) -> list[Path]:
        """The kept files (temp files of writes in progress left out)."""
        folder = self.folder
        return [p for p in folder.glob(f"*{SUFFIX}") if not p.name.startswith(".")] if folder.is_dir() else []


def _well_formed(thumbs: np.ndarray, times: np.ndarray) -> bool:
    """n >= 1 uint8 thumbnails of SIDE x SIDE x 3 and n times."""
    return (thumbs.dtype == np.uint8 and thumbs.ndim == 4 and thumbs.shape[1:] == (SIDE, SIDE, 3)
            and times.shape == (len(thumbs),) and len(thumbs) > 0)
