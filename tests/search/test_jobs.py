"""The job queue's record across restarts: jobs left mid-save are settled, queued ones run in the order they came."""

import json
import time
from dataclasses import asdict

import pytest

from search.jobs import Job, JobQueue
from search.params import GenerationParams

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
