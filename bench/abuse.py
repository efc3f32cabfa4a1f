"""Abuse: the attacks of issue 16 against `reelbase serve` on loopback, and what each costs the server.

A small library (a few world clips, ingested in a temporary data folder) is served by `reelbase
serve` in a child process, as a deployment runs it (its temp files go to a folder of the bench's
own, so spooled uploads count as disk). While each attack runs, the server's resident memory is
sampled every 50 ms and its data and temp folders every 250 ms. Each attack prints its answers,
the server's RSS before, at peak and kept a few seconds after, and where it matters the bytes the
server wrote (its write calls, /proc/PID/io `wchar`), the disk it held at peak, the queue's depth
or the event rates. The attacks:

- bomb:        6 concurrent uploads of a small PNG that declares 6300 x 6300, to /search/image
               and to /duplicates/image;
- junk-query:  4 concurrent junk bodies of --junk-mb to /search/image;
- junk-video:  one junk body of --video-junk-mb to /videos;
- streams:     a client's event rate on the running job, alone and beside --streams streams on a
               queued job;
- flood:       generation jobs submitted until 429, cancelled, again for --flood-rounds rounds;
               the job records left on disk (the server keeps --keep-finished ended ones);
- slow:        --slow-clients connections sending one byte a second, half of them a request's
               head and half a body, until the server drops them (its deadlines are the defaults:
               10 s for a head, 30 s for a body).

    python3 bench/abuse.py [--attacks bomb,junk-query,junk-video,streams,flood,slow] [--clips 3]
                           [--junk-mb 100] [--video-junk-mb 100] [--streams 50] [--slow-clients 200]
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import selectors
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
REELBASE = [sys.executable, "-m", "search.cli"]
LONG_JOB = {"prompt": "a red ball moving right on black", "steps": 200, "frames": 128}  # minutes on a CPU
SETTLE_S = 3.0  # after an attack, how long the server is left before its RSS counts as kept
GB = 1024**3


# --- the server under attack ----------------------------------------------------------------------


class Server:
    """`reelbase serve` on a free loopback port, its messages in a file, its temp files in `tmp`."""

    def __init__(self, data: Path, tmp: Path, env: dict):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.url, self.data, self.tmp = f"http://127.0.0.1:{port}", data, tmp
        self.log = open(data.parent / "server.log", "wb")
        self.proc = subprocess.Popen(REELBASE + ["serve", "--host", "127.0.0.1", "--port", str(port)], cwd=ROOT,
                                     env={**env, "TMPDIR": str(tmp)}, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 300
        while not self._answers():
            if self.proc.poll() is not None or time.time() > deadline:
                raise SystemExit(f"the server did not start:\n{self.tail()}")
            time.sleep(0.5)

    def _answers(self) -> bool:
        try:
            return httpx.get(f"{self.url}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def rss(self) -> int:
        return _proc_field(self.proc.pid, "status", "VmRSS:") * 1024

    def written(self) -> int:
        """Bytes the server has passed to write calls (files, and a little to sockets)."""
        return _proc_field(self.proc.pid, "io", "wchar:")

    def disk(self) -> int:
        """Bytes in its data and temp folders, and in files it holds open that are deleted already (a
        spooled upload is such a file: unlinked at once, on disk until closed)."""
        named = sum(p.stat().st_size for folder in (self.data, self.tmp) for p in folder.rglob("*") if p.is_file())
        return named + sum(_deleted_file_size(fd) for fd in Path(f"/proc/{self.proc.pid}/fd").iterdir())

    def tail(self) -> str:
        if not self.log.closed:
            self.log.flush()
        return (self.data.parent / "server.log").read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=90)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def _deleted_file_size(fd: Path) -> int:
    try:
        if os.readlink(fd).endswith(" (deleted)"):
            return fd.stat().st_size
    except OSError:  # closed meanwhile
        pass
    return 0


def _proc_field(pid: int, name: str, key: str) -> int:
    for line in Path(f"/proc/{pid}/{name}").read_text().splitlines():
        if line.startswith(key):
            return int(line.split()[1])
    raise KeyError(key)


@dataclass
class Cost:
    """What an attack cost the server: RSS before, at peak and kept; bytes written; peak disk held."""

    rss_before: int
    rss_peak: int = 0
    rss_kept: int = 0
    written: int = 0
    disk_before: int = 0
    disk_peak: int = 0
    seconds: float = 0.0

    def line(self) -> str:
        return (f"RSS {self.rss_before / GB:.2f} GB before, {self.rss_peak / GB:.2f} GB peak, "
                f"{self.rss_kept / GB:.2f} GB kept; wrote {self.written / 2**20:.0f} MB, "
                f"held {(self.disk_peak - self.disk_before) / 2**20:.0f} MB more on disk at peak; "
                f"{self.seconds:.1f} s")


@contextmanager
def metered(server: Server) -> Iterator[Cost]:
    """Sample the server's RSS (50 ms) and folders (250 ms) while the block runs; the kept RSS after SETTLE_S."""
    cost = Cost(rss_before=server.rss(), disk_before=server.disk())
    cost.rss_peak, cost.disk_peak = cost.rss_before, cost.disk_before
    written, started, stop = server.written(), time.perf_counter(), threading.Event()

    def sample():
        tick = 0
        while not stop.wait(0.05):
            cost.rss_peak = max(cost.rss_peak, server.rss())
            tick += 1
            if tick % 5 == 0:
                cost.disk_peak = max(cost.disk_peak, server.disk())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield cost
    finally:
        cost.seconds = time.perf_counter() - started
        time.sleep(SETTLE_S)
        stop.set()
        sampler.join()
        cost.rss_kept, cost.written = server.rss(), server.written() - written


