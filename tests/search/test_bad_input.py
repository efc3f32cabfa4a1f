"""Bad input through the API and the CLI: a clear 4xx or one-line error, nothing kept, the service up.

Complements `test_api.py` (disguised and oversized uploads, invalid search bodies): here every
path-like parameter of every route meets traversal attempts, uploads declare absurd sizes, and
every generation parameter gets absurd values.
"""

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from search.api import create_app
from search.settings import Settings
from tests import fixtures

ROOT = Path(__file__).resolve().parents[2]
TRAVERSALS = ["..%2F..%2Fetc%2Fpasswd", "%2e%2e%2f%2e%2e%2fpyproject.toml", "....%2F%2F....%2F%2Fetc%2Fpasswd",
              "%2Fetc%2Fpasswd", "..%5C..%5Cpyproject.toml", "%00", "a" * 5000]
LEAKS = (b"root:", b"[project]")


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    """(client, data folder, a library video id) with one world clip uploaded."""
    root = tmp_path_factory.mktemp("bad-input")
    settings = Settings(data_dir=root / "data", device="cpu", max_upload_mb=4)
    with TestClient(create_app(settings)) as client:
        clip = fixtures.write_world_mp4(root / "clip.mp4")
        r = client.post("/videos", files={"file": ("clip.mp4", clip.read_bytes(), "video/mp4")})
        assert r.status_code == 201, r.text
        yield client, settings.data_dir, r.json()["video"]["video_id"]


def assert_still_serving(client, data: Path, videos: int = 1) -> None:
    assert client.get("/health").json()["status"] == "ok"
    assert client.get("/stats").json()["videos"] == videos
    assert not any((data / "uploads").iterdir())
    assert len(list((data / "library").iterdir())) == videos


def path_routes(client) -> list[tuple[str, str]]:
    """(method, path template) of every route with a path parameter, from the OpenAPI schema."""
    return [(method.upper(), path) for path, ops in client.app.openapi()["paths"].items() if "{" in path
            for method in ops]


def body_fields_named(client, name: str) -> list[tuple[str, str]]:
    """(path, schema) of every JSON-bodied POST whose request model has a field `name`."""
    spec = client.app.openapi()
    found = []
    for path, ops in spec["paths"].items():
        ref = (ops.get("post", {}).get("requestBody", {}).get("content", {}).get("application/json", {})
               .get("schema", {}).get("$ref"))
        if ref and name in spec["components"]["schemas"][ref.rsplit("/", 1)[1]].get("properties", {}):
            found.append((path, ref))
    return found


def test_traversal_in_every_path_parameter_reaches_no_file(api):
    client, data, _ = api
    routes = path_routes(client)
    assert {"/videos/{video_id}", "/media/{video_id}/video", "/jobs/{job_id}"} <= {p for _, p in routes}
    for method, template in routes:
        for attack in TRAVERSALS:
            url = re.sub(r"\{\w+\}", attack, template)
            r = client.request(method, url)
            assert r.status_code in (404, 405, 422), (method, url, r.status_code)
            assert not any(leak in r.content for leak in LEAKS), url
    assert_still_serving(client, data)


def test_traversal_in_every_video_id_field_is_422(api):
    client, data, video_id = api
    routes = body_fields_named(client, "video_id")
    assert {"/search/similar", "/search/frame", "/jobs", "/reseed", "/duplicates/video"} <= {p for p, _ in routes}
    for path, _ in routes:
        for attack in ("../../etc/passwd", "/etc/passwd", f"{video_id}/../../x", video_id + "\x00"):
            body = {"video_id": attack, "prompt": "a red ball", "text": "a ball", "t": 0, "mode": "continue"}
            r = client.post(path, json=body)
            assert r.status_code == 422, (path, attack, r.text)
    assert_still_serving(client, data)


def test_an_upload_named_with_a_path_lands_only_in_the_library(api, tmp_path):
    client, data, _ = api
    clip = fixtures.write_world_mp4(tmp_path / "x.mp4", seed=5)
    name = "../../../../" + str(tmp_path / "escaped.mp4").lstrip("/")
    r = client.post("/videos", files={"file": (name, clip.read_bytes(), "video/mp4")})
    assert r.status_code == 201, r.text
    assert not (tmp_path / "escaped.mp4").exists()
    meta = r.json()["video"]["meta"]
    assert meta["original_name"] == "escaped.mp4" and "original_path" not in meta  # no server temp path
    video_id = r.json()["video"]["video_id"]
    assert (data / "library" / f"{video_id}.mp4").is_file()
    assert client.delete(f"/videos/{video_id}").status_code == 200
    assert_still_serving(client, data)


