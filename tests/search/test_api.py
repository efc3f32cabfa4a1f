"""The HTTP API against the real store (Milvus Lite in a temporary folder) and the built-in models."""

import io
import json
import threading
import time

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from generator.video import write_mp4
from generator.world import FPS, sample_clips
from indexer.milvus import drop_catalog
from indexer.models import model_identity
from indexer.records import VideoRecord, VideoWindows
from search import media_links
from search.api import create_app
from search.jobs import JobQueue
from search.settings import Settings
from tests import fixtures

UPLOAD_LIMIT_MB = 1
MAX_QUEUED_JOBS = 16


@pytest.fixture(scope="module", params=["lite", pytest.param("server", marks=pytest.mark.server)])
def api(request, tmp_path_factory):
    """A running app with six world clips uploaded; yields (client, {name: video_id}, data_dir).

    The catalog is a Milvus Lite file, or the session's real Milvus server (the same suite on both).
    """
    root = tmp_path_factory.mktemp("api")
    uri = ""
    if request.param == "server":
        uri = request.getfixturevalue("milvus_server_uri")
        drop_catalog(uri)
    settings = Settings(data_dir=root / "data", milvus_uri=uri, device="cpu", max_upload_mb=UPLOAD_LIMIT_MB,
                        max_queued_jobs=MAX_QUEUED_JOBS)
    with TestClient(create_app(settings)) as client:
        ids = {}
        for i, clip in enumerate(sample_clips(31, 0, 6)):
            path = write_mp4(root / f"clip{i}.mp4", clip.frames, FPS)
            r = client.post("/videos", files={"file": (path.name, path.read_bytes(), "video/mp4")})
            assert r.status_code == 201, r.text
            ids[clip.caption + f" #{i}"] = r.json()["video"]["video_id"]
        yield client, ids, settings.data_dir


def _wait(client, job_id, timeout=60.0) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        job = client.get(f"/jobs/{job_id}").json()
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish: {job}")


