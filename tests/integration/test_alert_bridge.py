"""``orderwatch alerts`` against a real Alertmanager (Debian ``prometheus-alertmanager``).

A worker in event-clock mode decides the breaches: two orders placed ten days ago miss their
fulfillment deadline once the clock is advanced past it. The bridge must open one alert per
breach in Alertmanager (checked through its API, ``GET /api/v2/alerts``) with the breach's labels
and its recommendation's actions, re-send it, and close it when the order recovers (a late
``tracking.submitted``, whose ``deadline.resolved`` the worker emits). One order recovers while
the bridge is stopped: the restarted bridge must resolve its alert and keep the other open, once.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import pytest
from deploy_files import ALERTMANAGER_CONFIG
from test_alerting import Server, _get_json, _poll
from worker_harness import (
    Output,
    WorkerRun,
    committed_all,
    consume_outputs,
    free_port,
    produce_lines,
    run,
    stop_process,
)

from streams.core.dates import format_utc

pytestmark = pytest.mark.broker

BREACH_ALERT = "OrderDeadlineBreached"
RECOMMENDATION_ALERT = "OrderwatchCriticalRecommendation"
#: The bridge's resend interval: its alerts end 4 of them after each send, so an alert of a
#: stopped bridge stays active in Alertmanager for the length of the restart below.
RESEND = 10.0
NOW = datetime.now(UTC).replace(microsecond=0)
PLACED = NOW - timedelta(days=10)
#: Past both orders' fulfillment deadline (released 8 h after placing, then 5 days).
BREACHED_BY = PLACED + timedelta(days=6)


def _line(kind: str, at: datetime, order: str, **fields: Any) -> bytes:
    event = {
        "event_id": f"e-{kind}-{order}",
        "type": kind,
        "occurred_at": format_utc(at),
        "merchant_id": "m-bridge",
        "order_id": order,
    }
    return json.dumps(event | fields).encode()


def placed(order: str, at: datetime = PLACED) -> bytes:
    return _line(
        "order.placed",
        at,
        order,
        sku="sku-1",
        quantity=1,
        unit_price="10.00",
        shipping_price="1.00",
        currency="USD",
        destination_country="US",
    )


def tracked(order: str, at: datetime) -> bytes:
    return _line(
        "tracking.submitted", at, order, carrier="YunExpress", tracking_number=f"YT{order[-1]}01"
    )


@dataclass
class Bridge:
    """``orderwatch alerts`` as a process, for the worker's topics, its log in ``log``."""

    worker: WorkerRun
    alertmanager_url: str
    log: Path
    process: subprocess.Popen[bytes] | None = None
    _out: IO[bytes] | None = field(default=None, repr=False)

    def start(self) -> None:
        env = self.worker.env() | {
            "ORDERWATCH_ALERTMANAGER_URL": self.alertmanager_url,
            "ORDERWATCH_ALERT_RESEND_INTERVAL": str(RESEND),
            "ORDERWATCH_LOG_LEVEL": "info",
        }
        self._out = self.log.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "streams", "alerts"],
            env=env,
            stdout=self._out,
            stderr=subprocess.STDOUT,
        )
        started = self.text().count("following the topics") + 1

        def following() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"the bridge exited at start:\n{self.text()[-4000:]}")
            return self.text().count("following the topics") >= started

        _poll("the bridge to follow the topics", following, 90)

    def stop(self) -> None:
        """SIGTERM: the bridge stops cleanly, with status 0."""
        stop_process(self.process)
        if self._out is not None:
            self._out.close()
            self._out = None
        status = None if self.process is None else self.process.returncode
        assert status in (None, 0), f"the bridge exited with {status}:\n{self.text()[-4000:]}"

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@dataclass
class Setup:
    worker: WorkerRun
    alertmanager: Server
    bridge: Bridge

    def alerts(self, name: str, **labels: str) -> list[dict[str, Any]]:
        """The alerts Alertmanager has active (API v2) called ``name`` with ``labels``."""
        matchers = [f'alertname="{name}"', *(f'{k}="{v}"' for k, v in labels.items())]
        query = urllib.parse.urlencode([("filter", m) for m in matchers])
        found: list[dict[str, Any]] = _get_json(f"{self.alertmanager.url}/api/v2/alerts?{query}")
        return found

    def wait(self, what: str, probe: Callable[[], Any], timeout: float = 60) -> Any:
        try:
            return _poll(what, probe, timeout)
        except AssertionError as error:
            raise AssertionError(
                f"{error}\n---- bridge:\n{self.bridge.text()[-4000:]}\n---- alertmanager:\n"
                f"{self.alertmanager.log_tail()}\n---- worker:\n{self.worker.log_text()[-3000:]}"
            ) from None

    def outputs(self, until: Callable[[list[Output]], bool]) -> list[Output]:
        return run(
            consume_outputs(
                self.worker.bootstrap, self.worker.prefix, until=until, timeout=60, settle=0.5
            )
        )

    def breach_of(self, order: str) -> Output:
        outputs = self.outputs(lambda got: any(_breach(o, order) for o in got))
        [breach] = [o for o in outputs if _breach(o, order)]
        return breach

    def recover(self, order: str, at: datetime) -> None:
        """The order's late tracking, and its breach's resolution from the worker."""
        run(produce_lines(self.worker.bootstrap, self.worker.prefix, [tracked(order, at)]))
        breach = self.breach_of(order)
        committed_all(self.worker)
        self.worker.advance_clock(format_utc(at + timedelta(hours=1)))
        outputs = self.outputs(lambda got: any(_resolution(o, breach["breach_id"]) for o in got))
        [resolved] = [o for o in outputs if _resolution(o, breach["breach_id"])]
        assert resolved["resolution"] == "met_late"
        assert resolved["resolved_at"] == format_utc(at)


