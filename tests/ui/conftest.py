"""A real API on loopback (built-in models, Milvus Lite in a temporary folder) with a small library."""

import os

import numpy as np
import pytest

from generator.video import write_mp4
from generator.world import FPS, sample_clips
from search.api import create_app
from search.params import GenerationParams
from search.settings import Settings
from tests import fixtures


@pytest.fixture(scope="session")
def api_url(tmp_path_factory):
    """The API's address; the library holds 6 world clips, a brightened copy of the first, and a generated clip."""
    root = tmp_path_factory.mktemp("ui-api")
    app = create_app(Settings(data_dir=root / "data", device="cpu"))
    with fixtures.serving(app) as url:
        service = app.state.service
        clips = sample_clips(12, 0, 6)
        paths = [write_mp4(root / f"clip{i}.mp4", c.frames, FPS) for i, c in enumerate(clips)]
        copy = np.clip(clips[0].frames.astype(np.int16) + 40, 0, 255).astype(np.uint8)
        paths.append(write_mp4(root / "copy-of-clip0.mp4", copy, FPS))
        service.library.ingest(paths)
        service.generation.generate(GenerationParams(prompt="a red ball moving right on black", steps=2))
        previous = os.environ.get("REELBASE_API_URL")
        os.environ["REELBASE_API_URL"] = url
        yield url
        if previous is None:
            os.environ.pop("REELBASE_API_URL", None)
        else:
            os.environ["REELBASE_API_URL"] = previous