def _png(frame: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(frame).save(buf, format="PNG")
    return buf.getvalue()


def _assert_up(client):
    assert client.get("/health").json()["status"] == "ok"


# --- queries -------------------------------------------------------------------------------------


def test_text_search_gives_one_hit_per_video_with_moments_and_links(api):
    client, ids, _ = api
    caption = next(iter(ids)).split(" #")[0]
    r = client.post("/search/text", json={"text": caption, "top_k": 3})
    assert r.status_code == 200
    hits = r.json()["hits"]
    assert 1 <= len(hits) <= 3 and len({h["video"]["video_id"] for h in hits}) == len(hits)
    assert hits[0]["video"]["video_id"] == next(iter(ids.values()))
    hit = hits[0]
    assert hit["score"] >= hits[-1]["score"] and 0 <= hit["best_t"] <= 2.0
    assert hit["frames"] and hit["frames"][0]["frame_url"].startswith(f"/media/{hit['video']['video_id']}/frame?t=")
    assert client.get(hit["thumbnail_url"]).headers["content-type"] == "image/png"
    assert client.get(hit["video"]["links"]["video"]).status_code == 200


def test_text_search_names_the_words_the_model_does_not_know(api):
    client, _, _ = api
    unknown = client.post("/search/text", json={"text": "a rabbit in a meadow", "top_k": 3}).json()
    assert unknown["hits"] and unknown["unknown_words"] == ["rabbit", "meadow"]
    assert "synthetic world" in unknown["notice"] and "ARCH:/path/to/weights" in unknown["notice"]
    known = client.post("/search/text", json={"text": "a red ball at sunset", "top_k": 3}).json()
    assert known["unknown_words"] == [] and known["notice"] is None


def test_text_search_pages_do_not_overlap(api):
    client, _, _ = api
    first = client.post("/search/text", json={"text": "a ball", "top_k": 3}).json()["hits"]
    second = client.post("/search/text", json={"text": "a ball", "top_k": 3, "offset": 3}).json()["hits"]
    everything = client.post("/search/text", json={"text": "a ball", "top_k": 6}).json()["hits"]
    ids = [h["video"]["video_id"] for h in everything]
    assert [h["video"]["video_id"] for h in first + second] == ids


def test_filters_restrict_hits(api):
    client, ids, _ = api

    def hits(**filters) -> list[dict]:
        r = client.post("/search/text", json={"text": "a ball", "top_k": 50, "filters": filters})
        assert r.status_code == 200, r.text
        return [h["video"] for h in r.json()["hits"]]

    def total(source: str) -> int:
        return client.get("/videos", params={"source": source, "limit": 1}).json()["total"]

    everything = hits()
    assert len(everything) == total("ingested") + total("generated") >= len(ids)
    for source in ("ingested", "generated"):
        found = hits(source=source)
        assert len(found) == total(source) and all(v["source"] == source for v in found)
    assert len(hits(min_duration=1.5, max_duration=2.5)) == len(everything) and hits(min_duration=100) == []
    times = sorted(v["created_at"] for v in everything)
    later = hits(created_after=times[3])
    assert 0 < len(later) < len(everything) and all(v["created_at"] >= times[3] for v in later)
    assert hits(created_after=time.time() + 3600) == []


def test_image_and_frame_search_find_the_source_video(api):
    client, ids, _ = api
    name, video_id = list(ids.items())[2]
    frame = client.get(f"/media/{video_id}/frame", params={"t": 1.0})
    assert frame.status_code == 200 and frame.headers["x-frame-time"] == "1.0000"
    r = client.post("/search/image", files={"image": ("q.png", frame.content, "image/png")}, params={"top_k": 2})
    assert r.status_code == 200 and r.json()["hits"][0]["video"]["video_id"] == video_id
    r = client.post("/search/frame", json={"video_id": video_id, "t": 1.0, "top_k": 2})
    assert r.json()["hits"][0]["video"]["video_id"] == video_id


def test_similar_leaves_the_video_itself_out(api):
    client, ids, _ = api
    video_id = list(ids.values())[0]
    r = client.post("/search/similar", json={"video_id": video_id, "top_k": 3})
    assert r.status_code == 200
    found = [s["video"]["video_id"] for s in r.json()]
    assert len(found) == 3 and video_id not in found


# --- bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize("body", [
    {"text": ""}, {"text": "a ball", "top_k": 0}, {"text": "a ball", "top_k": 10_000}, {"text": "a", "colour": "red"},
    {"text": "a ball", "filters": {"source": "stolen"}}, {"text": "a ball", "offset": -1},
])
def test_invalid_search_parameters_are_422(api, body):
    client, _, _ = api
    assert client.post("/search/text", json=body).status_code == 422


def test_unknown_and_malformed_ids(api):
    client, _, _ = api
    unknown = "0" * 32
    assert client.get(f"/videos/{unknown}").status_code == 404
    assert client.get(f"/media/{unknown}/video").status_code == 404
    assert client.delete(f"/videos/{unknown}").status_code == 404
    assert client.post("/search/similar", json={"video_id": unknown}).status_code == 404
    assert client.post("/search/similar", json={"video_id": "../../etc/passwd"}).status_code == 422
    assert client.get("/jobs/nope").status_code == 404
    assert client.post("/jobs", json={"prompt": "a ball", "mode": "continue", "video_id": unknown}).status_code == 404


def _free_prefix(ids) -> str:
    """Four hex digits that no id starts with."""
    return next(p for p in (f"{i:04x}" for i in range(1 << 16)) if not any(v.startswith(p) for v in ids))


