"""The alerting pipeline end to end, with the shipped files and no stand-ins.

A worker (wall clock) on the real broker is fed orders placed 30 days ago, whose deadlines have
all passed, and one message that is not JSON. A native Prometheus (Debian ``prometheus``) runs
the shipped ``deploy/prometheus/prometheus.yml`` (only its targets and intervals changed) with
the shipped ``alerts.yml``, scraping that worker and alerting a native Alertmanager (Debian
``prometheus-alertmanager``) that runs the shipped ``alertmanager.yml``. The breaches alert must
reach Alertmanager's API with its labels and its route; then every query of the Grafana
dashboard must return data from that Prometheus.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from deploy_files import (
    ALERT_RULES,
    ALERTMANAGER_CONFIG,
    PROMETHEUS_CONFIG,
    alert_rules,
    dashboard_queries,
    load_yaml,
)
from worker_harness import WorkerRun, free_port, produce_lines, run, stop_process

pytestmark = pytest.mark.broker

ORDERS = 5
PLACED_AGO = timedelta(days=30)


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


def _poll(what: str, probe: Callable[[], Any], timeout: float) -> Any:
    """``probe()`` until it returns something true (a server still starting counts as not yet)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            found = probe()
        except (OSError, ValueError):
            found = None
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.5)


@dataclass
class Server:
    """A native Prometheus or Alertmanager, its output in ``log``."""

    name: str
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    @classmethod
    def start(cls, name: str, command: list[str], port: int, log: Path) -> Server:
        with log.open("wb") as out:
            process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        server = cls(name, f"http://127.0.0.1:{port}", process, log)

        def ready() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"{name} exited at start:\n{server.log_tail()}")
            with urllib.request.urlopen(f"{server.url}/-/ready", timeout=5) as response:
                return bool(response.status == 200)

        try:
            _poll(f"{name} to be ready", ready, 60)
        except BaseException:
            server.stop()
            raise
        return server

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        stop_process(self.process)


@dataclass
class Stack:
    worker: WorkerRun
    prometheus: Server
    alertmanager: Server

    def query(self, expr: str) -> list[dict[str, Any]]:
        url = f"{self.prometheus.url}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        try:
            answer = _get_json(url)
        except urllib.error.HTTPError as error:
            raise AssertionError(f"Prometheus refused {expr!r}: {error.read()!r}") from None
        assert answer["status"] == "success", answer
        result: list[dict[str, Any]] = answer["data"]["result"]
        return result

    def alerts(self, name: str) -> list[dict[str, Any]]:
        """Alertmanager's alerts called ``name`` (API v2)."""
        query = urllib.parse.urlencode({"filter": f'alertname="{name}"'})
        alerts: list[dict[str, Any]] = _get_json(f"{self.alertmanager.url}/api/v2/alerts?{query}")
        return alerts

    def logs(self) -> str:
        return "\n".join(
            f"---- {part}:\n{text}"
            for part, text in (
                ("prometheus", self.prometheus.log_tail()),
                ("alertmanager", self.alertmanager.log_tail()),
                ("worker", self.worker.log_text()[-4000:]),
            )
        )


def prometheus_config(
    worker_port: int, prometheus_port: int, alertmanager_port: int
) -> dict[str, Any]:
    """The shipped prometheus.yml with local targets and 1 s intervals; its rules untouched."""
    config: dict[str, Any] = load_yaml(PROMETHEUS_CONFIG)
    rule_files = [PROMETHEUS_CONFIG.parent / name for name in config["rule_files"]]
    assert rule_files == [ALERT_RULES]
    config["rule_files"] = [str(path) for path in rule_files]
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    [manager] = config["alerting"]["alertmanagers"]
    manager["static_configs"] = [{"targets": [f"127.0.0.1:{alertmanager_port}"]}]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    jobs["orderwatch"]["static_configs"] = [{"targets": [f"127.0.0.1:{worker_port}"]}]
    jobs["prometheus"]["static_configs"] = [{"targets": [f"127.0.0.1:{prometheus_port}"]}]
    return config


def overdue_orders(now: datetime) -> list[bytes]:
    """Orders placed 30 days ago (every deadline of theirs has passed) and a line of garbage."""
    placed = (now - PLACED_AGO).strftime("%Y-%m-%dT%H:%M:%SZ")
    lines = [
        json.dumps(
            {
                "event_id": f"e-alert-{i}",
                "type": "order.placed",
                "occurred_at": placed,
                "merchant_id": "m-001",
                "order_id": f"o-alert-{i}",
                "sku": "sku-001",
                "quantity": 1,
                "unit_price": "10.00",
                "shipping_price": "1.00",
                "currency": "USD",
                "destination_country": "US",
            }
        ).encode()
        for i in range(ORDERS)
    ]
    return [*lines, b"this is not JSON"]


