"""The deploy files agree with the code: docker-compose.yml, the Dockerfile, Settings and the CLI.

Docker does not run here, so the stack itself is exercised by the `stack` tests (skipped without
an engine); these checks catch what breaks a deploy silently: a typo in a REELBASE_ variable,
a package the image leaves out, a URL pointing at no service, an unpinned image.
"""

import json
import re
from pathlib import Path

import pytest
import yaml

from search.cli.parser import build_parser
from search.cli.servers import cmd_serve
from search.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def names_on_network(service: dict, name: str) -> set[str]:
    aliases = (service.get("networks") or {}).get("default", {}) or {}
    return {name, *aliases.get("aliases", [])}


def test_milvus_services_are_pinned_and_health_checked():
    for name in ("etcd", "minio", "standalone"):
        image = SERVICES[name]["image"]
        assert ":" in image and not image.endswith(":latest"), image
        assert SERVICES[name]["healthcheck"]["test"]
    assert {d: c["condition"] for d, c in SERVICES["standalone"]["depends_on"].items()} == {
        "etcd": "service_healthy", "minio": "service_healthy"}


@pytest.mark.parametrize("api", ["api", "api-gpu"])
def test_the_api_finds_milvus_and_listens_where_the_ui_looks(api):
    service = SERVICES[api]
    env = service["environment"]
    milvus = re.fullmatch(r"http://([\w-]+):(\d+)", env["REELBASE_MILVUS_URI"])
    assert milvus and milvus[1] in SERVICES and f":{milvus[2]}" in " ".join(SERVICES[milvus[1]]["ports"])
    assert service["depends_on"][milvus[1]]["condition"] == "service_healthy"
    ui = re.fullmatch(r"http://([\w-]+):(\d+)", SERVICES["ui"]["environment"]["REELBASE_API_URL"])
    assert ui[1] in names_on_network(service, api)
    args = build_parser().parse_args(service["command"][1:])
    assert (args.host, str(args.port)) == ("0.0.0.0", ui[2])
    assert any(p.endswith(f":{ui[2]}") for p in service["ports"]) and service["healthcheck"]["test"]


def test_the_stack_and_the_image_serve_the_api_through_reelbase_serve():
    """`reelbase serve` is what applies the read deadlines to slow clients (search/api/server.py)."""
    image_command = json.loads(re.search(r"^CMD (\[.*\])$", DOCKERFILE, re.M)[1])
    for command in (SERVICES["api"]["command"], SERVICES["api-gpu"]["command"], image_command):
        assert command[0] == "reelbase" and build_parser().parse_args(command[1:]).func is cmd_serve
    assert {"REELBASE_HEADER_TIMEOUT_S", "REELBASE_BODY_TIMEOUT_S"} <= set(SERVICES["api"]["environment"])


def test_every_reelbase_variable_is_a_setting():
    fields = {f"REELBASE_{name.upper()}" for name in Settings.model_fields}
    for name, service in SERVICES.items():
        used = {k for k in (service.get("environment") or {}) if k.startswith("REELBASE_")}
        assert used <= fields, f"{name}: {used - fields} are not settings"
    assert set(re.findall(r"REELBASE_\w+", DOCKERFILE)) <= fields


def test_gpu_profile_reserves_nvidia_gpus_and_cpu_profile_does_not():
    gpu, cpu = SERVICES["api-gpu"], SERVICES["api"]
    assert gpu["profiles"] == ["gpu"] and cpu["profiles"] == ["cpu"]
    (device,) = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and "gpu" in device["capabilities"]
    assert gpu["environment"]["REELBASE_DEVICE"] == "cuda" and cpu["environment"]["REELBASE_DEVICE"] == "cpu"
    assert "deploy" not in cpu


def test_library_and_model_weights_live_on_volumes():
    data_dir = re.search(r"REELBASE_DATA_DIR=(\S+)", DOCKERFILE)[1]
    for name in ("api", "api-gpu", "ui"):
        targets = {v.rsplit(":", 1)[1] for v in SERVICES[name]["volumes"]}
        assert {data_dir, "/models"} <= targets


def test_the_image_holds_every_package_and_runs_the_ui_from_it():
    tomllib = pytest.importorskip("tomllib", reason="tomllib is Python 3.11+")
    included = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {pattern.removesuffix("*") for pattern in included}
    copied = set(re.findall(r"^COPY (\w+) \1$", DOCKERFILE, re.M))
    assert copied == packages
    script = SERVICES["ui"]["command"][SERVICES["ui"]["command"].index("run") + 1]
    assert script.startswith("/app/") and (ROOT / script.removeprefix("/app/")).is_file()
    assert "WORKDIR /app" in DOCKERFILE
