"""docker-compose.yml and the Dockerfile, checked without a container engine: the file is valid
for Debian's docker-compose, everything it mounts or builds from exists, and Prometheus,
Alertmanager and Grafana get the same files the alerting tests use."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any
from xml.etree import ElementTree

import pytest
import yaml
from deploy_files import (
    ALERT_RULES,
    ALERTMANAGER_CONFIG,
    COMPOSE,
    DOCKERFILE,
    GRAFANA,
    KAFKA_POM,
    PROMETHEUS_CONFIG,
    ROOT,
    load_yaml,
)

from streams.settings import Settings

Tool = Callable[..., str]


@pytest.fixture(scope="module")
def compose_tool(system_tool: Tool) -> str:
    return system_tool("docker-compose", "docker-compose")


def _compose(tool: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool, "-f", str(COMPOSE), "--profile", "simulator", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
    )


@pytest.fixture(scope="module")
def resolved(compose_tool: str) -> dict[str, Any]:
    """The file as docker-compose resolves it (relative paths made absolute), every profile."""
    result = _compose(compose_tool, "config")
    assert result.returncode == 0, result.stderr
    config: dict[str, Any] = yaml.safe_load(result.stdout)
    return config


def _binds(service: dict[str, Any]) -> dict[str, Path]:
    """The service's bind mounts: target in the container -> host path."""
    binds = {}
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):
            if volume.get("type") == "bind":
                binds[volume["target"]] = Path(volume["source"])
            continue
        source, target, *_ = volume.split(":")
        if source.startswith(("/", ".")):
            binds[target] = Path(source)
    return binds


def _flag(service: dict[str, Any], name: str) -> str:
    command = service["command"]
    words = command.split() if isinstance(command, str) else command
    [value] = [word.split("=", 1)[1] for word in words if word.startswith(f"{name}=")]
    return str(value)


def test_docker_compose_config_accepts_the_file(compose_tool: str) -> None:
    checked = _compose(compose_tool, "config", "-q")
    assert checked.returncode == 0, checked.stderr


def test_the_services_are_all_there(resolved: dict[str, Any]) -> None:
    assert set(resolved["services"]) == {
        "kafka",
        "worker",
        "simulator",
        "prometheus",
        "alertmanager",
        "grafana",
    }


def test_every_mounted_host_path_and_build_context_exists(resolved: dict[str, Any]) -> None:
    mounted = 0
    for name, service in resolved["services"].items():
        for target, source in _binds(service).items():
            assert source.exists(), f"{name}: {source} (mounted at {target}) does not exist"
            assert source.resolve().is_relative_to(ROOT), f"{name}: {source} is outside the repo"
            mounted += 1
        if "build" in service:  # resolved: always a mapping with an absolute context
            build = service["build"]
            dockerfile = Path(build["context"]) / build.get("dockerfile", "Dockerfile")
            assert dockerfile.is_file(), f"{name}: {dockerfile} does not exist"
    assert mounted >= 5


def test_kafka_is_the_official_image_pinned_to_4x_in_kraft_mode_with_a_healthcheck(
    resolved: dict[str, Any],
) -> None:
    kafka = resolved["services"]["kafka"]
    assert re.fullmatch(r"apache/kafka:4\.\d+\.\d+", kafka["image"])
    assert "controller" in kafka["environment"]["KAFKA_PROCESS_ROLES"]
    assert kafka["healthcheck"]["test"]


def _pom_kafka_version() -> str:
    """The Kafka version CI tests (``scripts/kafka.sh`` runs the jars of this pom)."""
    root = ElementTree.parse(KAFKA_POM).getroot()
    namespace = {"pom": "http://maven.apache.org/POM/4.0.0"}
    version = root.findtext("pom:properties/pom:kafka.version", namespaces=namespace)
    assert version, f"no <kafka.version> property in {KAFKA_POM}"
    return version.strip()


def test_compose_runs_the_kafka_version_ci_tests() -> None:
    """Read from the file itself (no docker-compose needed): the image's tag is the pom's
    kafka.version, so compose users run the broker version the suite passed on."""
    image = load_yaml(COMPOSE)["services"]["kafka"]["image"]
    repository, _, tag = image.partition(":")
    assert repository == "apache/kafka"
    assert tag == _pom_kafka_version()


