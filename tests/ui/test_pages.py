"""Every page of the UI, run by Streamlit's AppTest against the real API."""

from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from streamlit.testing.v1 import AppTest

from tests.fixtures import free_port
from ui.client import Api

APP = str(Path(__file__).parents[2] / "ui" / "app.py")


def app(page: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    if page:
        at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def labelled(elements, label: str):
    return next(e for e in elements if e.label == label)


def test_search_by_text_shows_clips_and_more_like_this(api_url):
    at = app()
    assert at.title[0].value == "Search"
    at.text_input(key="query").input("a red ball moving right on black").run()
    assert not at.exception, at.exception
    scores = [m.value for m in at.markdown if m.value.startswith("**")]
    assert scores, "no hits shown"
    assert len(at.get("video")) == len(scores)
    more = [b for b in at.button if b.label == "More like this"]
    more[0].click().run()
    assert any(s.value.startswith("More like") for s in at.subheader)
    assert [m for m in at.markdown if m.value.startswith("**")]


def test_search_warns_about_words_the_model_does_not_know(api_url):
    at = app()
    at.text_input(key="query").input("a rabbit in a meadow").run()
    assert not at.exception, at.exception
    assert len(at.warning) == 1 and "'rabbit', 'meadow'" in at.warning[0].value
    assert "REELBASE_CLIP_MODEL=ARCH:/path/to/weights" in at.warning[0].value
    assert [m for m in at.markdown if m.value.startswith("**")], "the hits are still shown"
    at.text_input(key="query").input("a red ball at sunset").run()
    assert not at.warning


def test_search_reseed_starts_a_job(api_url):
    at = app()
    at.text_input(key="query").input("a ball").run()
    start = next(b for b in at.button if b.label == "Start")
    at.radio(key=start.key.replace("rs_", "rm_")).set_value("animate").run()
    next(b for b in at.button if b.key == start.key).click().run()
    assert not at.exception, at.exception
    assert "queued" in at.success[0].value


def test_search_filters_and_pages(api_url):
    at = app()
    at.selectbox(key="f_source").set_value("generated").run()
    at.text_input(key="query").input("a ball").run()
    videos = [m.value for m in at.caption if m.value.startswith(("generated", "ingested"))]
    assert videos and all(v.startswith("generated") for v in videos)
    at.number_input(key="page").set_value(50).run()
    assert "No matches" in at.info[0].value


def test_generate_shows_progress_and_the_clip(api_url):
    at = app("views/generate.py")
    assert at.title[0].value == "Generate"
    labelled(at.text_input, "Prompt").input("a blue square falling in a forest")
    labelled(at.slider, "Steps").set_value(2)
    labelled(at.slider, "Frames").set_value(8)
    labelled(at.button, "Generate").click().run()
    assert not at.exception, at.exception
    assert at.success and at.success[0].value.startswith("Done: saved into the library")
    assert at.get("video")
    history = at.dataframe[0].value
    assert "succeeded" in set(history["status"])
    assert labelled(at.select_slider, "Guidance").value == "model's own"
    assert labelled(at.select_slider, "Candidates").value == "model's own"
    job = Api().job(at.session_state.watch_job)  # asked for none: sampled with the model's own for text
    assert job["params"]["guidance"] is None and job["video"]["meta"]["guidance"] == 4.0
    assert job["params"]["candidates"] is None  # a fall, which names no way: the model's wayless candidates
    assert job["video"]["meta"]["candidates"] == 4


def test_duplicates_page_finds_the_copy(api_url):
    at = app("views/duplicates.py")
    labelled(at.button, "Scan the library").click().run()
    assert not at.exception, at.exception
    assert any("of near-duplicate videos" in c.value for c in at.caption)
    groups = [e for e in at.expander if e.label.startswith("Group")]
    assert groups and "copy-of-clip0.mp4" in groups[0].label
    assert any("score" in m.value for m in at.markdown)
    frames = [(url, caption) for image in at.image for url, caption in zip(image.value, image.captions, strict=True)]
    assert frames and len(frames) % 2 == 0, "the matching frames, side by side"
    for url, caption in frames:  # the links the API signed, at its address: the browser needs no key
        video_id, _, shown_t = caption.partition(" at ")
        link = urlsplit(url)
        query = dict(parse_qsl(link.query))
        assert f"{link.scheme}://{link.netloc}" == api_url and link.path.startswith(f"/media/{video_id}")
        assert link.path.endswith("/frame")
        assert float(query["t"]) == pytest.approx(float(shown_t.removesuffix("s")), abs=0.006)  # shown to 0.01 s
        assert {"expires", "sig"} <= query.keys() and "sesame" not in url
    first = httpx.get(frames[0][0], timeout=60)
    assert first.status_code == 200 and first.headers["content-type"] == "image/png"


def test_library_dashboard_browses_and_opens_a_video(api_url):
    at = app("views/library.py")
    metrics = {m.label: m.value for m in at.metric}
    assert int(metrics["Videos"]) >= 8 and metrics["Storage"].endswith(("kB", "MB"))
    assert at.dataframe[0].value.shape[0] >= 8
    at.selectbox(key="lib_source").set_value("generated").run()
    assert set(at.dataframe[0].value["source"]) == {"generated"}
    assert any(m.value.startswith("**Parent:**") for m in at.markdown)
    at.selectbox(key="lib_order").set_value("asc").run()
    assert not at.exception, at.exception


def test_library_delete_and_reindex(api_url):
    at = app("views/library.py")
    before = int({m.label: m.value for m in at.metric}["Videos"])
    at.selectbox(key="lib_source").set_value("generated").run()
    at.button(key="lib_delete").click().run()
    assert "Deleted" in at.success[0].value
    at = app("views/library.py")
    assert int({m.label: m.value for m in at.metric}["Videos"]) == before - 1
    at.button(key="reindex").click().run()
    assert "Re-indexed" in at.success[0].value


@pytest.mark.parametrize("page", [None, "views/generate.py", "views/duplicates.py", "views/library.py"])
def test_every_page_says_when_the_api_cannot_be_reached(monkeypatch, page):
    monkeypatch.setenv("REELBASE_API_URL", f"http://127.0.0.1:{free_port()}")
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    if page:
        at.switch_page(page).run()
    assert not at.exception, at.exception
    assert any("cannot be reached" in e.value for e in at.error)
