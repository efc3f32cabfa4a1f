"""The UI's API client: a busy API is not an absent one, and media links are signed at the browser's address."""

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from search import media_links
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


def test_media_links_use_the_public_address_and_carry_a_signature_not_the_key():
    api = Api("http://api:8000", api_key="sesame", public_url="https://reel.example.org/")
    link = api.url("/media/abc/frame", t="1.5000")
    base, query = link.split("?")
    assert base == "https://reel.example.org/media/abc/frame" and "sesame" not in link
    pairs = [tuple(q.split("=")) for q in query.split("&")]
    assert dict(pairs)["t"] == "1.5000"
    assert media_links.is_valid("sesame", "/media/abc/frame", pairs)
    other_time = [(k, "2.0000" if k == "t" else v) for k, v in pairs]
    assert not media_links.is_valid("sesame", "/media/abc/frame", other_time)  # it signs t, not just the path
    assert not media_links.is_valid("sesame", "/media/abc/frame", [p for p in pairs if p[0] != "t"])
    assert media_links.is_valid("sesame", "/media/abc/frame", pairs[::-1])  # in any order
    assert api.url("/media/abc/frame?t=1.5000") == link  # a query in the path is signed the same
    assert api.url("/media/abc/video") == api.url("/media/abc/video")  # stable: a redrawn page refetches nothing
    assert Api("http://api:8000", api_key="").url("/media/abc/video") == "http://api:8000/media/abc/video"