def _breach(output: Output, order: str) -> bool:
    return bool(
        output["type"] == "deadline.breached"
        and output["order_id"] == order
        and output["deadline"] == "fulfillment"
    )


def _resolution(output: Output, breach_id: str) -> bool:
    return bool(output["type"] == "deadline.resolved" and output["breach_id"] == breach_id)


@pytest.fixture(scope="module")
def setup(
    kafka_bootstrap: str,
    tmp_path_factory: pytest.TempPathFactory,
    system_tool: Callable[..., str],
) -> Iterator[Setup]:
    alertmanager_bin = system_tool(
        "prometheus-alertmanager", "prometheus-alertmanager", "alertmanager"
    )
    workdir = tmp_path_factory.mktemp("alert-bridge")
    worker = WorkerRun(kafka_bootstrap, workdir, clock="event")
    # Each stop runs even when one before it fails (a bridge that exited 1 fails its stop).
    with contextlib.ExitStack() as stops:
        stops.callback(worker.stop)
        worker.start()
        port = free_port()
        alertmanager = Server.start(
            "alertmanager",
            [
                alertmanager_bin,
                f"--config.file={ALERTMANAGER_CONFIG}",
                f"--storage.path={workdir / 'alertmanager'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--cluster.listen-address=",  # no HA gossip port
            ],
            port,
            workdir / "alertmanager.log",
        )
        stops.callback(alertmanager.stop)
        bridge = Bridge(worker, alertmanager.url, workdir / "bridge.log")
        stops.callback(bridge.stop)
        bridge.start()
        yield Setup(worker, alertmanager, bridge)


