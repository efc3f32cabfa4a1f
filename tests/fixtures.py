"""Media files for tests: real clips of the synthetic world, and files that are bad on purpose.

Every writer takes the path to write and returns it. Bad files are built from real world clips
where that makes them realistic (a cut download, flipped bytes), and their names end in .mp4
whatever their content, as files people bring often do.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import av
import numpy as np
from PIL import Image

from generator.video import write_mp4
from generator.world import FPS, sample_clips, write_dataset


def write_world_videos(out_dir: str | Path, n: int, seed: int = 0) -> list[Path]:
    """Write `n` world clips as NNNNN.mp4 with a NNNNN.json truth record beside each."""
    return write_dataset(out_dir, n, seed)


def write_world_mp4(path: str | Path, seed: int = 0, index: int = 0) -> Path:
    """Write clip `index` of the world stream `seed` as one H.264 mp4."""
    (clip,) = sample_clips(seed, index, 1)
    return write_mp4(path, clip.frames, FPS)


def write_world_ts(path: str | Path, seed: int = 0, index: int = 0) -> Path:
    """Write a world clip as H.264 in MPEG-TS, a container where decord fails on the last frame."""
    (clip,) = sample_clips(seed, index, 1)
    with av.open(str(path), "w", format="mpegts") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = clip.frames.shape[2], clip.frames.shape[1], "yuv420p"
        for frame in clip.frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return Path(path)


def write_truncated(path: str | Path) -> Path:
    """A world clip cut in half, as an interrupted download leaves it."""
    data = write_world_mp4(path).read_bytes()
    Path(path).write_bytes(data[: len(data) // 2])
    return Path(path)


def write_zero_byte(path: str | Path) -> Path:
    """An empty file."""
    Path(path).write_bytes(b"")
    return Path(path)


def write_text_as_mp4(path: str | Path) -> Path:
    """A text file with a video's name."""
    Path(path).write_text("This is not a video, just some notes someone saved as .mp4.\n" * 20)
    return Path(path)


def write_random_bytes(path: str | Path, size: int = 4096, seed: int = 0) -> Path:
    """Random bytes with a video's name."""
    Path(path).write_bytes(np.random.default_rng(seed).bytes(size))
    return Path(path)


