"""`reelbase ui` as a user runs it: it starts the API when none answers, then the UI; stopping it stops both."""

import os
import signal
import subprocess
import sys
import time

import httpx

from tests.fixtures import free_port


def _up(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_reelbase_ui_starts_the_api_and_the_ui(tmp_path):
    api, ui = f"http://127.0.0.1:{free_port()}", free_port()
    env = {**os.environ, "REELBASE_DATA_DIR": str(tmp_path / "data"), "REELBASE_DEVICE": "cpu"}
    proc = subprocess.Popen([sys.executable, "-m", "search.cli", "ui", "--port", str(ui), "--api", api], env=env)
    try:
        deadline = time.time() + 180
        while not (_up(f"{api}/health") and _up(f"http://127.0.0.1:{ui}/_stcore/health")):
            assert proc.poll() is None and time.time() < deadline, "reelbase ui did not come up"
            time.sleep(0.5)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=90)
    time.sleep(1)
    assert not _up(f"{api}/health") and not _up(f"http://127.0.0.1:{ui}/_stcore/health")


def test_reelbase_ui_refuses_a_remote_api_that_does_not_answer(tmp_path):
    result = subprocess.run([sys.executable, "-m", "search.cli", "ui", "--api", "http://192.0.2.1:8000"],
                            capture_output=True, text=True, timeout=120, env={**os.environ,
                                                                              "REELBASE_DATA_DIR": str(tmp_path)})
    assert result.returncode == 2 and "no reelbase API answers at http://192.0.2.1:8000" in result.stderr
