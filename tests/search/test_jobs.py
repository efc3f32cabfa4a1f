"""The job queue's record across restarts: jobs left mid-save are settled, queued ones run in the order they came;
its bound, and the pruning of ended jobs' records."""

import json
import threading
import time
from dataclasses import asdict

import pytest

from generator.params import GenerationParams
from search.jobs import Job, JobNotFound, JobQueue, QueueFull

PARAMS = GenerationParams(prompt="a red ball moving right on black", steps=1).model_dump(mode="json")


def write(folder, *jobs: Job) -> None:
    folder.mkdir(exist_ok=True)
    for job in jobs:
        (folder / f"{job.job_id}.json").write_text(json.dumps(asdict(job)))


def wait_until_ended(queue: JobQueue, job_id: str) -> Job:
    deadline = time.time() + 30
    while (job := queue.get(job_id)).status in ("queued", "running") and time.time() < deadline:
        time.sleep(0.02)
    return job


def test_queued_jobs_run_in_the_order_they_came_after_a_restart(tmp_path):
    jobs = [Job(f"{'fedcba'[i]}{i}", PARAMS, created_at=1000.0 + i) for i in range(6)]  # ids sort backwards
    write(tmp_path / "jobs", *jobs)
    ran = []
    queue = JobQueue(lambda params, progress, saving: ran.append(1) or f"v{len(ran)}", tmp_path / "jobs")
    for job in jobs:
        assert wait_until_ended(queue, job.job_id).status == "succeeded"
    queue.close()
    assert [queue.get(j.job_id).video_id for j in jobs] == [f"v{i}" for i in range(1, 7)]


@pytest.mark.parametrize("saved", [True, False])
def test_a_job_requeued_while_saving_is_settled_before_it_runs_again(tmp_path, saved):
    """A shutdown stopped it as its clip was being saved, and the store was away to settle it then."""
    write(tmp_path / "jobs", Job("j1", PARAMS, video_id="half"))
    settled = []
    queue = JobQueue(lambda params, progress, saving: "fresh", tmp_path / "jobs",
                     recover=lambda video_id: settled.append(video_id) or saved)
    job = wait_until_ended(queue, "j1")
    queue.close()
    assert settled == ["half"] and job.status == "succeeded"
    assert job.video_id == ("half" if saved else "fresh")  # kept whole, or removed and made again


def test_a_failed_job_whose_clip_could_not_be_settled_is_settled_at_the_next_start(tmp_path):
    write(tmp_path / "jobs", Job("j1", PARAMS, status="failed", video_id="half", error="Milvus went away"))
    queue = JobQueue(lambda *a: "", tmp_path / "jobs", recover=lambda video_id: False)
    job = queue.get("j1")
    queue.close()
    assert (job.status, job.video_id, job.error) == ("failed", None, "Milvus went away")
    assert json.loads((tmp_path / "jobs" / "j1.json").read_text())["video_id"] is None


class Blocked:
    """A run that waits until released, so jobs stay queued or running as long as a test needs."""

    def __init__(self):
        self.release = threading.Event()

    def __call__(self, params, progress, saving) -> str:
        self.release.wait(30)
        return "made"


def test_a_full_queue_refuses_jobs_until_one_ends(tmp_path):
    run = Blocked()
    queue = JobQueue(run, tmp_path / "jobs", max_queued=2)
    params = GenerationParams(prompt="a red ball", steps=1)
    queue.submit(params)
    second = queue.submit(params)
    with pytest.raises(QueueFull, match="2 jobs queued or running") as refused:
        queue.submit(params)
    assert refused.value.retry_after > 0
    assert len(list((tmp_path / "jobs").glob("*.json"))) == 2  # the refused job left no record
    assert queue.cancel(second.job_id).status == "cancelled"  # queued behind the first, which the worker holds
    third = queue.submit(params)
    run.release.set()
    assert wait_until_ended(queue, third.job_id).status == "succeeded"
    queue.close()


def ended(job_id: str, status: str, age_s: float) -> Job:
    finished = time.time() - age_s
    return Job(job_id, PARAMS, status=status, created_at=finished - 5, started_at=finished - 4, finished_at=finished)


def test_ended_job_records_are_pruned_by_count_and_age_but_never_unfinished_ones(tmp_path):
    days = 86_400
    recent = [ended(f"r{i}", ("succeeded", "failed", "cancelled")[i % 3], age_s=60 * i) for i in range(5)]
    old = ended("old", "succeeded", age_s=40 * days)
    waiting = [Job(f"q{i}", PARAMS, created_at=time.time() - 90 * days) for i in range(2)]  # older than any
    write(tmp_path / "jobs", *recent, old, *waiting)
    run = Blocked()
    queue = JobQueue(run, tmp_path / "jobs", keep_finished=3, keep_days=30)

    def kept() -> set[str]:
        on_disk = {p.stem for p in (tmp_path / "jobs").glob("*.json")}
        assert on_disk == {j.job_id for j in queue.list(limit=100)}
        return on_disk

    assert kept() == {"r0", "r1", "r2", "q0", "q1"}  # the 3 newest ended, none of 40 days, both unfinished
    with pytest.raises(JobNotFound):
        queue.get("old")
    run.release.set()
    assert wait_until_ended(queue, "q0").status == wait_until_ended(queue, "q1").status == "succeeded"
    queue.close()
    assert kept() == {"q0", "q1", "r0"}  # the two just ended are now the newest

