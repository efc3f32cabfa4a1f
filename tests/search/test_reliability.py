"""Faults and load against `reelbase serve` in its own process, on Milvus Lite and on a real Milvus server.

- The API killed (-9) during a generation job: after a restart the job is reported failed, no
  file or vector of it is left, and the next job succeeds.
- A process killed while saving a clip: the next start finds the clip whole (the job succeeded)
  or removes what was written.
- Parallel searches while an ingest and a generation job run: no errors, no write lost.
"""

import os
import signal
import threading
import time
from pathlib import Path

import httpx
import pytest

from generator.params import GenerationParams
from generator.video import write_mp4
from generator.world import FPS, sample_clips
from indexer.milvus import StoreError, drop_catalog
from indexer.models import model_identity
from indexer.store import VideoStore
from indexer.writer import Failed, IndexWriter
from search.jobs import JobQueue
from search.service import Reelbase
from search.settings import Settings
from tests.fixtures import ApiProcess

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


@pytest.fixture(params=["lite", pytest.param("server", marks=pytest.mark.server)])
def deployment(request, tmp_path):
    """(environment for `reelbase serve`, Milvus URI, data folder): a Lite file, or the session's Milvus server."""
    data = tmp_path / "data"
    uri = str(data / "milvus.db")
    if request.param == "server":
        uri = request.getfixturevalue("milvus_server_uri")
        drop_catalog(uri)
    env = {**os.environ, "REELBASE_DATA_DIR": str(data), "REELBASE_MILVUS_URI": uri, "REELBASE_DEVICE": "cpu"}
    return env, uri, data


def upload(client: httpx.Client, path: Path) -> str:
    r = client.post("/videos", files={"file": (path.name, path.read_bytes(), "video/mp4")})
    assert r.status_code == 201, r.text
    return r.json()["video"]["video_id"]


def wait_for(client: httpx.Client, job_id: str, done, timeout: float = 300.0) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        job = client.get(f"/jobs/{job_id}").json()
        if done(job):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} never got there: {job}")


def ended(job: dict) -> bool:
    return job["status"] in ("succeeded", "failed", "cancelled")


def library_files(data: Path) -> list[str]:
    return sorted(p.name for p in (data / "library").iterdir())


def assert_consistent(uri: str, data: Path, expected_ids: set[str]) -> None:
    """The catalog holds exactly these videos, each with its file, and no vector without a video."""
    with VideoStore(uri, clip_model=model_identity("reelbase-tiny"), dim=256) as store:
        assert {r.video_id for r in store.iter_videos()} == expected_ids
        assert store.orphan_frame_video_ids() == set()
    assert library_files(data) == sorted(f"{v}.mp4" for v in expected_ids)


def test_api_killed_during_a_generation_job_keeps_nothing_and_the_next_job_succeeds(deployment, tmp_path):
    env, uri, data = deployment
    (clip,) = sample_clips(41, 0, 1)
    source = write_mp4(tmp_path / "clip.mp4", clip.frames, FPS)
    api = ApiProcess(env, ROOT).wait_ready()
    with httpx.Client(base_url=api.url, timeout=120) as client:
        ids = {upload(client, source)}
        job = client.post("/jobs", json={"prompt": "a red ball moving right on black", "steps": 200}).json()
        wait_for(client, job["job_id"], lambda j: j["status"] == "running" and j["step"] >= 2)
    api.kill(signal.SIGKILL)

    with ApiProcess(env, ROOT) as api, httpx.Client(base_url=api.url, timeout=120) as client:
        after = client.get(f"/jobs/{job['job_id']}").json()
        assert after["status"] == "failed" and "stopped" in after["error"] and after["video_id"] is None
        assert client.get("/stats").json()["videos"] == 1
        next_job = client.post("/jobs", json={"prompt": "a blue square moving up in a forest", "steps": 3}).json()
        done = wait_for(client, next_job["job_id"], ended)
        assert done["status"] == "succeeded", done
        ids.add(done["video_id"])
    assert_consistent(uri, data, ids)


@pytest.mark.parametrize("crash_after", ["file", "frames", "row"])
def test_a_clip_interrupted_while_saving_is_removed_or_kept_whole(deployment, crash_after, monkeypatch):
    """The process dies inside saving (in-process here, so the kill point is exact): after the
    clip's file entered the library, after some of its vectors, or after its commit row."""
    _, uri, data = deployment
    service = Reelbase(Settings(data_dir=data, milvus_uri=uri, device="cpu"))
    frames = sample_clips(42, 0, 1)[0].frames
    real_store, died = IndexWriter._store, threading.Event()

    def store_until_the_crash(writer, entries):
        ((_, entry),) = entries
        if crash_after == "frames":
            writer.store._write_frames([_frame_rows(entry)])
        elif crash_after == "row":
            list(real_store(writer, entries))
        died.set()
        threading.Event().wait()  # dead from here on: nothing more happens in this "process"
        yield

    monkeypatch.setattr(IndexWriter, "_store", store_until_the_crash)
    queue = JobQueue(lambda params, progress, saving: service.generation.add_clip(
        frames, FPS, params.prompt, {}, on_saving=saving).video_id, data / "jobs")
    job = queue.submit(GenerationParams(prompt="a red ball moving right on black"))
    assert died.wait(60)
    video_id = queue.get(job.job_id).video_id
    assert video_id and (data / "library" / f"{video_id}.mp4").exists()

    after = JobQueue(lambda *a: "", data / "jobs",  # the next start
                     recover=service.generation.recover_clip).get(job.job_id)
    if crash_after == "row":
        assert after.status == "succeeded" and after.video_id == video_id
        expected = {video_id}
    else:
        assert after.status == "failed" and after.video_id is None
        expected = set()
    service.store.close()
    assert_consistent(uri, data, expected)