def test_the_worker_is_built_here_configured_with_real_settings_and_restarted(
    resolved: dict[str, Any],
) -> None:
    known = {f"ORDERWATCH_{name.upper()}" for name in Settings.model_fields}
    for name in ("worker", "simulator"):
        service = resolved["services"][name]
        unknown = {key for key in service["environment"] if key.startswith("ORDERWATCH_")} - known
        assert not unknown, f"{name}: not settings (the worker would refuse to start): {unknown}"
        assert service["restart"] in ("unless-stopped", "on-failure", "always")
    worker = resolved["services"]["worker"]
    assert Path(worker["build"]["context"]) == ROOT
    env = worker["environment"]
    assert env["ORDERWATCH_WEB_HOST"] == "0.0.0.0"
    assert env["ORDERWATCH_BROKER"] == "kafka:9092"
    assert worker["depends_on"]["kafka"]["condition"] == "service_healthy"


def test_the_simulator_is_a_profile_that_feeds_the_topics_with_the_worker_image(
    resolved: dict[str, Any],
) -> None:
    simulator = resolved["services"]["simulator"]
    assert simulator["profiles"] == ["simulator"]
    assert simulator["image"] == resolved["services"]["worker"]["image"]
    command = " ".join(simulator["command"])
    assert "orderwatch simulate --live --orders 1000000 | orderwatch send -" in command


def test_prometheus_gets_the_shipped_config_and_the_rules_the_tests_use(
    resolved: dict[str, Any],
) -> None:
    prometheus = resolved["services"]["prometheus"]
    binds = _binds(prometheus)
    config_target = PurePosixPath(_flag(prometheus, "--config.file"))
    assert binds[str(config_target)] == PROMETHEUS_CONFIG
    config = load_yaml(PROMETHEUS_CONFIG)
    for rule_file in config["rule_files"]:
        assert binds[str(config_target.parent / rule_file)] == ALERT_RULES
    # It scrapes the worker's web port and alerts the compose Alertmanager.
    [orderwatch] = [job for job in config["scrape_configs"] if job["job_name"] == "orderwatch"]
    worker_port = resolved["services"]["worker"]["environment"]["ORDERWATCH_WEB_PORT"]
    assert orderwatch["static_configs"][0]["targets"] == [f"worker:{worker_port}"]
    [manager] = config["alerting"]["alertmanagers"]
    assert manager["static_configs"][0]["targets"] == ["alertmanager:9093"]


def test_alertmanager_gets_the_shipped_config(resolved: dict[str, Any]) -> None:
    alertmanager = resolved["services"]["alertmanager"]
    assert _binds(alertmanager)[_flag(alertmanager, "--config.file")] == ALERTMANAGER_CONFIG


def test_grafana_gets_the_provisioning_and_the_dashboards_it_names(
    resolved: dict[str, Any],
) -> None:
    binds = _binds(resolved["services"]["grafana"])
    assert binds["/etc/grafana/provisioning"] == GRAFANA / "provisioning"
    [provider] = load_yaml(GRAFANA / "provisioning" / "dashboards" / "orderwatch.yml")["providers"]
    assert binds[provider["options"]["path"]] == GRAFANA / "dashboards"
    [datasource] = load_yaml(GRAFANA / "provisioning" / "datasources" / "prometheus.yml")[
        "datasources"
    ]
    assert datasource["url"] == "http://prometheus:9090"


# ---- Dockerfile ---------------------------------------------------------------------------------


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    instructions = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    return instructions


def test_the_dockerfile_installs_the_project_with_pip_install_dot() -> None:
    runs = [args for keyword, args in _instructions() if keyword == "RUN"]
    assert any(re.search(r"\bpip install \.(\s|$)", run) for run in runs), runs


def test_the_dockerfile_runs_as_a_non_root_user() -> None:
    users = [args for keyword, args in _instructions() if keyword == "USER"]
    assert users, "no USER: the container would run as root"
    assert users[-1].split(":")[0] not in ("root", "0")


def test_the_dockerfile_checks_health_on_ready() -> None:
    [check] = [args for keyword, args in _instructions() if keyword == "HEALTHCHECK"]
    assert "/ready" in check
    assert "CMD" in check


def test_the_image_listens_on_every_interface_and_uses_real_settings() -> None:
    known = {f"ORDERWATCH_{name.upper()}" for name in Settings.model_fields}
    env = " ".join(args for keyword, args in _instructions() if keyword == "ENV")
    assert "ORDERWATCH_WEB_HOST=0.0.0.0" in env
    assert set(re.findall(r"ORDERWATCH_\w+", env)) <= known


def test_the_dockerignore_keeps_the_context_to_what_pip_install_needs() -> None:
    ignore = (ROOT / ".dockerignore").read_text().split()
    assert "*" in ignore
    copied = [args for keyword, args in _instructions() if keyword == "COPY"]
    for source in ("pyproject.toml", "README.md", "streams"):
        assert any(source in args for args in copied)
        assert f"!{source}" in ignore or f"!{source}/" in ignore
