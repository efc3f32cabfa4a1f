"""Connections a client holds open: job event streams (search/api/events.py) and slow requests
(search/api/server.py), against the real app served as `reelbase serve` serves it.

Rates are compared within one run (a ratio), never against a clock.
"""

import os
import select
import socket
import threading
import time
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from search.api import create_app
from search.api.server import server_options
from search.settings import Settings
from tests import fixtures

ROOT = Path(__file__).resolve().parents[2]
STREAM_CAP = 60  # event streams the test service serves at once
CROWD = 50  # streams on a queued job, beside one stream on the running job
TIMEOUT_S = 1.0  # the test service's header and body timeouts
WINDOW_S = 3.0  # each window in which a stream's events are counted


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """The app served on loopback with small read deadlines and stream cap; yields (app, url, running, queued):
    a long job running and one queued behind it (both cancelled after)."""
    settings = Settings(data_dir=tmp_path_factory.mktemp("live") / "data", device="cpu", max_event_streams=STREAM_CAP,
                        header_timeout_s=TIMEOUT_S, body_timeout_s=TIMEOUT_S)
    app = create_app(settings)
    with fixtures.serving(app, **server_options(settings)) as url, httpx.Client(base_url=url) as client:
        long = {"prompt": "a red ball moving right", "steps": 200, "frames": 128}  # minutes of steps on a CPU
        running, queued = (client.post("/jobs", json=long).json()["job_id"] for _ in range(2))
        try:
            yield app, url, running, queued
        finally:
            for job_id in (queued, running):
                client.post(f"/jobs/{job_id}/cancel")


def _open_streams(stack: ExitStack, client: httpx.Client, job_id: str, n: int) -> list[httpx.Response]:
    return [stack.enter_context(client.stream("GET", f"/jobs/{job_id}/events")) for _ in range(n)]


def _wait_until_no_stream_is_open(app, timeout: float = 30.0) -> None:
    """The server lets a stream go once it sees its client leave: wait for the last test's to be let go."""
    deadline = time.monotonic() + timeout
    while app.state.events.open_streams and time.monotonic() < deadline:
        time.sleep(0.05)
    assert app.state.events.open_streams == 0 and not app.state.events.channels


# --- event streams -------------------------------------------------------------------------------


def test_a_crowd_of_streams_on_a_queued_job_does_not_slow_the_running_jobs_events(live):
    app, url, running, queued = live
    stamps: list[float] = []
    stop = threading.Event()

    def count_events():
        with httpx.Client(base_url=url, timeout=30) as client, client.stream("GET", f"/jobs/{running}/events") as r:
            for line in r.iter_lines():
                if line.startswith("data: "):
                    stamps.append(time.monotonic())
                if stop.is_set():
                    return

    reader = threading.Thread(target=count_events, daemon=True)
    reader.start()
    with ExitStack() as stack, httpx.Client(base_url=url, timeout=30,
                                            limits=httpx.Limits(max_connections=None)) as crowd:
        while len(stamps) < 3:  # the job runs and the stream delivers
            time.sleep(0.1)
        alone_from = time.monotonic()
        time.sleep(WINDOW_S)
        streams = _open_streams(stack, crowd, queued, CROWD)
        assert all(r.status_code == 200 for r in streams)
        assert app.state.events.channels[queued].streams == CROWD  # one channel fans out to the crowd
        crowded_from = time.monotonic()
        time.sleep(WINDOW_S)
        crowded_to = time.monotonic()
    stop.set()
    reader.join(timeout=30)
    alone = sum(alone_from <= t < alone_from + WINDOW_S for t in stamps)
    crowded = sum(crowded_from <= t < crowded_to for t in stamps)
    assert alone >= 5, f"too few events to compare ({alone} in {WINDOW_S} s)"
    assert crowded >= alone / 2, f"{crowded} events beside {CROWD} streams on another job, {alone} without"


def test_streams_beyond_the_cap_are_refused_with_retry_after_until_one_closes(live):
    app, url, running, queued = live
    _wait_until_no_stream_is_open(app)
    with httpx.Client(base_url=url, timeout=30, limits=httpx.Limits(max_connections=None)) as client:
        with ExitStack() as stack:
            streams = _open_streams(stack, client, queued, STREAM_CAP - 1) + _open_streams(stack, client, running, 1)
            assert all(r.status_code == 200 for r in streams)
            for job_id in (running, queued):
                refused = client.get(f"/jobs/{job_id}/events")
                assert refused.status_code == 503 and int(refused.headers["Retry-After"]) > 0, refused.text
                assert "REELBASE_MAX_EVENT_STREAMS" in refused.json()["detail"]
            assert client.get(f"/jobs/{running}").status_code == 200  # the rest of the API answers
            streams.pop().close()  # one client leaves: its place is given back
            deadline = time.monotonic() + 30
            while app.state.events.open_streams >= STREAM_CAP and time.monotonic() < deadline:
                time.sleep(0.05)
            again = stack.enter_context(client.stream("GET", f"/jobs/{running}/events"))
            assert again.status_code == 200 and next(again.iter_lines()).startswith("event: ")
    _wait_until_no_stream_is_open(app)  # and every channel goes with its last stream


# --- slow clients --------------------------------------------------------------------------------


def _seconds_until_closed(url: str, start: bytes, trickle: bytes, interval: float = 0.1) -> float | None:
    """Send `start`, then `trickle` one byte per `interval`; when the server closed the connection (None: never)."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(start)
        began = time.monotonic()
        for byte in trickle:
            try:
                sock.send(bytes([byte]))
                readable, _, _ = select.select([sock], [], [], interval)
                if readable and sock.recv(4096) == b"":
                    return time.monotonic() - began
            except OSError:  # reset: closed
                return time.monotonic() - began
    return None


HALF_A_HEAD = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: one byte at a time"  # 7 s at 0.1 s a byte


def test_a_client_sending_its_header_one_byte_at_a_time_is_dropped(live):
    _, url, _, _ = live
    closed = _seconds_until_closed(url, b"", HALF_A_HEAD)
    assert closed is not None, f"the connection stayed open for {len(HALF_A_HEAD) * 0.1:.0f} s"
    assert httpx.get(f"{url}/health").status_code == 200


def test_a_client_sending_its_body_one_byte_at_a_time_is_dropped(live):
    _, url, _, _ = live
    body = b'{"text": "a red ball moving right on a black background, one byte at a time", "top_k": 3}'
    head = (b"POST /search/text HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body))
    closed = _seconds_until_closed(url, head, body)
    assert closed is not None, f"the connection stayed open for {len(body) * 0.1:.0f} s"
    fast = httpx.post(f"{url}/search/text", content=body, headers={"Content-Type": "application/json"})
    assert fast.status_code == 200, fast.text  # the same request sent at once is answered


@pytest.mark.slow
def test_reelbase_serve_drops_slow_clients_by_its_settings(tmp_path):
    """The command the compose stack and the Dockerfile run: its deadlines come from REELBASE_ variables."""
    env = {**os.environ, "REELBASE_DATA_DIR": str(tmp_path / "data"), "REELBASE_MILVUS_URI": "",
           "REELBASE_DEVICE": "cpu", "REELBASE_HEADER_TIMEOUT_S": str(TIMEOUT_S)}
    with fixtures.ApiProcess(env, ROOT) as api:
        assert _seconds_until_closed(api.url, b"", HALF_A_HEAD) is not None