@pytest.mark.parametrize("store_back", [True, False])
def test_a_clip_whose_saving_fails_leaves_nothing_behind(deployment, store_back, monkeypatch):
    """Milvus refuses a write half-way through saving: the job fails and its file and vectors go, at
    once, or at the next start when the store cannot be reached to clean up either."""
    _, uri, data = deployment
    service = Reelbase(Settings(data_dir=data, milvus_uri=uri, device="cpu"))
    frames = sample_clips(43, 0, 1)[0].frames

    def store_then_fail(writer, entries):
        ((item, entry),) = entries
        writer.store._write_frames([_frame_rows(entry)])
        yield Failed(item, "cannot write to the catalog: the Milvus server went away")

    def recover_unless_down(video_id):
        if not store_back:
            raise StoreError("still away")
        return service.generation.recover_clip(video_id)

    monkeypatch.setattr(IndexWriter, "_store", store_then_fail)
    queue = JobQueue(lambda params, progress, saving: service.generation.add_clip(
        frames, FPS, params.prompt, {}, on_saving=saving).video_id, data / "jobs", recover=recover_unless_down)
    job = queue.submit(GenerationParams(prompt="a blue ball moving up on black"))
    deadline = time.time() + 60
    while not ended(queue.get(job.job_id).__dict__) and time.time() < deadline:
        time.sleep(0.05)
    failed = queue.get(job.job_id)
    assert failed.status == "failed" and "went away" in failed.error
    queue.close()
    if store_back:
        assert failed.video_id is None
    else:  # the id stays, so the next start can settle it
        assert failed.video_id and (data / "library" / f"{failed.video_id}.mp4").exists()
        after = JobQueue(lambda *a: "", data / "jobs", recover=service.generation.recover_clip).get(job.job_id)
        assert after.status == "failed" and after.video_id is None and "went away" in after.error
    existing = {r.video_id for r in service.store.iter_videos()}
    service.store.close()
    assert_consistent(uri, data, existing)


def _frame_rows(entry):
    """A video entry's frame rows, as the store writes them before the commit row."""
    return entry.record.video_id, list(entry.frame_indices), list(entry.frame_times), entry.frame_embeddings


def test_parallel_searches_while_ingesting_and_generating_lose_nothing(deployment, tmp_path):
    env, uri, data = deployment
    clips = [write_mp4(tmp_path / f"clip{i}.mp4", c.frames, FPS) for i, c in enumerate(sample_clips(43, 0, 8))]
    errors, searches = [], []
    stop = threading.Event()

    with ApiProcess(env, ROOT) as api:
        def search(worker: int):
            with httpx.Client(base_url=api.url, timeout=120) as c:
                prompts = ["a red ball moving right on black", "a green square at sunset", "a blue ball in a forest"]
                while not stop.is_set():
                    try:
                        r = (c.post("/search/text", json={"text": prompts[len(searches) % 3], "top_k": 5})
                             if worker % 2 == 0 else c.get("/videos", params={"limit": 20}))
                        searches.append(r.status_code)
                        if r.status_code != 200:
                            errors.append(r.text)
                    except httpx.HTTPError as exc:
                        errors.append(repr(exc))

        with httpx.Client(base_url=api.url, timeout=120) as client:
            ids = {upload(client, clips[0]), upload(client, clips[1])}
            readers = [threading.Thread(target=search, args=(w,)) for w in range(3)]
            for t in readers:
                t.start()
            job = client.post("/jobs", json={"prompt": "a yellow ball falling on black", "steps": 8}).json()
            uploaded = [upload(client, path) for path in clips[2:]]  # while the job runs and searches go on
            done = wait_for(client, job["job_id"], ended)
            stop.set()
            for t in readers:
                t.join()
            assert done["status"] == "succeeded", done
            ids |= set(uploaded) | {done["video_id"]}
            listed = {v["video_id"] for v in client.get("/videos", params={"limit": 100}).json()["videos"]}
            assert listed == ids and client.get("/stats").json()["videos"] == len(ids) == 9
    assert not errors, errors[:3]
    assert len(searches) >= 10
    assert_consistent(uri, data, ids)
