"""Shared fixtures: real Milvus servers for tests marked `server`.

- `milvus_server_uri`: the Milvus 2.3 standalone of the `milvus` package, which runs here.
- `stack_milvus_uri`: the Milvus of `docker-compose.yml` (etcd, MinIO, Milvus at the stack's
  pinned versions) brought up with testcontainers; skipped with the reason where no Docker
  engine answers.
"""

from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.fixtures import free_port, milvus_server

ROOT = Path(__file__).resolve().parents[1]
STACK_MILVUS = ["etcd", "minio", "standalone"]  # the services of docker-compose.yml that make up Milvus


@pytest.fixture(scope="session")
def milvus_server_uri(tmp_path_factory):
    """Start the Milvus 2.3 standalone of the `milvus` package once per session; yield its URI."""
    pytest.importorskip("milvus", reason="the `milvus` package (Milvus server) is missing")
    with ExitStack() as stack:
        try:
            uri = stack.enter_context(milvus_server(tmp_path_factory.mktemp("milvus-server")))
        except Exception as e:  # any start failure means: no server here
            pytest.skip(f"the Milvus server from the `milvus` package did not start: {e}")
        yield uri


def docker_answers() -> bool:
    """Return whether a Docker engine answers a ping within two seconds."""
    try:
        import docker

        client = docker.from_env(timeout=2)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # no socket, no daemon, no permission: all mean no Docker here
        return False


NO_DOCKER = "no Docker engine answers here; testcontainers needs one to run the stack's Milvus"


@pytest.fixture(scope="session")
def stack_milvus_uri(tmp_path_factory):
    """Bring up docker-compose.yml's Milvus (its own project, ports and volumes); yield its URI."""
    if not docker_answers():
        pytest.skip(NO_DOCKER)
    from testcontainers.compose import DockerCompose

    with pytest.MonkeyPatch.context() as env:
        # A project of its own, so a developer's running stack is neither reused nor taken down.
        env.setenv("COMPOSE_PROJECT_NAME", f"reelbase-test-{free_port()}")
        env.setenv("DOCKER_VOLUME_DIRECTORY", str(tmp_path_factory.mktemp("stack")))
        env.setenv("MILVUS_PORT", str(free_port()))
        env.setenv("MILVUS_HTTP_PORT", str(free_port()))
        compose = DockerCompose(ROOT, "docker-compose.yml", services=STACK_MILVUS, wait=True)
        with compose:
            host, port = compose.get_service_host_and_port("standalone", 19530)
            yield f"http://{host}:{port}"
