"""Generation jobs: a queue with one worker per generator model, progress, cancelling, and a record on disk.

A job is queued, then running (with its step of steps), then succeeded (its clip saved into the
library and indexed), failed (with the reason) or cancelled. Each change of state is written to
`jobs/<id>.json` in the data folder, so a restarted service still lists its jobs, and every change
(each step too) is handed to the queue's listeners (the API's event streams), so nobody waits on a
thread for it. The queue holds a bounded number of unfinished jobs (more are refused with QueueFull),
and the records of ended jobs are pruned by count and age (only the records: a clip a job made stays
in the library). One that was running when the process died is reported failed, and nothing of it
stays: the job records its clip's id before the clip's file enters the library, and at the next start
`recover` either finds the clip complete in the catalog (the job succeeded after all) or removes what
of it was saved.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from common.files import remove_stale_temp_files, write_atomic
from generator.params import GenerationParams
from search.params import shown

log = logging.getLogger(__name__)

TERMINAL = ("succeeded", "failed", "cancelled")
RETRY_AFTER_S = 30  # what a refused submitter is told to wait before asking again


class JobNotFound(LookupError):
    pass


class JobFinished(Exception):
    """Cancel of a job that has already ended."""


class QueueFull(Exception):
    """A submit while the queue holds its most unfinished jobs; ask again after `retry_after` seconds."""

    def __init__(self, message: str, retry_after: int = RETRY_AFTER_S):
        super().__init__(message)
        self.retry_after = retry_after


@dataclass
class Job:
    job_id: str
    params: dict
    status: str = "queued"  # queued | running | succeeded | failed | cancelled
    step: int = 0
    total_steps: int = 0
    video_id: str | None = None
    error: str | None = None
    created_at: float = field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None
    version: int = 0  # bumped on every change, for event streams

    def to_dict(self) -> dict:
        return asdict(self)


Run = Callable[[GenerationParams, Callable[[int, int], bool], Callable[[str], None]], str]


class JobQueue:
    """Runs `run(params, progress, saving) -> video_id` on one worker thread, one job at a time.

    `run` calls `progress(step, total)` (False means stop) and `saving(video_id)` before its clip
    enters the library; `recover(video_id) -> bool` tells whether a clip whose saving was
    interrupted is complete, removing it if not. At most `max_queued` jobs are queued or running at
    once; of the ended ones the newest `keep_finished` records stay, none older than `keep_days`.
    """

    def __init__(self, run: Run, folder: Path, recover: Callable[[str], bool] = lambda video_id: False,
                 max_queued: int = 32, keep_finished: int = 500, keep_days: float = 30.0):
        self._run = run
        self._recover = recover
        self.max_queued, self.keep_finished, self.keep_days = max_queued, keep_finished, keep_days
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._jobs: dict[str, Job] = {}
        self._cancel: set[str] = set()
        self._closing = False
        self._lock = threading.Lock()
        self._listeners: list[Callable[[Job], None]] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._load()
        self._worker = threading.Thread(target=self._work, name="generation-worker", daemon=True)
        self._worker.start()

    # --- the API ---

    def submit(self, params: GenerationParams) -> Job:
        """Queue a job; QueueFull when `max_queued` jobs are queued or running already."""
        job = Job(uuid.uuid4().hex, params.model_dump(mode="json"), total_steps=params.steps)
        with self._lock:
            if self._unfinished() >= self.max_queued:
                raise QueueFull(f"the generation queue is full ({self.max_queued} jobs queued or running); "
                                f"ask again in {RETRY_AFTER_S} s or later")
            self._jobs[job.job_id] = job
            self._save(job)
        self._queue.put(job.job_id)
        return job

    def get(self, job_id: str) -> Job:
        with self._lock:
            if job_id not in self._jobs:
                raise JobNotFound(f"no job '{shown(job_id)}'")
            return Job(**asdict(self._jobs[job_id]))

    def list(self, limit: int = 50) -> list[Job]:
        with self._lock:
            jobs = sorted(self._jobs.values(), key=lambda j: j.created_at, reverse=True)[:limit]
            return [Job(**asdict(j)) for j in jobs]

    def cancel(self, job_id: str) -> Job:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                raise JobNotFound(f"no job '{shown(job_id)}'")
            if job.status in TERMINAL:
                raise JobFinished(f"job {job_id} has already {job.status}; there is nothing to cancel")
            if job.status == "queued":
                self._finish(job, "cancelled")
            else:
                self._cancel.add(job_id)  # the worker stops at its next step
            return Job(**asdict(job))

    def add_listener(self, listener: Callable[[Job], None]) -> None:
        """Call `listener(job)` with a copy of each job on every change, on the thread that changed it.

        It runs under the queue's lock, so it must only hand the copy on (never call back into the queue).
        """
        with self._lock:
            self._listeners.append(listener)

    def counts(self) -> dict[str, int]:
        with self._lock:
            out: dict[str, int] = {}
            for job in self._jobs.values():
                out[job.status] = out.get(job.status, 0) + 1
            return out

    def close(self) -> None:
        """Stop at the running job's next step; it and the queued jobs stay queued on disk for the next start."""
        with self._lock:
            self._closing = True
            self._cancel.update(j.job_id for j in self._jobs.values() if j.status == "running")
        self._queue.put(None)
        self._worker.join(timeout=60)

    # --- the worker ---

    def _work(self) -> None:
        while (job_id := self._queue.get()) is not None:
            with self._lock:
                if self._closing:
                    return
                job = self._jobs[job_id]
                if job.status != "queued":
                    continue
                job.status, job.started_at = "running", time.time()
                self._touch(job, save=True)
            try:
                params = GenerationParams(**job.params)
                video_id = self._run(params, lambda step, total, j=job: self._progress(j, step, total),
                                     lambda video_id, j=job: self._saving(j, video_id))
            except Exception as exc:  # the job fails, the worker lives on
                saved = self._settle(job)  # it may have failed while saving its clip
                with self._lock:
                    if saved:  # the clip was in before the failure
                        log.warning("job %s: its clip %s is saved, but then: %s", job.job_id, job.video_id, exc)
                        self._finish(job, "succeeded")
                    elif self._closing and job.job_id in self._cancel:  # interrupted by a shutdown: run it again
                        job.status, job.step, job.started_at = "queued", 0, None
                        self._touch(job, save=True)
                    elif job.job_id in self._cancel:
                        self._finish(job, "cancelled")
                    else:
                        log.warning("job %s failed: %s", job.job_id, exc, exc_info=not _expected(exc))
                        self._finish(job, "failed", error=_reason(exc))
                    self._cancel.discard(job.job_id)
                continue
            with self._lock:
                job.video_id = video_id
                self._finish(job, "succeeded")

    def _progress(self, job: Job, step: int, total: int) -> bool:
        with self._lock:
            job.step, job.total_steps = step, total
            self._touch(job)
            return job.job_id not in self._cancel

    def _saving(self, job: Job, video_id: str) -> None:
        with self._lock:
            job.video_id = video_id
            self._touch(job, save=True)

    def _finish(self, job: Job, status: str, error: str | None = None) -> None:
        job.status, job.error, job.finished_at = status, error, time.time()
        self._touch(job, save=True)
        self._prune()

    def _unfinished(self) -> int:
        return sum(job.status not in TERMINAL for job in self._jobs.values())

    def _prune(self) -> None:
        """Forget the records of ended jobs beyond the newest `keep_finished` or older than `keep_days`."""
        ended = sorted((j for j in self._jobs.values() if j.status in TERMINAL),
                       key=lambda j: j.finished_at or j.created_at, reverse=True)
        oldest = time.time() - self.keep_days * 86_400
        for rank, job in enumerate(ended):
            if rank >= self.keep_finished or (job.finished_at or job.created_at) < oldest:
                del self._jobs[job.job_id]
                (self.folder / f"{job.job_id}.json").unlink(missing_ok=True)

    def _touch(self, job: Job, save: bool = False) -> None:
        job.version += 1
        if save:
            self._save(job)
        if self._listeners:
            self._tell(Job(**asdict(job)))

    def _tell(self, job: Job) -> None:
        for listener in self._listeners:
            try:
                listener(job)
            except Exception:  # a listener's fault must not stop the worker
                log.exception("a job listener failed on job %s", job.job_id)

    # --- the record on disk ---

    def _save(self, job: Job) -> None:
        write_atomic(self.folder / f"{job.job_id}.json", json.dumps(job.to_dict()))

    def _load(self) -> None:
        """Read earlier jobs; those the last process left running failed with it, queued ones run again."""
        remove_stale_temp_files(self.folder)
        jobs = []
        for path in self.folder.glob("*.json"):
            try:
                jobs.append(Job(**json.loads(path.read_text())))
            except (ValueError, TypeError) as exc:
                log.warning("skipping unreadable job record %s: %s", path, exc)
        for job in sorted(jobs, key=lambda j: j.created_at):  # queued ones run in the order they came
            if job.status == "running" or (job.status == "failed" and job.video_id):
                self._after_crash(job)
                self._save(job)
            elif job.status == "queued" and job.video_id:  # a shutdown stopped it while saving; the store was away
                if self._settle(job):
                    job.status, job.finished_at = "succeeded", time.time()
                self._save(job)
            self._jobs[job.job_id] = job
            if job.status == "queued":
                self._queue.put(job.job_id)
        self._prune()

    def _after_crash(self, job: Job) -> None:
        """A job that stopped while running or saving: succeeded if its clip was saved whole, else failed."""
        if self._settle(job):
            job.status, job.finished_at, job.error = "succeeded", time.time(), None
            return
        job.status, job.finished_at = "failed", time.time()
        job.error = job.error or "the service stopped while this job ran; nothing of it was kept"

    def _settle(self, job: Job) -> bool:
        """True if the job's clip is saved whole; else remove what of it was written and forget its id.

        Where that cannot be done now (the store away), the id stays, and the next start settles it.
        """
        if not job.video_id:
            return False
        try:
            if self._recover(job.video_id):
                return True
        except Exception as exc:
            log.warning("job %s: cannot settle its clip %s now (%s); the next start will", job.job_id,
                        job.video_id, exc)
            return False
        job.video_id = None
        return False


def _expected(exc: Exception) -> bool:
    return isinstance(exc, (ValueError, LookupError))


def _reason(exc: Exception) -> str:
    return str(exc) or type(exc).__name__
