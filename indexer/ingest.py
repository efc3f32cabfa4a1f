"""Ingest: files and folders from outside into the library, through the index writer (indexer.writer).

The walk finds regular video files; each is hashed (its content id), copied into the library once
read, and indexed. A video is in the library once its row is in the `videos` collection, which is
written last (after its file is in the library folder and its frame vectors are in `frames`). Everything
before that is idempotent (content-addressed file names, deterministic frame keys), so a run
killed half-way is repaired by running it again.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import shutil
import stat
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Protocol

from common.files import atomic_path, remove_stale_temp_files
from common.ids import ID_LENGTH
from indexer.probe import sniff
from indexer.reader import SampledFrames
from indexer.records import VideoRecord
from indexer.writer import Failed, IndexWriter, Item

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = {
    ".mp4", ".m4v", ".mov", ".webm", ".mkv", ".avi", ".mpg", ".mpeg", ".ogv", ".wmv", ".flv", ".3gp", ".ts",
}


@dataclass
class IngestReport:
    """What one ingest did: each file is added, already present, or failed with a reason."""

    added: list[str] = field(default_factory=list)  # video ids
    present: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason): not regular files, bad links
    ignored: int = 0  # files that are not videos by name or content
    frames: int = 0
    seconds: float = 0.0

    @property
    def nothing_taken(self) -> bool:
        """True when files were asked for but none was added or found already in: the run achieved nothing."""
        return not self.added and not self.present and bool(self.failed or self.skipped or self.ignored)

    def fail(self, path: str | Path, reason: str, progress: Progress | None = None) -> None:
        """Record that one file could not go in, and why."""
        self.failed.append((str(path), reason))
        if progress:
            progress.done(str(path), "failed")

    def summary(self) -> str:
        lines = [
            f"added {len(self.added)} videos ({self.frames} frames), {len(self.present)} already "
            f"in the library, {len(self.failed)} failed, {len(self.skipped)} skipped, {self.ignored} non-video "
            f"files ignored in {self.seconds:.1f} s"
        ]
        lines += [f"  failed: {path}: {reason}" for path, reason in self.failed]
        lines += [f"  skipped: {path}: {reason}" for path, reason in self.skipped]
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"added": self.added, "present": self.present, "ignored": self.ignored, "frames": self.frames,
                "seconds": round(self.seconds, 3), "failed": [{"path": p, "reason": r} for p, r in self.failed],
                "skipped": [{"path": p, "reason": r} for p, r in self.skipped]}


class Progress(Protocol):
    """Told how many files were found, then the outcome of each ("added", "present", "failed")."""

    def found(self, total: int) -> None: ...

    def done(self, path: str, outcome: str) -> None: ...


@dataclass
class Candidate:
    """A file on its way in, with its content id."""

    path: Path
    video_id: str


def content_id(path: str | Path) -> str:
    """The sha256 of the file's bytes, hex, shortened (docs/architecture.md, "Ingest").

    The file is opened without blocking and must still be a regular file once open, so a FIFO
    put in its place meanwhile is refused rather than waited on for ever.
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    with open(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        digest = hashlib.sha256()
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:ID_LENGTH]


@dataclass
class Found:
    """What a walk over the paths asked for found: video files, and what it passed over."""

    videos: list[Path] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    ignored: int = 0  # regular files that are not videos by name or content


def find_videos(roots: Iterable[str | Path]) -> Found:
    """The video files under `roots` (files or folders, recursively), each once.

    Only regular files are read. Symbolic links are followed to what they name, once each (a
    folder linked from inside itself is not walked again); a link loop, a dangling link, a FIFO,
    a device or a socket is skipped with the reason, and nothing is opened that could block. A
    file counts as a video when its name says so or its content does; a `.mp4` holding text is
    still returned, so that it is reported as bad rather than silently passed over.
    """
    found, seen_dirs, seen_files = Found(), set(), set()
    for root in roots:
        root = Path(root)
        if not os.path.lexists(root):
            raise FileNotFoundError(f"no such file or folder: {root}")
        _visit(root, found, seen_dirs, seen_files, top=True)
    return found


def _visit(path: Path, found: Found, seen_dirs: set, seen_files: set, top: bool = False) -> None:
    try:
        info = path.stat()  # follows links
    except OSError as exc:
        found.skipped.append((str(path), _link_problem(path, exc)))
        return
    key = (info.st_dev, info.st_ino)
    if stat.S_ISDIR(info.st_mode):
        if key in seen_dirs:
            return
        seen_dirs.add(key)
        try:
            names = sorted(os.listdir(path))
        except OSError as exc:
            found.skipped.append((str(path), f"cannot list the folder: {exc.strerror or exc}"))
            return
        for name in names:
            if not name.startswith("."):
                _visit(path / name, found, seen_dirs, seen_files)
    elif not stat.S_ISREG(info.st_mode):
        found.skipped.append((str(path), f"not a regular file ({_file_kind(info.st_mode)})"))
    elif key not in seen_files:
        seen_files.add(key)
        if top or _named_or_sniffed_video(path):
            found.videos.append(path)
        else:
            found.ignored += 1


