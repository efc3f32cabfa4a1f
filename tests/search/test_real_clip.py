"""A real open_clip architecture from a weights file (`ARCH:/path`) end to end on real footage.

The weights are random (the plumbing is under test, not the model's knowledge): ViT-S-32-alt,
one of open_clip's real architectures, small enough for the CPU. Real footage of many sizes,
codecs and containers is ingested; text, image and duplicate search run on it.
"""

from pathlib import Path

import av
import open_clip
import pytest
from safetensors.torch import save_file

from indexer.models import model_identity
from search.service import Reelbase
from search.settings import Settings
from tests.footage import write_corpus

ARCH = "ViT-S-32-alt"


def reencode(source: Path, target: Path, width: int, height: int) -> Path:
    """A copy of `source` as people make them: another codec and container, smaller."""
    with av.open(str(source)) as src, av.open(str(target), "w") as out:
        stream = out.add_stream("libvpx-vp9", rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for frame in src.decode(video=0):
            out.mux(stream.encode(frame.reformat(width, height, "yuv420p")))
        out.mux(stream.encode())
    return target


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    """(service, {file name: video id}, footage folder) with the corpus and a re-encoded copy ingested."""
    root = tmp_path_factory.mktemp("real-clip")
    weights = root / f"{ARCH}.safetensors"
    model = open_clip.create_model(ARCH)
    save_file({k: v.detach().half().contiguous() for k, v in model.state_dict().items()}, str(weights))
    footage = root / "footage"
    files = write_corpus(footage, long=False)
    original = footage / "trailer_640x272.mp4"
    files.append(reencode(original, footage / "trailer_copy_320x136.webm", 320, 136))
    service = Reelbase(Settings(data_dir=root / "data", clip_model=f"{ARCH}:{weights}", device="cpu"))
    report = service.library.ingest([footage])
    assert not report.failed and not report.skipped, report.summary()
    assert len(report.added) == len(files)
    ids = {service.library.get(v).meta["original_name"]: v for v in report.added}
    yield service, ids, weights
    service.close()


def test_the_library_is_written_by_the_file_weights_of_a_real_architecture(library):
    service, ids, weights = library
    assert service.encoder.name == model_identity(f"{ARCH}:{weights}")
    assert service.encoder.dim == open_clip.get_model_config(ARCH)["embed_dim"]
    assert service.stats()["videos"] == len(ids)


def test_text_search_ranks_every_video_and_names_no_unknown_words(library):
    service, ids, _ = library
    hits = service.queries.text("a rabbit in a meadow", top_k=len(ids) + 5)
    assert sorted(h.video.video_id for h in hits) == sorted(ids.values())
    assert all(0 <= f.t <= h.video.duration_s + 0.1 for h in hits for f in h.frames)
    assert service.encoder.unknown_words("a rabbit in a meadow") == []  # a real CLIP reads all English
    assert service.encoder.vocabulary_notice("a rabbit in a meadow") is None


def test_image_search_finds_the_video_of_the_frame(library):
    service, ids, _ = library
    video_id = ids["portrait_360x640.mov"]
    frame, _ = service.library.frame_at(video_id, 0.5)
    assert frame.shape[:2] == (640, 360)
    hits = service.queries.image(frame, top_k=3)
    assert hits[0].video.video_id == video_id


def test_a_reencoded_copy_is_a_duplicate_and_other_footage_is_not(library):
    service, ids, _ = library
    original, copy = ids["trailer_640x272.mp4"], ids["trailer_copy_320x136.webm"]
    assert [h.video.video_id for h in service.duplicates.of_video(original)] == [copy]
    groups = service.duplicates.groups()
    assert [sorted(v.video_id for v in g.videos) for g in groups] == [sorted([original, copy])]
    assert groups[0].links and all(0 < link["score"] <= 1 for link in groups[0].links)
