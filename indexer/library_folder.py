"""Where a library's files live: the videos, their cached thumbnails, uploads in progress, kept fingerprints.

The catalog (Milvus) says which videos there are; this folder holds their bytes. A record names its
file by `uri`, a bare file name inside the videos folder: a path from the catalog never leads
outside it. The layout is in docs/architecture.md.
"""

from __future__ import annotations

from pathlib import Path

from common.files import remove_stale_temp_files
from indexer.fingerprint_files import FingerprintFiles


class LibraryFolder:
    """The files of one library: `videos/` (the library proper) and, in the data folder, `thumbs/`,
    `uploads/` and `fingerprints/`."""

    def __init__(self, videos: Path, data: Path):
        self.videos, self.data = Path(videos), Path(data)
        self.thumbs = Path(data) / "thumbs"
        self.uploads = Path(data) / "uploads"
        self.fingerprints = FingerprintFiles(Path(data) / "fingerprints")

    def remove_stale_temp_files(self) -> None:
        """Delete what killed processes left half-written in any of the folders."""
        for folder in (self.videos, self.data, self.thumbs, self.uploads, self.fingerprints.folder):
            remove_stale_temp_files(folder)

    def file(self, uri: str) -> Path | None:
        """The path a record's uri names, or None when it would lie outside the videos folder."""
        root = self.videos.resolve()
        path = (root / uri).resolve()
        return path if path.parent == root else None

    def existing_file(self, uri: str) -> Path | None:
        """The record's file when it is there."""
        path = self.file(uri)
        return path if path is not None and path.is_file() else None

    def files(self) -> list[Path]:
        """The files in the videos folder, leaving out hidden ones (temp files of writes in progress)."""
        videos = self.videos
        return [p for p in videos.iterdir() if p.is_file() and not p.name.startswith(".")] if videos.is_dir() else []

    def stats(self) -> dict:
        """The videos folder, and the files and bytes in it."""
        files = self.files()
        return {"library_dir": str(self.videos), "library_files": len(files),
                "library_bytes": sum(p.stat().st_size for p in files)}

    def thumb(self, video_id: str) -> Path:
        """Where a video's default thumbnail is cached."""
        return self.thumbs / f"{video_id}.png"

    def remove(self, video_id: str, uri: str) -> None:
        """Delete a video's files: the video, its cached thumbnail, its kept fingerprint."""
        for path in (self.file(uri), self.thumb(video_id), self.fingerprints.path(video_id)):
            if path is not None:
                path.unlink(missing_ok=True)