def _named_or_sniffed_video(path: Path) -> bool:
    if path.suffix.lower() in VIDEO_SUFFIXES:
        return True
    try:
        return sniff(path) is not None
    except OSError:
        return True  # unreadable: let the read report why


def _link_problem(path: Path, exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return "symbolic link loop"
    if path.is_symlink():
        return f"dangling symbolic link (to {os.readlink(path)})"
    return f"cannot read: {exc.strerror or exc}"


def _file_kind(mode: int) -> str:
    kinds = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
             (stat.S_ISSOCK, "a socket"))
    return next((name for test, name in kinds if test(mode)), "not a file")


def ingest(
    paths: Iterable[str | Path],
    writer: IndexWriter,
    library_dir: str | Path,
    *,
    progress: Progress | None = None,
    keep_paths: bool = True,
) -> IngestReport:
    """Ingest files and folders into the library through the index writer, reporting each file to `progress`.

    Whatever goes wrong with one file (a bad video, a decoder crash, an encoder or copy error)
    is reported with its name and reason; every other file still goes in. `keep_paths` records
    where each file came from (not for uploads, whose path is a temporary folder). The writer
    decides the rest: the catalog, the models, where fingerprint thumbnails are kept, the limits.
    """
    started = time.time()
    library = Path(library_dir)
    library.mkdir(parents=True, exist_ok=True)
    remove_stale_temp_files(library)
    found = find_videos(paths)
    report = IngestReport(skipped=found.skipped, ignored=found.ignored)
    if progress:
        progress.found(len(found.videos))
    todo = _new_candidates(found.videos, writer.store, report, progress)
    items = [Item(c.path, partial(_into_library, c, library, keep_paths)) for c in todo]
    for outcome in writer.write(items):
        if isinstance(outcome, Failed):
            report.fail(outcome.item.path, outcome.reason, progress)
            continue
        report.added.append(outcome.entry.record.video_id)
        report.frames += len(outcome.entry.frame_embeddings)
        if progress:
            progress.done(str(outcome.item.path), "added")
    report.seconds = time.time() - started
    return report


def _new_candidates(files, store, report, progress) -> list[Candidate]:
    """Hash every file; those whose content is already in (or earlier in this run) are done."""
    hashed: dict[str, Path] = {}
    repeats: list[tuple[Path, str]] = []
    for path in files:
        try:
            video_id = content_id(path)
        except OSError as exc:
            report.fail(path, f"cannot read: {exc.strerror or exc}", progress)
            continue
        if video_id in hashed:
            repeats.append((path, video_id))
        else:
            hashed[video_id] = path
    present = set(store.get_videos(list(hashed), strong=True))  # one lookup, seeing other processes' commits
    for path, video_id in [(p, v) for v, p in hashed.items() if v in present] + repeats:
        report.present.append(video_id)
        if progress:
            progress.done(str(path), "present")
    return [Candidate(path, video_id) for video_id, path in hashed.items() if video_id not in present]


def _into_library(candidate: Candidate, library: Path, keep_path: bool, sampled: SampledFrames) -> VideoRecord:
    """Copy a file that was read into the library (content-addressed, atomic) and make its record."""
    name = f"{candidate.video_id}{_suffix(candidate.path, sampled)}"
    try:
        _copy_atomic(candidate.path, library / name)
    except OSError as exc:  # gone or unreadable since it was read, or the disk is full
        raise OSError(f"cannot copy into the library: {exc.strerror or exc}") from exc
    info = sampled.info
    return VideoRecord(
        video_id=candidate.video_id,
        uri=name,
        source="ingested",
        duration_s=float(info.duration_s),
        fps=float(info.fps),
        width=int(info.shown_size[0]),
        height=int(info.shown_size[1]),
        num_frames=int(info.num_frames),
        created_at=time.time(),
        meta=_meta(candidate.path, keep_path),
    )


def _suffix(path: Path, sampled: SampledFrames) -> str:
    suffix = path.suffix.lower()
    return suffix if suffix in VIDEO_SUFFIXES else f".{sampled.info.container.split('/')[0]}"


def _copy_atomic(src: Path, dst: Path) -> None:
    if dst.exists():
        return
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)


def _meta(path: Path, keep_path: bool) -> dict:
    """The original file name (and path), and the caption of a JSON sidecar (`clip.json` beside `clip.mp4`)."""
    meta = {"original_name": path.name, **({"original_path": str(path.resolve())} if keep_path else {})}
    sidecar = path.with_suffix(".json")
    if sidecar.is_file() and sidecar.stat().st_size < 1 << 20:
        try:
            caption = json.loads(sidecar.read_text()).get("caption")
        except (ValueError, AttributeError, UnicodeDecodeError):
            caption = None
        if isinstance(caption, str):
            meta["caption"] = caption[:1000]
    return meta