@pytest.mark.parametrize("writer, reason", [
    (fixtures.write_huge_resolution, "resolution"),
    (fixtures.write_huge_frame_count, "frames"),
    (fixtures.write_truncated, "truncated"),
    (fixtures.write_zero_byte, "video"),
    (fixtures.write_text_as_mp4, "video"),
    (fixtures.write_random_bytes, "video"),
])
def test_videos_that_lie_about_themselves_are_refused_with_the_reason(api, tmp_path, writer, reason):
    client, data, _ = api
    body = writer(tmp_path / "clip.mp4").read_bytes()
    r = client.post("/videos", files={"file": ("clip.mp4", body, "video/mp4")})
    assert r.status_code in (415, 422), r.text
    assert reason in r.json()["detail"]
    assert_still_serving(client, data)


ABSURD_JOBS = [
    {"steps": 0}, {"steps": 10**9}, {"frames": 1}, {"frames": 10**6}, {"guidance": -1}, {"guidance": 1e300},
    {"guidance": math.nan}, {"guidance": math.inf}, {"candidates": 0}, {"candidates": 99},
    {"seed": -1}, {"seed": 2**63}, {"prompt": ""},
    {"prompt": "x" * 100_000}, {"negative_prompt": "x" * 100_000}, {"mode": "explode"}, {"steps": "many"},
    {"mode": "variation", "strength": 2}, {"mode": "animate", "t": -1}, {"mode": "animate", "t": math.inf},
    {"mode": "inpaint", "region": {"x": 2, "y": 0, "width": 0.5, "height": 0.5}},
    {"mode": "inpaint", "region": {"x": 0, "y": 0, "width": 0, "height": 0.5}},
    {"mode": "outpaint", "region": {"x": 0.9, "y": 0.9, "width": 0.5, "height": 0.5}},
    {"mode": "continue"}, {"unknown": 1},
]


@pytest.mark.parametrize("change", ABSURD_JOBS, ids=[str(sorted(c))[:40] for c in ABSURD_JOBS])
def test_absurd_generation_parameters_are_422(api, change):
    client, data, video_id = api
    body = {"prompt": "a red ball moving right on black", "steps": 2, **change}
    if change.get("mode") not in (None, "text", "explode", "continue"):
        body["video_id"] = video_id
    r = client.post("/jobs", content=_json(body), headers={"content-type": "application/json"})
    assert r.status_code == 422, (change, r.text)
    assert client.get("/health").status_code == 200


@pytest.mark.parametrize("request_", [
    ("POST", "/search/text", {"text": "a ball", "top_k": 10**9}),
    ("POST", "/search/text", {"text": "a ball", "offset": 10**12}),
    ("POST", "/search/text", {"text": "a ball", "filters": {"min_duration": -5}}),
    ("POST", "/search/text", {"text": "a ball", "filters": {"created_after": math.nan}}),
    ("POST", "/search/frame", {"video_id": "0" * 32, "t": math.inf}),
    ("POST", "/duplicates/video", {"video_id": "0" * 32, "threshold": 5}),
    ("GET", "/videos?limit=1000000000", None),
    ("GET", "/videos?sort=__class__", None),
    ("GET", "/media/{id}/frame?t=nan", None),
    ("GET", "/media/{id}/frame?t=1e308", None),
])
def test_absurd_query_parameters_are_422(api, request_):
    client, _, video_id = api
    method, url, body = request_
    r = client.request(method, url.replace("{id}", video_id), content=None if body is None else _json(body),
                       headers={"content-type": "application/json"})
    assert r.status_code == 422, (url, body, r.text)
    assert client.get("/health").status_code == 200


NON_FINITE = ["inf", "-inf", "Infinity", "-Infinity", "1e309", "nan", "NaN"]
FLOAT_FILTERS = ["created_after", "created_before", "min_duration", "max_duration"]


@pytest.mark.parametrize("value", NON_FINITE)
@pytest.mark.parametrize("name", FLOAT_FILTERS)
def test_non_finite_filters_are_422_in_a_query_string(api, name, value):
    client, data, _ = api
    r = client.get(f"/videos?{name}={value}")
    assert r.status_code == 422 and name in r.text, r.text
    r = client.post(f"/search/image?{name}={value}", files={"image": ("q.png", _png(), "image/png")})
    assert r.status_code == 422 and name in r.text, r.text
    assert_still_serving(client, data)