def test_ids_may_be_unique_prefixes(api):
    client, ids, _ = api
    store = client.app.state.service.store
    video_id = next(iter(ids.values()))
    twins = ["abcd" + "0" * 28, "abcd" + "1" * 28]  # ids sharing a prefix, as a grown library will have
    emb = np.eye(store.dim, dtype=np.float32)[:2]
    try:
        for n, twin in enumerate(twins):
            store.add_video(VideoRecord(twin, f"{twin}.mp4", "ingested", meta={"caption": f"twin {n}"}),
                            [0], [0.0], emb[n:n + 1], windows=VideoWindows([0], [0.0], [0.0], emb[n:n + 1]))
        assert client.get(f"/videos/{video_id[:6]}").json()["video"]["video_id"] == video_id
        assert client.get(f"/media/{video_id[:8]}/thumbnail").status_code == 200
        r = client.post("/search/similar", json={"video_id": video_id[:5].upper(), "top_k": 2})
        assert r.status_code == 200 and video_id not in [s["video"]["video_id"] for s in r.json()]
        for r in (client.get("/videos/abcd"), client.post("/search/similar", json={"video_id": "abcd"}),
                  client.delete("/videos/abcd")):
            assert r.status_code == 409, r.text
            assert [c["video_id"] for c in r.json()["candidates"]] == twins
            assert all(t in r.json()["detail"] for t in [*twins, "twin 0", "twin 1"])
        r = client.post("/jobs", json={"prompt": "a ball", "mode": "animate", "video_id": "abcd", "steps": 1})
        assert r.status_code == 409 and "twin 0" in r.json()["detail"]
        r = client.post("/jobs", json={"prompt": "a ball", "mode": "animate", "video_id": video_id[:7], "steps": 1})
        assert r.status_code == 202 and r.json()["params"]["video_id"] == video_id  # the job keeps the full id
        client.post(f"/jobs/{r.json()['job_id']}/cancel")
        assert client.delete("/videos/abcd1").json()["video"]["video_id"] == twins[1]
        assert client.get("/videos/abcd").json()["video"]["video_id"] == twins[0]  # unique again
        free = _free_prefix([*ids.values(), *twins])
        assert client.get(f"/videos/{free}").status_code == 404
        assert client.post("/search/similar", json={"video_id": free}).status_code == 404
        for bad, why in (("abc", "too short"), ("xyz1", "not a video id"), ("abcd-", "not a video id"),
                         ("a" * 33, "not a video id")):
            r = client.get(f"/videos/{bad}")
            assert r.status_code == 422 and why in r.json()["detail"]
            assert client.post("/search/similar", json={"video_id": bad}).status_code == 422
    finally:
        for twin in twins:
            store.delete_video(twin)


@pytest.mark.parametrize("path", [
    "/media/..%2F..%2Fetc%2Fpasswd/video", "/media/%2e%2e/%2e%2e/etc/passwd", "/media/../../pyproject.toml",
    "/videos/..%2Fmilvus.db", "/media/....//....//etc/passwd/video",
])
def test_path_traversal_reaches_no_file(api, path):
    client, _, _ = api
    r = client.get(path)
    assert r.status_code in (404, 422) and b"root:" not in r.content and b"[project]" not in r.content


def test_catalog_uri_outside_the_library_is_refused(api):
    client, ids, _ = api
    service = client.app.state.service
    assert service.folder.file("../milvus.db") is None
    assert service.folder.file("/etc/passwd") is None
    assert service.folder.file(f"{list(ids.values())[0]}.mp4") is not None


def test_disguised_and_corrupt_uploads_are_refused_and_leave_nothing(api, tmp_path):
    client, _, data = api
    text = fixtures.write_text_as_mp4(tmp_path / "notes.mp4").read_bytes()
    png = fixtures.write_png_as_mp4(tmp_path / "image.mp4").read_bytes()
    truncated = fixtures.write_truncated(tmp_path / "cut.mp4").read_bytes()
    for body, status in ((text, 415), (png, 415), (b"", 415), (truncated, 422)):
        r = client.post("/videos", files={"file": ("clip.mp4", body, "video/mp4")})
        assert r.status_code == status, r.text
        assert r.json()["detail"]
    assert not any((data / "uploads").iterdir())
    _assert_up(client)