def test_breaches_open_close_and_survive_a_restart(setup: Setup) -> None:
    worker, bridge = setup.worker, setup.bridge
    run(produce_lines(worker.bootstrap, worker.prefix, [placed("o-a"), placed("o-b")]))
    committed_all(worker)
    worker.advance_clock(format_utc(BREACHED_BY))

    # Opened: one alert per breach, with the breach's labels and its recommendation's actions.
    setup.wait(
        "the alerts of o-a and o-b",
        lambda: setup.alerts(BREACH_ALERT, order="o-a") and setup.alerts(BREACH_ALERT, order="o-b"),
    )
    breach = setup.breach_of("o-b")
    outputs = setup.outputs(lambda got: any(o.get("reason") == "FULFILLMENT_OVERDUE" for o in got))
    [overdue] = [
        o for o in outputs if o.get("reason") == "FULFILLMENT_OVERDUE" and o["order_id"] == "o-b"
    ]
    assert overdue["evidence"]["breach_id"] == breach["breach_id"]
    [alert] = setup.wait(
        "the actions of o-b's alert",
        lambda: [
            a for a in setup.alerts(BREACH_ALERT, order="o-b") if a["annotations"].get("actions")
        ],
    )
    assert alert["labels"] == {
        "alertname": BREACH_ALERT,
        "severity": "critical",
        "merchant": "m-bridge",
        "order": "o-b",
        "deadline": "fulfillment",
        "rule": "wish.fulfillment",
    }
    annotations = alert["annotations"]
    assert annotations["actions"].splitlines() == [
        f"{n}. {a['code']}: {a['detail']}" for n, a in enumerate(overdue["actions"], start=1)
    ]
    assert annotations["breach_id"] == breach["breach_id"]
    assert annotations["recommendation_id"] == overdue["recommendation_id"]
    assert annotations["description"] == breach["consequence"]
    assert annotations["summary"].startswith(
        "Order o-b of merchant m-bridge missed its fulfillment"
    )
    assert annotations["runbook_url"] == "docs/operations.md#order-alerts"
    assert alert["status"]["state"] == "active"
    assert [r["name"] for r in alert["receivers"]] == ["orderwatch-critical"]
    assert alert["startsAt"].startswith(breach["detected_at"].removesuffix("Z"))

    # Re-sent: Alertmanager's endsAt moves on with each send.
    first_end = alert["endsAt"]
    setup.wait(
        "a re-send of o-b's alert",
        lambda: setup.alerts(BREACH_ALERT, order="o-b")[0]["endsAt"] > first_end,
        RESEND * 3,
    )

    # o-a recovers while the bridge is stopped.
    bridge.stop()
    setup.recover("o-a", BREACHED_BY + timedelta(hours=1))
    # Still active in Alertmanager (it ends 4 resend intervals after the last send): only the
    # restarted bridge can resolve it now.
    [stale] = setup.alerts(BREACH_ALERT, order="o-a")
    expires = datetime.fromisoformat(stale["endsAt"].replace("Z", "+00:00"))
    bridge.start()
    assert "1 breach and 0 recommendation alerts open, 1 closed" in bridge.text()
    setup.wait("o-a's alert to close", lambda: setup.alerts(BREACH_ALERT, order="o-a") == [], 30)
    assert datetime.now(UTC) < expires - timedelta(seconds=1), "it expired, no one resolved it"
    assert "resolving 1 alert(s) that Alertmanager still has active" in bridge.text()
    # No duplicate: the other alert is the same one, still open, once.
    [again] = setup.alerts(BREACH_ALERT, order="o-b")
    assert again["fingerprint"] == alert["fingerprint"]
    assert again["startsAt"] == alert["startsAt"]
    assert again["status"]["state"] == "active"

    # o-b recovers while the bridge follows the topics: its alert closes live.
    setup.recover("o-b", BREACHED_BY + timedelta(hours=2))
    setup.wait("o-b's alert to close", lambda: setup.alerts(BREACH_ALERT, order="o-b") == [], 60)
    closed = "closed OrderDeadlineBreached {severity=critical, merchant=m-bridge, order=o-b, "
    assert closed in bridge.text()
    assert bridge.text().split(closed, 1)[1].splitlines()[0].endswith("} (met_late)")
    assert (
        bridge.text().count(
            "opened OrderDeadlineBreached {severity=critical, merchant=m-bridge, order=o-b"
        )
        == 1
    )


def test_a_critical_recommendation_is_an_alert_until_its_respond_by(setup: Setup) -> None:
    """Runs after the breaches' test (the clock only goes forward): a counterfeit complaint
    filed half an hour ago, on an order placed two hours ago."""
    worker = setup.worker
    filed = NOW - timedelta(minutes=30)
    complaint = _line(
        "complaint.filed",
        filed,
        "o-c",
        complaint_id="c-bridge",
        reason="counterfeit",
        message="not the brand it says",
    )
    lines = [placed("o-c", NOW - timedelta(hours=2)), complaint]
    run(produce_lines(worker.bootstrap, worker.prefix, lines))
    committed_all(worker)
    worker.advance_clock(format_utc(NOW - timedelta(minutes=1)))

    def counterfeit(output: Output) -> bool:
        return bool(output.get("reason") == "COMPLAINT_COUNTERFEIT")

    [advice] = [o for o in setup.outputs(lambda got: any(map(counterfeit, got))) if counterfeit(o)]
    [alert] = setup.wait(
        "the counterfeit recommendation's alert",
        lambda: setup.alerts(RECOMMENDATION_ALERT, order="o-c"),
    )
    assert alert["labels"] == {
        "alertname": RECOMMENDATION_ALERT,
        "severity": "critical",
        "merchant": "m-bridge",
        "reason": "COMPLAINT_COUNTERFEIT",
        "rule": advice["rule"],
        "scope": "order",
        "subject": "o-c",
        "order": "o-c",
        "recommendation": advice["recommendation_id"],
    }
    assert alert["annotations"]["respond_by"] == advice["respond_by"]
    assert alert["annotations"]["actions"].splitlines() == [
        f"{n}. {a['code']}: {a['detail']}" for n, a in enumerate(advice["actions"], start=1)
    ]
    assert alert["endsAt"] <= advice["respond_by"].replace("Z", "")
    assert "opened OrderwatchCriticalRecommendation" in setup.bridge.text()
