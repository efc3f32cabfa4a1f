"""Shared fixtures: a real Milvus server for tests marked `server`."""

import pytest

from tests.fixtures import free_port as _free_port


@pytest.fixture(scope="session")
def milvus_server_uri(tmp_path_factory):
    """Start the Milvus 2.3 standalone of the `milvus` package once per session; yield its URI."""
    milvus = pytest.importorskip("milvus", reason="the `milvus` package (Milvus server) is missing")
    base = tmp_path_factory.mktemp("milvus-server")
    # The package leaves embedded etcd on fixed ports (2379, 2380); free ones let two sessions
    # (or a developer's own server) run side by side. Milvus reads ETCD_CONFIG_PATH from the env.
    etcd, peer = f"http://127.0.0.1:{_free_port()}", f"http://127.0.0.1:{_free_port()}"
    (base / "etcd.yaml").write_text(
        f"listen-client-urls: {etcd}\nadvertise-client-urls: {etcd}\nlisten-peer-urls: {peer}\n"
        f"initial-advertise-peer-urls: {peer}\ninitial-cluster: default={peer}\n")
    server = milvus.MilvusServer(wait_for_started=False)  # other ports: free ones from 19530 up
    server.set_base_dir(str(base))
    server.config.update(etcd_port=int(etcd.rsplit(":", 1)[1]))
    server.config.set("proxy.timeTickInterval", 50)  # ms; strong reads wait a tick (default 200)
    try:
        with pytest.MonkeyPatch.context() as env:
            env.setenv("ETCD_CONFIG_PATH", str(base / "etcd.yaml"))
            server.start()
        server.wait_started(timeout=90_000)  # ms; it takes ~10 s
    except Exception as e:  # any start failure means: no server here
        server.stop()
        pytest.skip(f"the Milvus server from the `milvus` package did not start: {e}")
    yield f"http://127.0.0.1:{server.listen_port}"
    server.stop()
    server.cleanup()  # its unpacked binaries take ~150 MB