def test_oversized_uploads_are_413_with_and_without_content_length(api):
    client, _, data = api
    big = b"\x00" * (UPLOAD_LIMIT_MB * 1024 * 1024 + 1)
    r = client.post("/videos", files={"file": ("big.mp4", big, "video/mp4")})
    assert r.status_code == 413

    def chunks():  # no Content-Length: the body streams in chunks
        for _ in range(UPLOAD_LIMIT_MB * 4 + 1):
            yield b"\x00" * (256 * 1024)

    r = client.post("/videos", content=chunks(), headers={"content-type": "multipart/form-data; boundary=x"})
    assert r.status_code == 413
    assert not any((data / "uploads").iterdir())
    _assert_up(client)


def test_image_uploads_are_checked_by_content(api, tmp_path):
    client, _, _ = api
    r = client.post("/search/image", files={"image": ("q.png", b"GIF89a not really", "image/png")})
    assert r.status_code == 415
    huge = tmp_path / "huge.png"
    Image.new("1", (10_000, 5_000)).save(huge)  # 50 megapixels, beyond the 40 the API decodes
    r = client.post("/search/image", files={"image": ("huge.png", huge.read_bytes(), "image/png")})
    assert r.status_code == 413
    strip = tmp_path / "strip.png"
    Image.new("RGB", (2_000_000, 8)).save(strip)  # within the limit; scaled up whole it would need 12 GB
    for route in ("/search/image", "/duplicates/image"):
        r = client.post(route, files={"image": ("strip.png", strip.read_bytes(), "image/png")})
        assert r.status_code == 200, r.text
    _assert_up(client)


def test_frame_time_outside_the_video_is_422(api):
    client, ids, _ = api
    video_id = list(ids.values())[0]
    assert client.get(f"/media/{video_id}/frame", params={"t": 50}).status_code == 422
    assert client.get(f"/media/{video_id}/frame", params={"t": -1}).status_code == 422


# --- media ---------------------------------------------------------------------------------------


def test_video_file_supports_range_requests(api):
    client, ids, data = api
    video_id = list(ids.values())[1]
    whole = (data / "library" / f"{video_id}.mp4").read_bytes()
    r = client.get(f"/media/{video_id}/video", headers={"Range": "bytes=100-199"})
    assert r.status_code == 206 and r.content == whole[100:200]
    assert r.headers["content-range"] == f"bytes 100-199/{len(whole)}"
    assert client.get(f"/media/{video_id}/video").content == whole


def test_thumbnail_is_a_png(api):
    client, ids, _ = api
    r = client.get(f"/media/{list(ids.values())[0]}/thumbnail")
    assert Image.open(io.BytesIO(r.content)).size == (64, 64)


# --- library -------------------------------------------------------------------------------------


def test_browse_sorts_filters_and_pages(api):
    client, ids, _ = api
    page = client.get("/videos", params={"limit": 4, "sort": "created_at", "order": "asc"}).json()
    assert page["total"] >= len(ids) and len(page["videos"]) == 4
    times = [v["created_at"] for v in page["videos"]]
    assert times == sorted(times)
    rest = client.get("/videos", params={"limit": 4, "offset": 4, "sort": "created_at", "order": "asc"}).json()
    assert not {v["video_id"] for v in page["videos"]} & {v["video_id"] for v in rest["videos"]}
    ingested = client.get("/videos", params={"source": "ingested"}).json()
    generated = client.get("/videos", params={"source": "generated"}).json()
    assert ingested["total"] >= len(ids) and all(v["source"] == "ingested" for v in ingested["videos"])
    assert ingested["total"] + generated["total"] == page["total"]
    assert all(v["source"] == "generated" for v in generated["videos"])
    assert client.get("/videos", params={"sort": "uri; drop"}).status_code == 422


