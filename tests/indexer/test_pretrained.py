"""Pretrained tags offline: cached weights load with no network; missing ones fail at once, saying what to do."""

import http.server
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import open_clip
import pytest
from huggingface_hub import constants as hf_constants
from safetensors.torch import save_file

from common.weights import UnknownModel
from indexer import pretrained
from indexer.models import load_clip

ROOT = Path(__file__).parents[2]


@pytest.fixture
def empty_caches(tmp_path, monkeypatch):
    """No cached weights anywhere: an empty HF hub cache and an empty open_clip URL cache (a temp HOME)."""
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return tmp_path


def test_a_tag_neither_cached_nor_reachable_fails_with_one_line_saying_what_to_do(empty_caches, monkeypatch):
    asked = []

    def unreachable(url, timeout=pretrained.REACH_TIMEOUT_S):
        asked.append((url, timeout))
        return False

    def no_download(*args, **kwargs):
        pytest.fail("a download was tried although the source cannot be reached")

    monkeypatch.setattr(pretrained, "reachable", unreachable)
    monkeypatch.setattr(open_clip, "download_pretrained", no_download)
    monkeypatch.setattr(open_clip.pretrained, "download_pretrained", no_download)
    with pytest.raises(UnknownModel) as err:
        load_clip("ViT-B-32:laion2b_s34b_b79k")
    message = str(err.value)
    assert "\n" not in message and "not in the cache" in message
    assert "REELBASE_CLIP_MODEL=ViT-B-32:/path/to/weights" in message
    assert asked == [(f"{hf_constants.ENDPOINT}/laion/CLIP-ViT-B-32-laion2B-s34B-b79K", pretrained.REACH_TIMEOUT_S)]


def test_reachable_tells_a_closed_port_from_a_server_that_answers_even_with_404():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]  # nothing listens once the socket is closed
    assert not pretrained.reachable(f"http://127.0.0.1:{closed}/repo", timeout=2)
    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)  # 501 to HEAD
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        assert pretrained.reachable(f"http://127.0.0.1:{server.server_address[1]}/repo", timeout=2)
    finally:
        server.shutdown()
        server.server_close()
    assert not pretrained.reachable("")


def test_hf_hub_offline_mode_counts_the_hub_as_unreachable_without_asking(monkeypatch):
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: pytest.fail("the network was asked"))
    assert not pretrained.reachable(f"{hf_constants.ENDPOINT}/laion/CLIP-ViT-B-32-laion2B-s34B-b79K")


def test_open_clips_own_url_cache_is_found(empty_caches):
    cfg = open_clip.get_pretrained_cfg("RN50", "openai")  # on the HF hub and at a URL
    assert pretrained.cached_file(cfg) is None
    cached = pretrained.url_cache_dir() / os.path.basename(cfg["url"])
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"weights")
    assert pretrained.cached_file(cfg) == str(cached)
    assert str(cached).startswith(str(empty_caches / "home"))


def test_cached_tag_weights_load_with_no_network_access(tmp_path):
    """A tag's weights in the HF cache of HF_HOME load in a process where any network look-up exits."""
    cfg = open_clip.get_pretrained_cfg("RN50", "openai")
    model_id = cfg["hf_hub"].rstrip("/")  # "org/repo/": open_clip's default file, its safetensors twin first
    repo = tmp_path / "hf" / "hub" / f"models--{model_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0" * 40)
    model = open_clip.create_model("RN50")
    state = {k: v.detach().half().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(snapshot / "open_clip_model.safetensors"))
    expected = float(state["visual.conv1.weight"].flatten()[7])
    code = (
        "import os, socket\n"
        "def no_network(*a, **k):\n"
        "    print('network used'); os._exit(3)\n"
        "socket.getaddrinfo = no_network\n"
        "socket.socket.connect = no_network\n"
        "from indexer.models import load_clip\n"
        "clip = load_clip('RN50:openai')\n"
        "print(clip.identity, float(clip.model.state_dict()['visual.conv1.weight'].flatten()[7]))\n"
    )
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf"), "HOME": str(tmp_path / "home")}
    env.pop("HF_HUB_CACHE", None)
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    identity, value = result.stdout.split()[-2:]
    assert identity == "RN50:openai" and float(value) == pytest.approx(expected, abs=1e-3)
