"""`reelbase serve` (the HTTP API) and `reelbase ui` (Streamlit, and the API when none answers here).

`ui` supervises its processes: it starts a local API if none answers, waits for it to be healthy,
runs Streamlit pointed at it, and stops both when Streamlit ends or the command is terminated.
"""

from __future__ import annotations

import sys

API_START_TIMEOUT_S = 180


def cmd_serve(args) -> int:
    import uvicorn

    from search.api import create_app
    from search.api.server import server_options
    from search.settings import Settings

    settings = Settings()
    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_level="info", **server_options(settings))
    return 0


def cmd_ui(args) -> int:
    import signal

    from search.settings import Settings

    api = (args.api or Settings().api_url).rstrip("/")
    server = None if api_answers(api) else _start_api(api)
    print(f"reelbase UI at http://127.0.0.1:{args.port} (API {api})", file=sys.stderr)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so the children below are stopped too
    ui = _start_streamlit(api, args.port)
    try:
        return ui.wait()
    finally:
        for child in (ui, server):
            if child is not None and child.poll() is None:
                child.terminate()
                child.wait(timeout=60)


def api_answers(api: str) -> bool:
    """Whether a reelbase API at this address answers its health check."""
    import httpx

    try:
        return httpx.get(f"{api}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _start_api(api: str):
    """`reelbase serve` at this address, once it answers; only on this machine (elsewhere it is the user's to start)."""
    import subprocess
    import time
    from urllib.parse import urlparse

    url = urlparse(api)
    if url.hostname not in ("127.0.0.1", "localhost"):
        raise ValueError(f"no reelbase API answers at {api}; start it there (`reelbase serve`) or give --api")
    print(f"starting the API at {api} (reelbase serve)", file=sys.stderr)
    server = subprocess.Popen([sys.executable, "-m", "search.cli", "serve", "--host", url.hostname,
                               "--port", str(url.port or 80)])
    deadline = time.time() + API_START_TIMEOUT_S
    while not api_answers(api):
        if server.poll() is not None or time.time() > deadline:
            server.kill()
            raise ValueError(f"the API did not start at {api}; see its messages above")
        time.sleep(0.5)
    return server


def _start_streamlit(api: str, port: int):
    """The Streamlit app in `ui/app.py`, talking to the API at this address."""
    import os
    import subprocess
    from pathlib import Path

    app = Path(__file__).parents[2] / "ui" / "app.py"
    env = {**os.environ, "REELBASE_API_URL": api}
    return subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(app), "--server.port", str(port),
                             "--server.headless", "true", "--browser.gatherUsageStats", "false"], env=env)