def test_stats_count_by_source_and_storage(api):
    client, ids, _ = api
    stats = client.get("/stats").json()
    assert stats["videos"] == sum(stats["videos_by_source"].values()) >= len(ids)
    assert stats["library_bytes"] > 0 and stats["model"] == model_identity("reelbase-tiny") and stats["recent"]


# --- generation jobs -----------------------------------------------------------------------------


def shipped_config():
    from generator.checkpoint import generator_files
    from generator.dit import load_checkpoint

    return load_checkpoint(generator_files("reelbase-tiny")[0])[1]


def test_text_job_saves_an_indexed_clip_and_streams_events(api):
    client, _, _ = api
    r = client.post("/jobs", json={"prompt": "a red ball moving right on black", "steps": 3, "seed": 5})
    assert r.status_code == 202 and r.json()["status"] in ("queued", "running", "succeeded")
    job_id = r.json()["job_id"]
    with client.stream("GET", f"/jobs/{job_id}/events") as events:
        lines = [line for line in events.iter_lines() if line.startswith("data: ")]
    final = json.loads(lines[-1][6:])
    assert final["status"] == "succeeded" and final["video"]["source"] == "generated"
    assert final["video"]["meta"]["job"]["seed"] == 5 and final["step"] == final["total_steps"] > 3  # with the probes
    assert final["video"]["meta"]["job"]["guidance"] is None  # none asked: the model's own, which the clip records
    assert final["video"]["meta"]["guidance"] == shipped_config().guidance_for("text")
    assert final["video"]["meta"]["job"]["candidates"] is None  # the same for the noises searched for the motion
    assert final["video"]["meta"]["candidates"] == shipped_config().candidates > 1
    hits = client.post("/search/prompts", json={"text": "a red ball moving right", "top_k": 3}).json()
    assert final["video_id"] in [h["video"]["video_id"] for h in hits]


def test_reseed_from_a_hit_records_the_parent(api):
    client, ids, _ = api
    parent = list(ids.values())[0]
    for mode, extra in (("continue", {}), ("animate", {"frames": 8}), ("variation", {"strength": 0.5}),
                        ("inpaint", {"region": {"x": 0.25, "y": 0.25, "width": 0.5, "height": 0.5}}),
                        ("outpaint", {"region": {"x": 0.25, "y": 0.25, "width": 0.5, "height": 0.5}})):
        r = client.post("/reseed", json={"video_id": parent, "t": 1.0, "mode": mode, "steps": 2, **extra})
        assert r.status_code == 202, r.text
        job = _wait(client, r.json()["job_id"])
        assert job["status"] == "succeeded", job
        assert job["video"]["parent_id"] == parent and job["params"]["mode"] == mode
        assert job["video"]["meta"]["guidance"] == shipped_config().guidance_for(mode)
    children = client.get(f"/videos/{parent}").json()["children"]
    assert len(children) >= 5
    for mode in ("continue", "animate", "variation", "inpaint"):  # the clips are 2 s long
        r = client.post("/reseed", json={"video_id": parent, "t": 2.5, "mode": mode, "steps": 2,
                                         "region": {"x": 0, "y": 0, "width": 0.5, "height": 0.5}})
        assert r.status_code == 422 and "t must be within 0..2.000" in r.json()["detail"], (mode, r.text)


def test_reseed_from_a_video_with_a_long_caption_takes_the_caption_as_its_prompt(api, tmp_path):
    client, _, _ = api
    (clip,) = sample_clips(32, 0, 1)
    path = write_mp4(tmp_path / "long.mp4", clip.frames, FPS)
    caption = clip.caption + ", " + "and so on " * 90  # 900-odd characters: kept by ingest (up to 1000)
    path.with_suffix(".json").write_text(json.dumps({"caption": caption}))
    (video_id,) = client.app.state.service.library.ingest([path]).added
    r = client.post("/reseed", json={"video_id": video_id, "mode": "variation", "strength": 0.3, "steps": 1})
    assert r.status_code == 202, r.text
    assert r.json()["params"]["prompt"] == caption[:500]
    assert _wait(client, r.json()["job_id"])["status"] == "succeeded"


