"""The UI's API client: a busy API is not an absent one, and media links are given at the browser's address."""

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.fixtures import free_port
from ui.client import Api, ApiError, ApiUnavailable


class Slow(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's naming
        time.sleep(1.5)
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


@pytest.fixture
def slow_api():
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Slow)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_a_slow_answer_says_the_api_is_busy_not_unreachable(slow_api):
    with pytest.raises(ApiError) as err:
        Api(slow_api, timeout=0.3).stats()
    assert err.value.status == 504 and not isinstance(err.value, ApiUnavailable)
    assert "still be at work" in err.value.detail
    assert Api(slow_api, timeout=5).stats() == {}


def test_nothing_listening_is_unavailable():
    with pytest.raises(ApiUnavailable, match="cannot reach the reelbase API"):
        Api(f"http://127.0.0.1:{free_port()}", timeout=2).stats()


def test_media_links_are_the_apis_own_at_the_public_address():
    """The API signs the links it returns; the UI only puts the address browsers reach the API at in front."""
    link = "/media/abc/frame?t=1.5000&expires=7200&sig=00ff#t=1.5"
    api = Api("http://api:8000", api_key="sesame", public_url="https://reel.example.org/")
    assert api.url(link) == f"https://reel.example.org{link}"
    assert Api("http://api:8000", api_key="").url("/media/abc/video") == "http://api:8000/media/abc/video"
