"""Motion search with the built-in models: clips that look alike and move differently are told apart by a text,
through the whole service (ingest writes windows; text search ranks videos by their best window)."""

import pytest

from generator import world
from generator.video import write_mp4
from search.service import Reelbase
from search.settings import Settings

MOTIONS = ("moving left", "moving right", "moving up", "moving down", "falling")


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    """Red balls on black, alike but for their motion, each starting mid-frame: one clip per motion."""
    tmp = tmp_path_factory.mktemp("motion")
    specs = [world.ClipSpec("on black", (world.ObjectSpec("ball", "red", 5, motion),),
                            (0.0 if motion == "falling" else 2.2,), ((32.0, 20.0 if motion == "falling" else 32.0),))
             for motion in MOTIONS]
    paths = [write_mp4(tmp / f"{n}.mp4", clip.frames, world.FPS) for n, clip in enumerate(world.make_clips(specs))]
    service = Reelbase(Settings(data_dir=tmp / "data", device="cpu"))
    added = service.library.ingest(paths).added
    yield service, {v: MOTIONS[int(service.library.get(v).meta["original_name"].split(".")[0])] for v in added}
    service.close()


@pytest.mark.parametrize("motion", MOTIONS)
def test_a_text_finds_the_clip_that_moves_as_it_says(library, motion):
    service, motion_of = library
    assert service.queries.matches_windows
    hits = service.queries.text(f"a red ball {motion} on black", top_k=len(MOTIONS))
    assert motion_of[hits[0].video.video_id] == motion, [(motion_of[h.video.video_id], h.score) for h in hits]