def test_a_full_queue_answers_429_with_retry_after_to_jobs_and_reseeds(api, tmp_path, monkeypatch):
    client, ids, _ = api
    assert client.app.state.jobs.max_queued == MAX_QUEUED_JOBS  # the service's queue takes the settings' bound
    release = threading.Event()
    full = JobQueue(lambda params, progress, saving: release.wait(30) and "", tmp_path / "jobs", max_queued=2)
    monkeypatch.setattr(client.app.state, "jobs", full)
    video_id = next(iter(ids.values()))
    try:
        for _ in range(2):
            assert client.post("/jobs", json={"prompt": "a red ball", "steps": 1}).status_code == 202
        for path, body in (("/jobs", {"prompt": "a red ball", "steps": 1}), ("/reseed", {"video_id": video_id})):
            r = client.post(path, json=body)
            assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0, r.text
            assert "queue is full" in r.json()["detail"]
        assert len(list((tmp_path / "jobs").glob("*.json"))) == 2
    finally:
        release.set()
        full.close()


def test_cancel_running_and_finished_jobs(api):
    client, _, _ = api
    job = client.post("/jobs", json={"prompt": "a blue square falling in a forest", "steps": 200,
                                     "frames": 64}).json()
    deadline = time.time() + 30
    while client.get(f"/jobs/{job['job_id']}").json()["status"] == "queued" and time.time() < deadline:
        time.sleep(0.05)
    r = client.post(f"/jobs/{job['job_id']}/cancel")
    assert r.status_code == 200
    assert _wait(client, job["job_id"])["status"] == "cancelled"
    assert client.post(f"/jobs/{job['job_id']}/cancel").status_code == 409


def test_a_failing_job_says_why_and_the_worker_lives_on(api, tmp_path):
    client, _, _ = api
    path = fixtures.write_world_mp4(tmp_path / "doomed.mp4", seed=99)
    video_id = client.post("/videos", files={"file": ("doomed.mp4", path.read_bytes())}).json()["video"]["video_id"]
    (client.app.state.service.folder.videos / f"{video_id}.mp4").unlink()  # the file vanishes under the job
    failed = _wait(client, client.post("/jobs", json={"prompt": "a ball", "mode": "animate", "video_id": video_id,
                                                      "steps": 2}).json()["job_id"])
    assert failed["status"] == "failed" and "missing" in failed["error"]
    ok = _wait(client, client.post("/jobs", json={"prompt": "a ball", "steps": 2}).json()["job_id"])
    assert ok["status"] == "succeeded"
    client.delete(f"/videos/{video_id}")


# --- duplicates, delete and re-index -------------------------------------------------------------