@pytest.mark.parametrize("value", ["1e999", "-1e999", "Infinity", "NaN"])
@pytest.mark.parametrize("name", FLOAT_FILTERS)
def test_non_finite_filters_are_422_in_json(api, name, value):
    client, data, _ = api
    body = f'{{"text": "a ball", "filters": {{"{name}": {value}}}}}'
    r = client.post("/search/text", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    assert_still_serving(client, data)


@pytest.mark.parametrize("model", ["é", "ünï cödé/@+", "🎥 clip", 'a"b', "a'b", "back\\slash", "new\nline",
                                   "tab\tx", "ctl\x01\x7f", "\u2028", 'x" or 1==1 or "', "a" * 200])
def test_any_unicode_model_filter_is_answered(api, model):
    client, data, _ = api
    r = client.get("/videos", params={"model": model})
    assert r.status_code == 200 and r.json()["total"] == 0, r.text  # the one video here was ingested: no model
    r = client.post("/search/text", json={"text": "a ball", "filters": {"model": model}})
    assert r.status_code == 200 and r.json()["hits"] == [], r.text
    assert_still_serving(client, data)


def test_a_lone_surrogate_model_filter_is_422(api):
    client, data, _ = api
    r = client.post("/search/text", content=b'{"text": "a ball", "filters": {"model": "\\ud800x"}}',
                    headers={"content-type": "application/json"})
    assert r.status_code == 422 and "surrogate" in r.text, r.text
    assert_still_serving(client, data)


SURROGATES = [
    ("/jobs", '{"prompt": "a red \\ud800 ball"}', "prompt"),
    ("/jobs", '{"prompt": "a red ball", "negative_prompt": "\\udfff"}', "negative_prompt"),
    ("/reseed", '{"video_id": "{id}", "prompt": "\\ud800"}', "prompt"),
    ("/search/text", '{"text": "\\ud800"}', "text"),
    ("/search/prompts", '{"text": "a ball \\udc00"}', "text"),
]


@pytest.mark.parametrize("path, body, field", SURROGATES, ids=[f"{p}-{f}" for p, _, f in SURROGATES])
def test_a_lone_surrogate_in_any_text_is_a_422_naming_the_field(api, path, body, field):
    client, data, video_id = api
    r = client.post(path, content=body.replace("{id}", video_id).encode(), headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    assert [e["loc"] for e in r.json()["detail"]] == [["body", field]], r.text
    assert "codec" not in r.text and len(r.content) < 500, r.text
    assert_still_serving(client, data)


LONG = "a" * 100_000
LONG_IN_URL = "a" * 60_000  # httpx sends URLs of up to 64 KiB
LONG_INPUT = [
    ("GET", f"/jobs/{LONG_IN_URL}", None),
    ("POST", f"/jobs/{LONG_IN_URL}/cancel", None),
    ("GET", f"/jobs/{LONG_IN_URL}/events", None),
    ("GET", f"/videos/{LONG_IN_URL}", None),
    ("GET", f"/media/{LONG_IN_URL}/frame", None),
    ("GET", f"/videos?sort={LONG_IN_URL}", None),
    ("GET", f"/videos?model={LONG_IN_URL}", None),
    ("POST", "/jobs", {"prompt": LONG}),
    ("POST", "/jobs", {"prompt": "a red ball", LONG: 1}),
    ("POST", "/jobs", {"prompt": "a red ball", "mode": LONG}),
    ("POST", "/search/text", {"text": LONG}),
    ("POST", "/search/similar", {"video_id": LONG}),
    ("POST", "/reseed", {"video_id": LONG}),
]


@pytest.mark.parametrize("method, url, body", LONG_INPUT,
                         ids=[f"{m} {u[:20]} {sorted(b or {})[-1][:12] if b else ''}" for m, u, b in LONG_INPUT])
def test_errors_say_what_is_wrong_without_echoing_long_input(api, method, url, body):
    client, data, _ = api
    r = client.request(method, url, json=body)
    assert r.status_code in (404, 422), (r.status_code, r.text[:200])
    assert len(r.content) < 1000 and "a" * 100 not in r.text, r.text[:200]
    assert_still_serving(client, data)


def test_an_upload_with_a_long_name_is_refused_without_echoing_it(api, tmp_path):
    client, data, _ = api
    cut = fixtures.write_truncated(tmp_path / "cut.mp4").read_bytes()
    r = client.post("/videos", files={"file": ("a" * 4000 + ".mp4", cut, "video/mp4")})  # multipart headers: 4 KiB
    assert r.status_code == 422 and "truncated" in r.text, r.text[:200]
    assert len(r.content) < 1000 and "a" * 100 not in r.text, r.text[:200]
    assert_still_serving(client, data)


def _png() -> bytes:
    import io

    buf = io.BytesIO()
    Image.new("RGB", (32, 32), (200, 30, 30)).save(buf, format="PNG")
    return buf.getvalue()


def _json(body: dict) -> bytes:
    """JSON as a careless client writes it: NaN and Infinity included."""
    return json.dumps(body, allow_nan=True).encode()


# --- the CLI -------------------------------------------------------------------------------------


def reelbase(*args, data: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "REELBASE_DATA_DIR": str(data), "REELBASE_DEVICE": "cpu"}
    return subprocess.run([sys.executable, "-m", "search.cli", *args], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


def test_cli_ingest_lists_each_bad_file_with_its_reason_and_keeps_the_good_one(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for name, writer in [("empty.mp4", fixtures.write_zero_byte), ("notes.mp4", fixtures.write_text_as_mp4),
                         ("cut.mp4", fixtures.write_truncated), ("huge.mp4", fixtures.write_huge_resolution),
                         ("long.mp4", fixtures.write_huge_frame_count), ("good.mp4", fixtures.write_world_mp4)]:
        writer(folder / name)
    result = reelbase("ingest", str(folder), "--json", data=tmp_path / "data")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    reasons = {Path(f["path"]).name: f["reason"] for f in report["failed"]}
    assert len(report["added"]) == 1 and set(reasons) == {"empty.mp4", "notes.mp4", "cut.mp4", "huge.mp4", "long.mp4"}
    assert "resolution" in reasons["huge.mp4"] and "frames" in reasons["long.mp4"]
    assert [p.suffix for p in (tmp_path / "data" / "library").iterdir()] == [".mp4"]


@pytest.mark.parametrize("args, message", [
    (["search", "a ball", "--top-k", "0"], "must be within 1..1000"),
    (["search", "a ball", "--offset", "-3"], "must be within 0..1000000"),
    (["search", "a ball", "--min-duration", "-1"], "min_duration: Input should be greater than or equal to 0"),
    (["search", "--image", "{notes}"], "is not a readable image"),
    (["dups", "--image", "{bomb}"], "the limit for a query image is 16777216"),
    (["search", "a ball", "--prompts", "--source", "ingested"], "it takes --top-k only"),
    (["similar", "../../etc/passwd"], "'../../etc/passwd' is not a video id"),
    (["dups", "--threshold", "5"], "--threshold must be within 0..1"),
    (["generate", "a red ball", "--steps", "0", "--out", "{out}"], "steps: Input should be greater than or equal to 1"),
    (["generate", "a red ball", "--frames", "100000", "--out", "{out}"], "frames: Input should be less than or equal"),
    (["generate", "a red ball", "--guidance", "nan", "--out", "{out}"], "guidance: Input should be"),
    (["generate", "a red ball", "--candidates", "0", "--out", "{out}"], "candidates: Input should be"),
    (["generate", "", "--out", "{out}"], "prompt: String should have at least 1 character"),  # as the API has it
    (["generate", "a red ball", "--seed", "-1", "--out", "{out}"], "seed: Input should be greater than or equal to 0"),
    (["generate", "a red ball", "--steps", "201", "--out", "{out}"], "steps: Input should be less than or equal"),
    (["generate", "", "--library"], "prompt: String should have at least 1 character"),
    (["generate", "a red ball", "--seed", "-1", "--library"], "seed: Input should be greater than or equal to 0"),
    (["ingest", "{missing}"], "no such file or folder"),
])
def test_cli_absurd_arguments_are_one_clear_line(tmp_path, args, message):
    notes = fixtures.write_text_as_mp4(tmp_path / "notes.txt")
    bomb = tmp_path / "bomb.png"
    if "{bomb}" in args:
        Image.new("1", (20_000, 10_000)).save(bomb)  # 200 megapixels, beyond PIL's own bomb limit
    paths = {"notes": str(notes), "out": str(tmp_path / "clip.mp4"), "missing": str(tmp_path / "nowhere"),
             "bomb": str(bomb)}
    result = reelbase(*[a.format(**paths) for a in args], data=tmp_path / "data")
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "clip.mp4").exists()


def test_cli_generate_makes_the_output_folder(tmp_path):
    out = tmp_path / "new" / "folder" / "clip.mp4"
    result = reelbase("generate", "a red ball moving right on black", "--steps", "2", "--out", str(out),
                      data=tmp_path / "data")
    assert result.returncode == 0, result.stderr
    assert out.is_file() and out.with_suffix(".json").is_file()
