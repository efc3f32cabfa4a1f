"""Library-wide upkeep: re-index (embed every video again) and repair (remove what interrupted work left).

Both hold the library (`common.tasks.LibraryTasks`): one library-wide task at a time per service.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path

from common.files import write_atomic
from common.tasks import LibraryTasks
from indexer.library_folder import LibraryFolder
from indexer.milvus import ModelMismatch, drop_catalog, read_catalog
from indexer.records import VideoRecord
from indexer.store import VideoStore
from indexer.writer import Failed, IndexWriter, Item

log = logging.getLogger(__name__)

ORPHAN_FILE_AGE_S = 3600.0  # a library file with no catalog row this long is left from a dead process


class Maintenance:
    """Re-index and repair over one library's folder and catalog.

    `open_store` opens (or returns the open) catalog and raises ModelMismatch when it was made with
    another CLIP model; `writer` gives the index writer (loading the CLIP model) only when a
    re-index needs it; `catalog` is the Milvus (uri, token) to read or drop a mismatched catalog by.
    """

    def __init__(self, folder: LibraryFolder, data_dir: Path, open_store: Callable[[], VideoStore],
                 writer: Callable[[], IndexWriter], catalog: tuple[str, str], tasks: LibraryTasks):
        self.folder = folder
        self._open_store, self._writer = open_store, writer
        self._catalog = catalog
        self._tasks = tasks
        self.pending = Path(data_dir) / "reindex-records.json"  # the records of a re-index under way
        self.failed = Path(data_dir) / "reindex-failed.json"  # records of videos a re-index could not read

    def repair(self, min_age_s: float = ORPHAN_FILE_AGE_S) -> dict:
        """Remove what interrupted work left behind, and report videos whose file is gone.

        Vectors with no video row (an add or a delete that died half-way), and library files and
        kept fingerprints that no record names (a save or an ingest that died before its commit,
        a kill -9 during an upload). Every such file is listed; those at least `min_age_s` old are
        removed: a caller that holds the library (the CLI, with no API running) passes 0, as
        nothing else can be writing; the default leaves files young enough to be a write in
        progress. Records kept out of the catalog by a re-index count: a re-index that died
        half-way is finished first (`reindex`), and files kept in `reindex-failed.json` stay. Rows
        whose file is missing are only reported: a library on a share may be away for a while
        (delete them with DELETE /videos/{id}).
        """
        with self._tasks.running("repair"):
            if self.pending.is_file():
                raise ValueError(f"a re-index is unfinished ({self.pending}); run `reelbase reindex` first")
            store = self._open_store()
            orphaned_vectors = store.delete_orphans()
            records = list(store.iter_videos())
            kept = records + read_records(self.failed)
            named, ids = {r.uri for r in kept}, {r.video_id for r in kept}
            stray = [p for p in self.folder.files() if p.name not in named]
            stray_fingerprints = [p for p in self.folder.fingerprints.files() if p.stem not in ids]
            removed = {p for p in stray + stray_fingerprints if _age_s(p) >= min_age_s}
            for path in removed:
                path.unlink(missing_ok=True)
            for path in removed.intersection(stray):
                self.folder.thumb(path.stem).unlink(missing_ok=True)
            missing = [r.video_id for r in records if self.folder.existing_file(r.uri) is None]
            return {"orphaned_vectors": orphaned_vectors,
                    "stray_files": sorted(p.name for p in stray if p in removed),
                    "stray_fingerprints": sorted(p.name for p in stray_fingerprints if p in removed),
                    "stray_files_left": sorted(p.name for p in stray + stray_fingerprints if p not in removed),
                    "missing_files": missing}

    def reindex(self, progress: Callable[[int, int], None] | None = None) -> dict:
        """Re-embed every library video with the configured CLIP model (and its windows with the temporal model
        serving it), keeping each record as it was.

        With the same model the vectors are replaced in place. After a model change the old
        vectors are worthless: the records are saved to a file in the data folder, the
        collections dropped, and every file embedded again; a run that dies half-way resumes
        from that file when run again. A video whose file cannot be read keeps its record in
        `reindex-failed.json`, out of the catalog, and the next re-index tries it again.
        """
        with self._tasks.running("re-index"):
            records = read_records(self.failed) + self._records_to_reindex()
            records = list({r.video_id: r for r in records}.values())  # the catalog's record wins
            writer, store = self._writer(), self._open_store()
            if writer.temporal is not None:
                store.make_windows()  # every video is written again, with its windows
            record_of = {Item.known(self.folder.existing_file(r.uri) or Path("/nonexistent"), r): r for r in records}
            done, failed, kept = 0, [], []
            for outcome in writer.write(record_of):
                record = record_of[outcome.item]
                if isinstance(outcome, Failed):
                    failed.append({"video_id": record.video_id, "reason": outcome.reason})
                    if store.get_video(record.video_id) is None:  # not in the catalog: keep its record
                        kept.append(record)
                else:
                    done += 1
                if progress:
                    progress(done + len(failed), len(records))
            write_records(self.failed, kept)  # before the resume file goes: a crash between loses nothing
            self.pending.unlink(missing_ok=True)
            return {"reindexed": done, "failed": failed, "model": writer.encoder.name}

    def _records_to_reindex(self) -> list[VideoRecord]:
        """The catalog's records; after a model change, saved to the resume file and the catalog dropped."""
        if self.pending.is_file():
            log.info("resuming an interrupted re-index from %s", self.pending)
        else:
            try:
                return list(self._open_store().iter_videos())
            except ModelMismatch as exc:
                log.info("%s; re-indexing every video with the configured CLIP model", exc)
                write_records(self.pending, read_catalog(*self._catalog))
        try:  # the drop may not have finished before the last run died
            self._open_store()
        except ModelMismatch:
            drop_catalog(*self._catalog)
        return read_records(self.pending)


def read_records(path: Path) -> list[VideoRecord]:
    return [VideoRecord(**r) for r in json.loads(path.read_text())] if path.is_file() else []


def write_records(path: Path, records: list[VideoRecord]) -> None:
    """The records as JSON (atomically), or no file when there are none."""
    if records:
        write_atomic(path, json.dumps([r.to_dict() for r in records]))
    else:
        path.unlink(missing_ok=True)


def _age_s(path: Path) -> float:
    """Seconds since the file was last written (infinite when it is gone already)."""
    try:
        return time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return float("inf")