# --- the attacks ---------------------------------------------------------------------------------


def bomb_png(side: int) -> bytes:
    """A PNG of `side` x `side` black pixels: about 116 KB that decode to side^2 x 3 bytes."""
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (side, side)).save(buf, format="PNG")
    return buf.getvalue()


def attack_bomb(server: Server, args) -> None:
    png = bomb_png(args.bomb_side)
    for route in ("/search/image", "/duplicates/image"):
        with metered(server) as cost:
            statuses = concurrently(args.bomb_concurrency, lambda url=server.url + route: _post_file(url, "image", png))
        print(f"bomb {route}: {args.bomb_concurrency} x {args.bomb_side}x{args.bomb_side} PNG "
              f"({len(png) / 1024:.0f} KB): {dict(statuses)}; {cost.line()}", flush=True)


def attack_junk_query(server: Server, args) -> None:
    with metered(server) as cost:
        statuses = concurrently(args.junk_concurrency, lambda: _post_junk(
            server.url + "/search/image", "image", args.junk_mb))
    print(f"junk query uploads: {args.junk_concurrency} x {args.junk_mb} MB to /search/image: {dict(statuses)}; "
          f"{cost.line()}", flush=True)


def attack_junk_video(server: Server, args) -> None:
    with metered(server) as cost:
        statuses = concurrently(1, lambda: _post_junk(server.url + "/videos", "file", args.video_junk_mb))
    print(f"junk video upload: {args.video_junk_mb} MB to /videos: {dict(statuses)}; {cost.line()}", flush=True)


def concurrently(n: int, request) -> Counter:
    """Run `request()` n times at once; a count of what each answered (a status, or the error's name)."""
    def one():
        try:
            return request()
        except httpx.HTTPError as exc:
            return type(exc).__name__
    with ThreadPoolExecutor(n) as pool:
        return Counter(pool.map(lambda _: one(), range(n)))


def _post_file(url: str, field_name: str, content: bytes) -> int:
    files = {field_name: ("query.png", content, "image/png")}
    return httpx.post(url, files=files, timeout=600).status_code


def _post_junk(url: str, field_name: str, megabytes: int) -> int:
    """A multipart upload of `megabytes` MB of random bytes, streamed with its Content-Length."""
    boundary = "abuse-bench-boundary"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field_name}\"; filename=\"junk.bin\"\r\n"
            f"Content-Type: application/octet-stream\r\n\r\n").encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    chunk = os.urandom(1 << 20)

    def body():
        yield head
        for _ in range(megabytes):
            yield chunk
        yield tail

    size = len(head) + megabytes * len(chunk) + len(tail)
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}", "Content-Length": str(size)}
    return httpx.post(url, content=body(), headers=headers, timeout=600).status_code


def attack_streams(server: Server, args) -> None:
    """The running job's events per second, alone and beside `--streams` streams on a queued job."""
    with httpx.Client(base_url=server.url, timeout=60) as client:
        running, queued = (client.post("/jobs", json=LONG_JOB).json()["job_id"] for _ in range(2))
        try:
            with metered(server) as cost:
                alone, crowded, answers = _event_rates(server.url, running, queued, args.streams, args.window)
        finally:
            for job_id in (queued, running):
                client.post(f"/jobs/{job_id}/cancel")
    print(f"event streams: the running job's events {alone:.1f}/s alone, {crowded:.1f}/s beside {args.streams} "
          f"streams on a queued job (ratio {crowded / alone if alone else float('nan'):.2f}); "
          f"the crowd's answers {dict(answers)}; {cost.line()}", flush=True)