def test_near_duplicates_find_a_brightened_copy_but_not_a_caption_twin(api, tmp_path):
    client, _, _ = api
    original, twin = sample_clips(4242, 0, 1)[0], None
    for candidate in sample_clips(4243, 0, 400):
        if candidate.caption == original.caption:
            twin = candidate
            break
    copy = np.clip(original.frames.astype(np.int16) * 1.2 + 30, 0, 255).astype(np.uint8)
    uploaded = {}
    for name, frames in (("original", original.frames), ("copy", copy), ("twin", twin.frames if twin else None)):
        if frames is None:
            continue
        path = write_mp4(tmp_path / f"{name}.mp4", frames, FPS)
        uploaded[name] = client.post("/videos", files={"file": (path.name, path.read_bytes())}).json()["video"][
            "video_id"]
    hits = client.post("/duplicates/video", json={"video_id": uploaded["original"]}).json()
    found = {h["video"]["video_id"]: h for h in hits}
    assert uploaded["copy"] in found
    assert all(abs(p["t_a"] - p["t_b"]) < 1 / FPS for p in found[uploaded["copy"]]["pairs"])
    assert uploaded.get("twin") not in found
    by_image = client.post("/duplicates/image", files={"image": ("f.png", _png(original.frames[5]), "image/png")})
    assert {uploaded["original"], uploaded["copy"]} <= {h["video"]["video_id"] for h in by_image.json()}
    groups = client.get("/duplicates").json()["groups"]
    group = next(g for g in groups if {uploaded["original"], uploaded["copy"]} <= {v["video_id"] for v in g["videos"]})
    link = group["links"][0]
    pair = link["pairs"][0]  # with the links to show its two frames side by side
    assert pair["frame_a_url"] == f"/media/{link['a']}/frame?t={pair['t_a']:.4f}"
    assert pair["frame_b_url"] == f"/media/{link['b']}/frame?t={pair['t_b']:.4f}"
    assert client.get(pair["frame_b_url"]).headers["content-type"] == "image/png"
    for video_id in uploaded.values():
        client.delete(f"/videos/{video_id}")


def test_delete_removes_file_and_vectors(api, tmp_path):
    client, _, data = api
    path = fixtures.write_world_mp4(tmp_path / "gone.mp4", seed=77)
    video_id = client.post("/videos", files={"file": ("gone.mp4", path.read_bytes())}).json()["video"]["video_id"]
    client.get(f"/media/{video_id}/thumbnail")
    assert client.delete(f"/videos/{video_id}").status_code == 200
    store = client.app.state.service.store
    assert not (data / "library" / f"{video_id}.mp4").exists() and not (data / "thumbs" / f"{video_id}.png").exists()
    assert store.get_video(video_id) is None and video_id not in store.orphan_frame_video_ids()
    assert client.get(f"/videos/{video_id}").status_code == 404


def test_a_second_library_wide_task_is_refused_while_one_runs(api):
    """A client that timed out and asks again does not start a second scan beside the first."""
    client, _, _ = api
    svc = client.app.state.service
    started, release = threading.Event(), threading.Event()
    finder = svc.duplicates
    candidates = finder._candidates_of_all  # a scan's first step

    def slow_candidates(video_ids):
        started.set()
        release.wait(60)
        return candidates(video_ids)

    finder._candidates_of_all = slow_candidates
    try:
        first = threading.Thread(target=client.get, args=("/duplicates",))
        first.start()
        assert started.wait(60)
        for method, path in (("get", "/duplicates"), ("post", "/library/reindex")):
            r = getattr(client, method)(path)
            assert r.status_code == 409 and "already running" in r.json()["detail"], r.text
    finally:
        release.set()
        first.join(60)
        del finder._candidates_of_all
    assert client.get("/duplicates").status_code == 200


def test_reindex_keeps_every_record(api):
    client, _, _ = api
    before = client.get("/stats").json()
    result = client.post("/library/reindex").json()
    assert result["reindexed"] == before["videos"] and not result["failed"]
    after = client.get("/stats").json()
    assert (after["videos"], after["frames"], after["prompts"]) == (before["videos"], before["frames"],
                                                                    before["prompts"])


# --- API key -------------------------------------------------------------------------------------


def test_api_key_guards_every_route_but_health(tmp_path):
    settings = Settings(data_dir=tmp_path / "data", device="cpu", api_key="sesame")
    with TestClient(create_app(settings)) as client:
        assert client.get("/health").status_code == 200
        for method, path in (("get", "/stats"), ("get", "/videos"), ("get", "/jobs"), ("get", "/duplicates")):
            assert getattr(client, method)(path).status_code == 401
        assert client.post("/search/text", json={"text": "a ball"}).status_code == 401
        assert client.get("/stats", headers={"X-API-Key": "wrong"}).status_code == 401
        assert client.get("/stats", headers={"X-API-Key": "sesame"}).status_code == 200
        assert client.get("/videos", params={"api_key": "sesame"}).status_code == 401  # no key in URLs


