"""Fuzz the API from its own OpenAPI schema with schemathesis: whatever it sends, no 500s.

The app runs in a real uvicorn server on loopback, over a small library on Milvus Lite.
"""

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from generator.video import write_mp4
from generator.world import FPS, sample_clips
from search.api import create_app
from search.settings import Settings
from tests import fixtures


@pytest.fixture(scope="module")
def server_url(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz")
    app = create_app(Settings(data_dir=root / "data", device="cpu", max_upload_mb=2))
    with fixtures.serving(app) as url:
        for i, clip in enumerate(sample_clips(5, 0, 2)):
            app.state.service.library.ingest([write_mp4(root / f"clip{i}.mp4", clip.frames, FPS)])
        yield url


@pytest.fixture(scope="module")
def api_schema(server_url):
    return schemathesis.openapi.from_url(f"{server_url}/openapi.json")


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case, server_url):
    if case.path in ("/jobs", "/reseed") and isinstance(case.body, dict):  # keep the worker's queue short
        for key, most in (("steps", 3), ("frames", 16)):
            value = case.body.get(key)
            if isinstance(value, int) and not isinstance(value, bool):
                case.body[key] = min(value, most)
    response = case.call(base_url=server_url, timeout=120)
    assert response.status_code < 500, f"{case.method} {case.formatted_path}: {response.status_code} {response.text}"
