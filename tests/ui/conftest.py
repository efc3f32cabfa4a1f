"""A real API on loopback (built-in models, Milvus Lite in a temporary folder) with a small library."""

import os
from contextlib import contextmanager

import numpy as np
import pytest

from generator.params import GenerationParams
from generator.video import write_mp4
from generator.world import FPS, sample_clips
from search.api import create_app
from search.settings import Settings
from tests import fixtures

API_KEY = "sesame"  # the API needs a key, so the pages show media by the links it signs


@contextmanager
def environment(**values: str):
    """Environment variables set for the UI (AppTest and `streamlit run` read them), restored after."""
    previous = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture(scope="session")
def api_server(tmp_path_factory):
    """A served API with a key; the library holds 6 world clips, a brightened copy of the first, and a generated
    clip."""
    root = tmp_path_factory.mktemp("ui-api")
    app = create_app(Settings(data_dir=root / "data", device="cpu", api_key=API_KEY))
    with fixtures.serving(app) as url:
        service = app.state.service
        clips = sample_clips(12, 0, 6)
        paths = [write_mp4(root / f"clip{i}.mp4", c.frames, FPS) for i, c in enumerate(clips)]
        copy = np.clip(clips[0].frames.astype(np.int16) + 40, 0, 255).astype(np.uint8)
        paths.append(write_mp4(root / "copy-of-clip0.mp4", copy, FPS))
        service.library.ingest(paths)
        service.generation.generate(GenerationParams(prompt="a red ball moving right on black", steps=2))
        yield url


@pytest.fixture
def api_url(api_server):
    """The API's address, with it and its key in the environment the UI reads for this test only (so an API that
    a later test makes does not take the key)."""
    with environment(REELBASE_API_URL=api_server, REELBASE_API_KEY=API_KEY):
        yield api_server