def test_a_trailing_slash_is_not_redirected_before_the_key_check_nor_to_the_host_header(tmp_path):
    settings = Settings(data_dir=tmp_path / "data", device="cpu", api_key="sesame")
    with TestClient(create_app(settings)) as client:
        for key in ({}, {"X-API-Key": "sesame"}):
            for path in ("/stats/", "/videos/", "/jobs/", "/media/abcd/video/"):
                r = client.get(path, headers={"Host": "evil.example", **key}, follow_redirects=False)
                assert r.status_code in (401, 404) and "location" not in r.headers, (path, r.status_code)
                assert "evil.example" not in r.text


def test_media_links_in_responses_are_signed_and_play_without_the_key(tmp_path):
    """With a key, the API signs every media link it returns; a browser opens them without the key until they
    expire, and each opens the one thing it names."""
    settings = Settings(data_dir=tmp_path / "data", device="cpu", api_key="sesame")
    key = {"X-API-Key": "sesame"}
    with TestClient(create_app(settings)) as client:
        ids = []
        for i, clip in enumerate(sample_clips(33, 0, 2)):
            path = write_mp4(tmp_path / f"c{i}.mp4", clip.frames, FPS)
            r = client.post("/videos", files={"file": (path.name, path.read_bytes())}, headers=key)
            ids.append(r.json()["video"]["video_id"])
        hit = client.post("/search/text", json={"text": "a ball", "top_k": 2}, headers=key).json()["hits"][0]
        video_id, frame = hit["video"]["video_id"], hit["frames"][0]
        local = frame["frame_url"]
        assert local.startswith(f"/media/{video_id}/frame?t={frame['t']:.4f}&expires=") and "sesame" not in local
        for link in (local, hit["thumbnail_url"], hit["video"]["links"]["thumbnail"]):
            r = client.get(link)
            assert r.status_code == 200 and r.headers["content-type"] == "image/png"
        video = client.get(hit["media_url"].partition("#")[0], headers={"Range": "bytes=0-99"})
        assert video.status_code == 206 and hit["media_url"].endswith(f"#t={hit['best_t']:.3f}")
        assert client.get(hit["video"]["links"]["video"], headers={"Range": "bytes=0-99"}).status_code == 206
        other = ids[1] if video_id == ids[0] else ids[0]
        assert client.get(local.replace(video_id, other)).status_code == 401  # signed for another video
        t = f"t={frame['t']:.4f}"
        assert client.get(local.replace(t, "t=99.0000")).status_code == 401  # for another frame
        assert client.get(local.replace(f"{t}&", "")).status_code == 401
        assert client.get(f"{local}&t=1.5").status_code == 401
        expires, sig = (local.split(f"{name}=")[1].split("&")[0] for name in ("expires", "sig"))
        assert client.get(f"{local}&expires={expires}&sig={sig}").status_code == 401  # the signature given twice
        old = media_links.signed_query("sesame", f"/media/{ids[0]}/thumbnail", now=time.time() - 3 * 3600)
        assert client.get(f"/media/{ids[0]}/thumbnail", params=old).status_code == 401  # expired
        forged = media_links.signed_query("guess", f"/media/{ids[0]}/thumbnail")
        assert client.get(f"/media/{ids[0]}/thumbnail", params=forged).status_code == 401
        assert client.get("/stats", params=media_links.signed_query("sesame", "/stats")).status_code == 401
        for malformed in ({"expires": "²", "sig": "x"}, {"expires": "9" * 5000, "sig": "x"},
                          {"expires": old["expires"], "sig": "é"}):
            assert client.get(f"/media/{ids[0]}/thumbnail", params=malformed).status_code == 401
