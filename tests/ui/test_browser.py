"""The UI in a real browser: the API and `streamlit run` on loopback, Debian's Chromium driven by Playwright.

Screenshots of the four pages go to $REELBASE_SCREENSHOT_DIR (the README's come from there) or a
temporary folder.
"""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.fixtures import free_port
from tests.ui.conftest import API_KEY

CHROMIUM = "/usr/bin/chromium"
APP = Path(__file__).parents[2] / "ui" / "app.py"


@pytest.fixture(scope="module")
def ui_url(api_server):
    port = free_port()
    env = {**os.environ, "REELBASE_API_URL": api_server, "REELBASE_API_KEY": API_KEY}
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(APP), "--server.port", str(port),
                             "--server.headless", "true", "--browser.gatherUsageStats", "false"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            if httpx.get(f"{url}/_stcore/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("streamlit did not start")
    yield url
    proc.terminate()
    proc.wait(timeout=30)


@pytest.fixture(scope="module")
def page(ui_url):
    playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    if not Path(CHROMIUM).exists() or shutil.which(CHROMIUM) is None:
        pytest.skip(f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(120_000)
        yield page
        browser.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    folder = Path(os.environ.get("REELBASE_SCREENSHOT_DIR") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _open(page, ui_url: str, path: str = "") -> None:
    page.goto(f"{ui_url}/{path}")
    page.get_by_text("connected · reelbase").wait_for()


def _assert_images_load(page, selector: str, at_least: int) -> None:
    """Wait until the browser has fetched every image `selector` matches (at least `at_least` of them), then
    check each decoded: an image the API refused ends as a broken one."""
    page.wait_for_function("([selector, atLeast]) => { const images = document.querySelectorAll(selector); "
                           "return images.length >= atLeast && [...images].every(i => i.complete); }",
                           arg=[selector, at_least])
    widths = page.eval_on_selector_all(selector, "images => images.map(i => i.naturalWidth)")
    assert widths and all(w > 0 for w in widths), f"images that did not load: {widths}"


def test_search_in_the_browser(page, ui_url, shots):
    _open(page, ui_url)
    box = page.get_by_placeholder("a red ball moving right on black")
    box.fill("a red ball")
    box.press("Enter")
    page.get_by_role("button", name="More like this").first.wait_for()
    # Streamlit sends the results one element at a time: wait for three clips, not only the first
    page.wait_for_function("() => document.querySelectorAll('video').length >= 3")
    page.wait_for_timeout(1500)  # let the thumbnails of the clips load
    page.screenshot(path=str(shots / "search.png"), full_page=True)


def test_generate_in_the_browser(page, ui_url, shots):
    _open(page, ui_url, "generate")
    page.get_by_role("button", name="Generate").click()
    page.get_by_text("Done: saved into the library").wait_for()
    page.locator("video").first.wait_for()  # the clip arrives in the next delta after the message
    page.screenshot(path=str(shots / "generate.png"), full_page=True)


def test_duplicates_and_library_in_the_browser(page, ui_url, shots):
    _open(page, ui_url, "duplicates")
    page.get_by_role("button", name="Scan the library").click()
    group = page.get_by_text("Group 1:")  # only a group found says it, not the caption of an empty scan
    group.wait_for()
    assert "copy-of-clip0.mp4" in group.inner_text()
    _assert_images_load(page, "img[src*='/frame?t=']", at_least=2)  # by the API's signed links, with no key
    page.screenshot(path=str(shots / "duplicates.png"), full_page=True)
    _open(page, ui_url, "library")
    page.get_by_text("Recent activity").wait_for()
    page.get_by_text("Frames indexed").wait_for()
    page.wait_for_timeout(1500)
    page.screenshot(path=str(shots / "library.png"), full_page=True)