def _event_rates(url: str, running: str, queued: str, crowd: int, window: float) -> tuple[float, float, Counter]:
    stamps: list[float] = []
    stop = threading.Event()

    def count():
        with httpx.Client(base_url=url, timeout=60) as client, client.stream("GET", f"/jobs/{running}/events") as r:
            for line in r.iter_lines():
                if line.startswith("data: "):
                    stamps.append(time.monotonic())
                if stop.is_set():
                    return

    reader = threading.Thread(target=count, daemon=True)
    reader.start()
    with ExitStack() as stack, httpx.Client(base_url=url, timeout=60,
                                            limits=httpx.Limits(max_connections=None)) as client:
        while len(stamps) < 2 and reader.is_alive():
            time.sleep(0.1)
        alone_from = time.monotonic()
        time.sleep(window)
        answers = Counter(stack.enter_context(client.stream("GET", f"/jobs/{queued}/events")).status_code
                          for _ in range(crowd))
        crowded_from = time.monotonic()
        time.sleep(window)
    stop.set()
    reader.join(timeout=30)
    alone = sum(alone_from <= t < alone_from + window for t in stamps)
    crowded = sum(crowded_from <= t < crowded_from + window for t in stamps)
    return alone / window, crowded / window, answers


def attack_flood(server: Server, args) -> None:
    """Jobs submitted until 429, then cancelled, for a few rounds; the depth reached and the records left."""
    depths, refused, retry_after = [], 0, None
    with metered(server) as cost, httpx.Client(base_url=server.url, timeout=60) as client:
        for _ in range(args.flood_rounds):
            accepted = []
            while (r := client.post("/jobs", json=LONG_JOB)).status_code == 202:
                accepted.append(r.json()["job_id"])
            refused += 1
            retry_after = r.headers.get("Retry-After")
            depths.append(len(accepted))
            for job_id in accepted:
                client.post(f"/jobs/{job_id}/cancel")
        time.sleep(1.0)  # the running job stops at its next step
        listed = client.get("/jobs", params={"limit": 500}).json()["jobs"]
    records = len(list((server.data / "jobs").glob("*.json")))
    print(f"job flood: {args.flood_rounds} rounds of jobs until 429 (Retry-After {retry_after}); queue depth "
          f"reached {depths}; {sum(depths)} accepted, {refused} refused; {records} job records on disk, "
          f"{len(listed)} listed (the server keeps {args.keep_finished} ended); {cost.line()}", flush=True)


def attack_slow(server: Server, args) -> None:
    """`--slow-clients` connections, each sending one byte a second: half a request's head, half a body."""
    _raise_open_file_limit(args.slow_clients + 256)
    host, port = server.url.removeprefix("http://").split(":")
    heads = args.slow_clients // 2
    with metered(server) as cost:
        trickles = [Trickle.head(host, int(port)) if i < heads else Trickle.body(host, int(port))
                    for i in range(args.slow_clients)]
        health = _trickle_until_dropped(trickles, server.url, args.slow_wait)
    for kind in ("head", "body"):
        closed = [t.closed_after for t in trickles if t.kind == kind and t.closed_after is not None]
        still = sum(t.kind == kind and t.closed_after is None for t in trickles)
        spread = f"dropped after median {statistics.median(closed):.1f} s, at most {max(closed):.1f} s" if closed \
            else "none dropped"
        print(f"slow clients ({kind}): {sum(t.kind == kind for t in trickles)} connections at 1 byte/s: "
              f"{spread}; {still} still open after {args.slow_wait:.0f} s", flush=True)
    print(f"slow clients: /health meanwhile answered in median {statistics.median(health) * 1000:.0f} ms, "
          f"at most {max(health) * 1000:.0f} ms; {cost.line()}", flush=True)


@dataclass
class Trickle:
    """A connection that sends what is left of `rest` one byte at a time."""

    kind: str
    sock: socket.socket
    rest: bytes
    opened: float = field(default_factory=time.monotonic)
    closed_after: float | None = None

    @classmethod
    def head(cls, host: str, port: int) -> Trickle:
        return cls("head", _connect(host, port, b""), b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200)

    @classmethod
    def body(cls, host: str, port: int) -> Trickle:
        head = (b"POST /search/text HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: 1000\r\n\r\n")
        return cls("body", _connect(host, port, head), b'{"text": "' + b"a" * 980)

    def send_one(self) -> None:
        try:
            self.sock.send(self.rest[:1])
            self.rest = self.rest[1:] or self.rest  # never finish: repeat the last byte
        except OSError:
            self.closed()

    def closed(self) -> None:
        if self.closed_after is None:
            self.closed_after = time.monotonic() - self.opened
            self.sock.close()


