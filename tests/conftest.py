"""Shared fixtures: a real Milvus server for tests marked `server`."""

import pytest


@pytest.fixture(scope="session")
def milvus_server_uri(tmp_path_factory):
    """Start the Milvus 2.3 standalone of the `milvus` package once per session; yield its URI."""
    milvus = pytest.importorskip("milvus", reason="the `milvus` package (Milvus server) is missing")
    server = milvus.MilvusServer()  # picks free ports from 19530 up; starts in seconds
    server.set_base_dir(str(tmp_path_factory.mktemp("milvus-server")))
    server.config.set("proxy.timeTickInterval", 50)  # ms; strong reads wait a tick (default 200)
    try:
        server.start()
    except Exception as e:  # any start failure means: no server here
        server.stop()
        pytest.skip(f"the Milvus server from the `milvus` package did not start: {e}")
    yield f"http://127.0.0.1:{server.listen_port}"
    server.stop()
    server.cleanup()  # its unpacked binaries take ~150 MB