@pytest.fixture(scope="module")
def stack(
    kafka_bootstrap: str,
    tmp_path_factory: pytest.TempPathFactory,
    system_tool: Callable[..., str],
) -> Iterator[Stack]:
    prometheus_bin = system_tool("prometheus", "prometheus")
    alertmanager_bin = system_tool(
        "prometheus-alertmanager", "prometheus-alertmanager", "alertmanager"
    )
    workdir = tmp_path_factory.mktemp("alerting")
    worker = WorkerRun(kafka_bootstrap, workdir, clock="wall")
    servers: list[Server] = []
    try:
        worker.start()
        am_port, prom_port = free_port(), free_port()
        servers.append(
            Server.start(
                "alertmanager",
                [
                    alertmanager_bin,
                    f"--config.file={ALERTMANAGER_CONFIG}",
                    f"--storage.path={workdir / 'alertmanager'}",
                    f"--web.listen-address=127.0.0.1:{am_port}",
                    "--cluster.listen-address=",  # no HA gossip port
                ],
                am_port,
                workdir / "alertmanager.log",
            )
        )
        config = workdir / "prometheus.yml"
        config.write_text(yaml.safe_dump(prometheus_config(worker.web_port, prom_port, am_port)))
        servers.append(
            Server.start(
                "prometheus",
                [
                    prometheus_bin,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={workdir / 'prometheus'}",
                    f"--web.listen-address=127.0.0.1:{prom_port}",
                ],
                prom_port,
                workdir / "prometheus.log",
            )
        )
        stack = Stack(worker, prometheus=servers[1], alertmanager=servers[0])
        # The counters must be scraped at 0 before the breaches: increase() needs the rise.
        _poll(
            "Prometheus to scrape the worker",
            lambda: stack.query('orderwatch_breaches_total{job="orderwatch"}'),
            60,
        )
        run(produce_lines(kafka_bootstrap, worker.prefix, overdue_orders(datetime.now(UTC))))
        yield stack
    finally:
        for server in reversed(servers):
            server.stop()
        worker.stop()


def _firing(stack: Stack, name: str, **labels: str) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        for alert in stack.alerts(name):
            if all(alert["labels"].get(k) == v for k, v in labels.items()):
                return alert
        return None

    try:
        found: dict[str, Any] = _poll(f"{name} {labels} in Alertmanager", probe, 120)
    except AssertionError as error:
        raise AssertionError(f"{error}\n{stack.logs()}") from None
    return found


def test_breaches_reach_alertmanager_with_their_labels_and_route(stack: Stack) -> None:
    alert = _firing(stack, "OrderwatchBreachesRising", deadline="fulfillment")
    assert alert["labels"] == {
        "alertname": "OrderwatchBreachesRising",
        "deadline": "fulfillment",
        "job": "orderwatch",
        "severity": "warning",
    }
    assert alert["status"]["state"] == "active"
    assert alert["annotations"]["runbook_url"] == "docs/operations.md#orderwatchbreachesrising"
    assert alert["annotations"]["summary"].endswith("fulfillment deadlines breached in 15 minutes")
    assert [receiver["name"] for receiver in alert["receivers"]] == ["orderwatch-warning"]
    # The worker really decided them: the alert follows its counter.
    assert stack.worker.metric("orderwatch_breaches_total", deadline="fulfillment") == ORDERS


def test_dead_letters_reach_alertmanager(stack: Stack) -> None:
    alert = _firing(stack, "OrderwatchDeadLetters", reason="not_json")
    assert alert["labels"]["topic"] == f"{stack.worker.prefix}orders"
    assert alert["labels"]["severity"] == "warning"
    assert [receiver["name"] for receiver in alert["receivers"]] == ["orderwatch-warning"]


def test_no_critical_alert_fires_for_a_healthy_worker(stack: Stack) -> None:
    _firing(stack, "OrderwatchBreachesRising", deadline="fulfillment")
    critical = [
        alert
        for alert in _get_json(f"{stack.alertmanager.url}/api/v2/alerts")
        if alert["labels"].get("severity") == "critical"
    ]
    assert critical == []


def test_every_metric_the_alerts_use_is_one_the_worker_exposes(stack: Stack) -> None:
    _firing(stack, "OrderwatchBreachesRising", deadline="fulfillment")
    exposed = set(_get_json(f"{stack.prometheus.url}/api/v1/label/__name__/values")["data"])
    used = {
        name
        for rule in alert_rules()
        for name in re.findall(r"\b(orderwatch_\w+|up)\b", rule["expr"])
    }
    assert used - exposed == set()


def test_every_dashboard_query_returns_data(stack: Stack) -> None:
    # After the breaches fired, so the detection lag histogram has observations in its window.
    _firing(stack, "OrderwatchBreachesRising", deadline="fulfillment")
    queries = dashboard_queries()

    def empty() -> list[str]:
        return [f"{title}: {expr}" for title, expr in queries if not stack.query(expr)]

    deadline = time.monotonic() + 30  # rate() over a fresh series needs a few scrapes
    missing = empty()
    while missing and time.monotonic() < deadline:
        time.sleep(1)
        missing = empty()
    assert missing == [], "queries with no data:\n" + "\n".join(missing)