def write_corrupt_mdat(path: str | Path, span: int = 400) -> Path:
    """A world clip with `span` bytes in the middle of its frame data (mdat) inverted."""
    data = bytearray(write_world_mp4(path, index=3).read_bytes())
    start, size = _find_box(data, b"mdat")
    middle = start + size // 2
    for i in range(max(start + 8, middle - span // 2), min(start + size, middle + span // 2)):
        data[i] ^= 0xFF
    Path(path).write_bytes(data)
    return Path(path)


def write_png_as_mp4(path: str | Path) -> Path:
    """A PNG image (the first frame of a world clip) with a video's name."""
    (clip,) = sample_clips(0, 0, 1)
    Image.fromarray(clip.frames[0]).save(path, format="PNG")
    return Path(path)


def write_huge_resolution(path: str | Path, width: int = 16000, height: int = 16000) -> Path:
    """A tiny valid QuickTime file whose headers then declare `width` x `height` pixels.

    H.264 will not do: FFmpeg takes the picture size from the stream's SPS, not from the
    `tkhd`/`avc1` boxes. Raw video has no SPS, so the size in the sample entry is the size.
    (FFmpeg itself zeroes sizes over about 16k x 16k, hence the default.)
    """
    frames = np.zeros((2, 16, 16, 3), dtype=np.uint8)
    with av.open(str(path), "w", format="mov") as container:
        stream = container.add_stream("rawvideo", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = 16, 16, "rgb24"
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    data = bytearray(Path(path).read_bytes())
    tkhd, size = _find_box(data, b"tkhd")
    data[tkhd + size - 8 : tkhd + size] = struct.pack(">II", width << 16, height << 16)  # 16.16
    entry, _ = _find_box(data, b"raw ")  # visual sample entry: size and type, 24 bytes, w, h
    data[entry + 32 : entry + 36] = struct.pack(">HH", width, height)
    Path(path).write_bytes(data)
    return Path(path)


def write_huge_frame_count(path: str | Path, count: int = 4_000_000_000) -> Path:
    """A world clip whose `stts` box claims `count` frames: decord aborts on it (bad_alloc)."""
    data = bytearray(write_world_mp4(path).read_bytes())
    stts, _ = _find_box(data, b"stts")  # size, type, version/flags, entry count, first count
    data[stts + 16 : stts + 20] = struct.pack(">I", count)
    Path(path).write_bytes(data)
    return Path(path)


BAD_WRITERS = {  # every kind of bad file, by name
    "truncated": write_truncated,
    "zero_byte": write_zero_byte,
    "text": write_text_as_mp4,
    "random": write_random_bytes,
    "corrupt_mdat": write_corrupt_mdat,
    "png": write_png_as_mp4,
    "huge_resolution": write_huge_resolution,
    "huge_frame_count": write_huge_frame_count,
}


def _find_box(data: bytes | bytearray, kind: bytes) -> tuple[int, int]:
    """Offset and size of the first ISO-BMFF box of type `kind` (a plain byte search)."""
    start = data.index(kind) - 4
    return start, struct.unpack(">I", data[start : start + 4])[0]


# ---------------------------------------------------------------------------------------------
# Servers


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serving(app, timeout: float = 120.0, **options) -> Iterator[str]:
    """Run an ASGI app in uvicorn (with more of its `options`) on a free loopback port in a thread; yield its
    URL; shut it down after."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning",
                                           timeout_graceful_shutdown=10, **options))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + timeout
    while not server.started and thread.is_alive() and time.time() < deadline:
        time.sleep(0.1)
    assert server.started, "the server did not start"
    try:
        yield f"http://127.0.0.1:{server.config.port}"
    finally:
        server.should_exit = True
        thread.join(timeout=60)
        assert not thread.is_alive(), "the server did not shut down"


@contextmanager
def milvus_server(base: Path, tick_ms: int = 50, config: dict | None = None) -> Iterator[str]:
    """Run the Milvus 2.3 standalone of the `milvus` package with its files under `base`; yield its URI.

    `config` sets more of milvus.yaml by dotted key ("dataCoord.segment.maxSize": 1024).
    Raises whatever stopped it from starting (the caller decides whether that means skip).
    """
    import os

    import milvus

    base.mkdir(parents=True, exist_ok=True)
    # The package leaves embedded etcd on fixed ports (2379, 2380); free ones let two sessions
    # (or a developer's own server) run side by side. Milvus reads ETCD_CONFIG_PATH from the env.
    etcd, peer = f"http://127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}"
    (base / "etcd.yaml").write_text(
        f"listen-client-urls: {etcd}\nadvertise-client-urls: {etcd}\nlisten-peer-urls: {peer}\n"
        f"initial-advertise-peer-urls: {peer}\ninitial-cluster: default={peer}\n")
    server = milvus.MilvusServer(wait_for_started=False)  # other ports: free ones from 19530 up
    server.set_base_dir(str(base))
    server.config.update(etcd_port=int(etcd.rsplit(":", 1)[1]))
    server.config.set("proxy.timeTickInterval", tick_ms)  # strong reads wait a tick (default 200 ms)
    for key, value in (config or {}).items():
        server.config.set(key, value)
    previous = os.environ.get("ETCD_CONFIG_PATH")
    try:
        os.environ["ETCD_CONFIG_PATH"] = str(base / "etcd.yaml")
        server.start()
        server.wait_started(timeout=90_000)  # ms; it takes ~10 s
    except BaseException:
        server.stop()
        raise
    finally:
        if previous is None:
            os.environ.pop("ETCD_CONFIG_PATH", None)
        else:
            os.environ["ETCD_CONFIG_PATH"] = previous
    try:
        yield f"http://127.0.0.1:{server.listen_port}"
    finally:
        server.stop()
        server.cleanup()  # its unpacked binaries take ~150 MB


class ApiProcess:
    """`reelbase serve` in a child process on a free loopback port, as a deployment runs it."""

    def __init__(self, env: dict, cwd: Path):
        import subprocess
        import sys

        self.url = f"http://127.0.0.1:{free_port()}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "search.cli", "serve", "--host", "127.0.0.1", "--port", self.url.rsplit(":", 1)[1]],
            env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def wait_ready(self, timeout: float = 180.0) -> ApiProcess:
        import httpx

        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"the API exited: {self.proc.stderr.read().decode()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise AssertionError("the API did not become ready")

    def kill(self, sig: int) -> None:
        self.proc.send_signal(sig)
        self.proc.wait(timeout=120)

    def __enter__(self) -> ApiProcess:
        return self.wait_ready()

    def __exit__(self, *exc) -> None:
        import signal

        if self.proc.poll() is None:
            self.kill(signal.SIGTERM)
        self.proc.stderr.close()