def _connect(host: str, port: int, first: bytes) -> socket.socket:
    sock = socket.create_connection((host, port))
    sock.sendall(first)
    sock.setblocking(False)
    return sock


def _trickle_until_dropped(trickles: list[Trickle], url: str, wait_s: float) -> list[float]:
    """One byte a second on each open connection until all are closed or `wait_s` passed; /health's answer times."""
    selector = selectors.DefaultSelector()
    for t in trickles:
        selector.register(t.sock, selectors.EVENT_READ, t)
    health, started = [], time.monotonic()
    while time.monotonic() - started < wait_s and any(t.closed_after is None for t in trickles):
        second = time.monotonic() + 1.0
        for t in trickles:
            if t.closed_after is None:
                t.send_one()
        probe = time.perf_counter()
        httpx.get(f"{url}/health", timeout=30)
        health.append(time.perf_counter() - probe)
        while (left := second - time.monotonic()) > 0:
            for key, _ in selector.select(timeout=left):
                t = key.data
                try:
                    if t.sock.recv(4096) == b"":
                        selector.unregister(t.sock)
                        t.closed()
                except OSError:
                    selector.unregister(t.sock)
                    t.closed()
    for t in trickles:
        if t.closed_after is None:
            t.sock.close()
    return health


def _raise_open_file_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(needed, hard), hard))


# --- the run -------------------------------------------------------------------------------------

ATTACKS = {"bomb": attack_bomb, "junk-query": attack_junk_query, "junk-video": attack_junk_video,
           "streams": attack_streams, "flood": attack_flood, "slow": attack_slow}



def library(data: Path, clips: int, env: dict) -> None:
    """Ingest `clips` world clips into the data folder (before the server owns it)."""
    from generator.world import write_dataset

    write_dataset(data.parent / "clips", clips, seed=3)
    done = subprocess.run(REELBASE + ["ingest", str(data.parent / "clips")], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"ingest failed:\n{done.stderr}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--attacks", default=",".join(ATTACKS), help=f"comma-separated, of {', '.join(ATTACKS)}")
    parser.add_argument("--clips", type=int, default=3, help="world clips in the library")
    parser.add_argument("--bomb-side", type=int, default=6300, help="the PNG's declared width and height")
    parser.add_argument("--bomb-concurrency", type=int, default=6)
    parser.add_argument("--junk-mb", type=int, default=100, help="size of each junk query upload")
    parser.add_argument("--junk-concurrency", type=int, default=4)
    parser.add_argument("--video-junk-mb", type=int, default=100, help="size of the junk video upload")
    parser.add_argument("--streams", type=int, default=50, help="event streams on a queued job")
    parser.add_argument("--window", type=float, default=5.0, help="seconds each event rate is counted over")
    parser.add_argument("--flood-rounds", type=int, default=3)
    parser.add_argument("--keep-finished", type=int, default=50, help="ended job records the server keeps")
    parser.add_argument("--slow-clients", type=int, default=200, help="connections sending a byte a second")
    parser.add_argument("--slow-wait", type=float, default=45.0, help="how long they keep trying")
    args = parser.parse_args()
    attacks = [a for a in args.attacks.split(",") if a]
    if unknown := set(attacks) - set(ATTACKS):
        parser.error(f"unknown attacks {sorted(unknown)}; they are {', '.join(ATTACKS)}")
    sys.path.insert(0, str(ROOT))
    with tempfile.TemporaryDirectory() as tmp:
        data, server_tmp = Path(tmp) / "data", Path(tmp) / "server-tmp"
        server_tmp.mkdir()
        env = {**os.environ, "REELBASE_DATA_DIR": str(data), "REELBASE_MILVUS_URI": "", "REELBASE_DEVICE": "cpu",
               "REELBASE_KEEP_FINISHED_JOBS": str(args.keep_finished)}
        t0 = time.perf_counter()
        library(data, args.clips, env)
        server = Server(data, server_tmp, env)
        print(f"server: {args.clips} world clips, up in {time.perf_counter() - t0:.0f} s at {server.url}, "
              f"RSS {server.rss() / GB:.2f} GB", flush=True)
        try:
            for name in attacks:
                ATTACKS[name](server, args)
                if server.proc.poll() is not None:
                    raise SystemExit(f"the server died during {name}:\n{server.tail()}")
        finally:
            server.stop()


if __name__ == "__main__":
    main()
