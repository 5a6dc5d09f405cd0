"""The seller's console end to end: two workers of one group on the broker, the page in headless
Chromium (Debian's chromium, driven through chromedriver, :mod:`chromium_driver`), the simulator's
events sent with ``orderwatch send``.

The page is opened before anything is decided: it asks for the token, then shows its empty states
and goes live. The simulator's events then cause breaches, which must appear on the page as the
workers decide them (read independently from Kafka for the comparison). The other worker's feed
serves the same outputs, from its kept backlog: every worker serves all of them, and a feed
opened after the decisions still shows them. An order lookup shows the order's timeline and a
store's health its rates (they need ``GET /orders/{id}`` and ``GET /merchants/{id}``, the state
queries of issue 17 item 2). Last, a delivery for an order with a delivery breach resolves it
(``deadline.resolved``, issue 17 item 4): the page marks the breach resolved and drops the order's
recommendations.

Screenshots are kept under ``$ORDERWATCH_TEST_ARTIFACTS/console`` (default: the test's temporary
directory), one per step, and one of whatever the page showed when a test ended.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
from chromium_driver import Chromium, chromium_paths
from worker_harness import (
    Output,
    WorkerRun,
    backfill,
    decisions,
    occurred,
    replayed_outputs,
)

from streams.tools.send import Unroutable, route
from streams.tools.simulator import bad_lines, generate_events

pytestmark = pytest.mark.broker

TOKEN = "console-test-token"
#: The browser's zone: the page shows times in it, UTC on hover.
TIMEZONE = "Asia/Kolkata"


@dataclass
class Console:
    """Two workers of one group, a page on the first, and what happened so far."""

    first: WorkerRun
    second: WorkerRun
    browser: Chromium
    artifacts: Path
    asked_for_token: str = ""
    empty_page: str = ""
    outputs: list[Output] = field(default_factory=list)
    lines: list[bytes] = field(default_factory=list)
    bad: list[bytes] = field(default_factory=list)

    def shot(self, name: str, css: str | None = None) -> Path:
        return self.browser.screenshot(self.artifacts / f"{name}.png", css)

    def breaches(self) -> dict[str, Output]:
        return {o["breach_id"]: o for o in self.outputs if o["type"] == "deadline.breached"}


def _artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = os.environ.get("ORDERWATCH_TEST_ARTIFACTS")
    path = Path(root) / "console" if root else tmp_path_factory.mktemp("console-artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def console(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    """Two workers, and the page open on the first: asked for the token, given it, live."""
    chromium_paths()  # skip (fail in CI) before starting anything
    workdir = tmp_path_factory.mktemp("console")
    token = {"ORDERWATCH_WEB_TOKEN": TOKEN}
    first = WorkerRun(kafka_bootstrap, workdir, extra_env=token)
    second = WorkerRun(kafka_bootstrap, workdir, name=first.name, extra_env=token)
    started: list[WorkerRun] = []
    try:
        for worker in (first, second):
            worker.start()
            started.append(worker)
        with Chromium(timezone=TIMEZONE, log=workdir / "chromedriver.log") as browser:
            page = Console(first, second, browser, _artifacts(tmp_path_factory))
            browser.open(f"http://127.0.0.1:{first.web_port}/")
            page.asked_for_token = browser.wait(
                "the page to ask for the token",
                lambda: (
                    browser.text("#token-panel")
                    if browser.run("return !document.getElementById('token-panel').hidden")
                    else None
                ),
            )
            page.shot("01-token")
            browser.type("#token-input", TOKEN)
            browser.click("#token-form button")
            browser.wait(
                "the live feed",
                lambda: browser.text("#feed-status").startswith("Live") or None,
            )
            page.empty_page = browser.text("main")
            page.shot("02-empty")
            yield page
            page.shot("99-last")
    finally:
        for worker in started:
            worker.stop()


@pytest.fixture(scope="module")
def decided(console: Console) -> Console:
    """The simulator's events sent to the workers with ``orderwatch send``, their clock advanced
    to the end: the outputs as read from Kafka."""
    events = generate_events(seed=7, orders=40, merchants=3, orders_per_hour=20)
    console.lines = [json.dumps(event, separators=(",", ":")).encode() for event in events]
    # A few malformed lines that `send` still routes: the worker dead-letters them.
    console.bad = [line for line in bad_lines(random.Random(7)) if _routable(line)][:3]
    assert console.bad
    stream = console.artifacts.parent / f"{console.first.name}-events.jsonl"
    stream.write_bytes(b"\n".join([*console.lines, *console.bad]) + b"\n")
    subprocess.run(
        [sys.executable, "-m", "streams", "send", "--quiet", str(stream)],
        env=console.first.env(),
        check=True,
        capture_output=True,
        timeout=120,
    )
    expected = decisions(o for o in replayed_outputs(console.lines) if "breach_id" in o)
    assert expected, "the simulated stream must cause breaches"
    console.outputs = backfill(
        [console.first, console.second],
        [*console.lines, *console.bad],
        until=console.lines,
        expected=expected,
    )
    assert console.breaches(), "the workers decided no breach"
    return console


def test_the_page_asks_for_the_token_then_goes_live_with_clear_empty_states(
    console: Console,
) -> None:
    assert "ORDERWATCH_WEB_TOKEN" in console.asked_for_token
    assert "No open recommendations" in console.empty_page
    assert "No breaches" in console.empty_page
    assert "No rejected input" in console.empty_page


def test_breaches_the_simulator_causes_appear_on_the_page_as_they_are_decided(
    decided: Console,
) -> None:
    browser, breaches = decided.browser, decided.breaches()
    shown: list[str] = browser.wait(
        "every breach on the page",
        lambda: (
            ids
            if set(
                ids := browser.run(
                    "return [...document.querySelectorAll('#breaches tr[data-breach]')]"
                    ".map(r => r.dataset.breach)"
                )
            )
            >= set(breaches)
            else None
        ),
        timeout=60,
    )
    decided.shot("03-breaches")
    assert sorted(shown) == sorted(breaches)  # each once, and nothing Kafka does not hold
    # Each row names its order and deadline; its time is the viewer's, UTC on hover.
    some = next(iter(breaches.values()))
    row = browser.text(f"#breaches tr[data-breach='{some['breach_id']}']")
    assert some["order_id"] in row
    assert some["deadline"].replace("_", " ") in row
    title = browser.run(
        "return document.querySelector(arguments[0]).getAttribute('title')",
        f"#breaches tr[data-breach='{some['breach_id']}'] time",
    )
    assert title == f"{some['detected_at']} (UTC)"
    # Every breach comes with a critical recommendation: open, grouped first, with its countdown.
    critical = [
        o
        for o in decided.outputs
        if o["type"] == "recommendation.issued" and o["severity"] == "critical"
    ]
    assert critical
    groups = browser.run(
        "return [...document.querySelectorAll('#recommendations .group')]"
        ".map(g => g.dataset.severity)"
    )
    assert groups[0] == "critical"
    for recommendation in critical:
        order_id = recommendation["order_id"]
        card = browser.text(f"#recommendations [data-id='{recommendation['recommendation_id']}']")
        if not card:
            # Only a later deadline.resolved closes it: the order met the deadline, or ended.
            rows = browser.run(
                "return [...document.querySelectorAll('#breaches tr[data-order]')]"
                ".filter(r => r.dataset.order === arguments[0]).map(r => r.innerText)",
                order_id,
            )
            assert any("resolved" in row for row in rows), f"{order_id}: {rows}"
            continue
        assert order_id in card
        # An overdue recommendation has no respond-by left: the page says to act now.
        assert "act now" in card


def test_every_worker_serves_every_output_whichever_decided_it(decided: Console) -> None:
    breaches = set(decided.breaches())
    seen = _feed_ids(decided.second.web_port, breaches, timeout=30)
    assert breaches <= seen
    connection = http.client.HTTPConnection("127.0.0.1", decided.second.web_port, timeout=5)
    try:
        connection.request("GET", "/events")
        assert connection.getresponse().status == 401
    finally:
        connection.close()


def test_an_order_lookup_shows_its_timeline(decided: Console) -> None:
    """Needs ``GET /orders/{id}`` (issue 17 item 2, the queries branch)."""
    browser = decided.browser
    resolved_ids = {o["breach_id"] for o in decided.outputs if o["type"] == "deadline.resolved"}
    fulfillment = [b for b in decided.breaches().values() if b["deadline"] == "fulfillment"]
    # One the workers resolved where there is one: its lookup shows both decisions.
    fulfillment.sort(key=lambda b: b["breach_id"] not in resolved_ids)
    breach = fulfillment[0]
    order_id = breach["order_id"]
    browser.click(f"#breaches tr[data-breach='{breach['breach_id']}'] td:nth-child(2) button")
    try:
        browser.wait(
            f"the timeline of {order_id}",
            lambda: (
                browser.run(
                    "return document.querySelectorAll('#lookup-result .timeline li').length"
                )
                or None
            ),
            timeout=30,
        )
    finally:
        decided.shot("04-order", "#lookup-panel")
    result = browser.text("#lookup-result")
    assert order_id in result
    sent = {json.loads(line).get("order_id") for line in decided.lines if occurred(line)}
    assert order_id in sent
    entries = browser.run("return document.querySelectorAll('#lookup-result .timeline li').length")
    assert entries >= 1
    deadlines = browser.text("#lookup-result table.deadlines")
    assert "fulfillment" in deadlines
    assert "breached" in deadlines or "resolved" in deadlines
    # The decisions list the breach and, where the workers resolved it, its resolution.
    listed = browser.text("#lookup-result ul.decisions")
    assert "missed fulfillment" in listed
    resolved = [
        o
        for o in decided.outputs
        if o["type"] == "deadline.resolved" and o["breach_id"] == breach["breach_id"]
    ]
    if resolved:
        assert f"fulfillment: {resolved[0]['resolution'].replace('_', ' ')}" in listed
        assert "resolved" in listed


def _feed_ids(port: int, wanted: set[str], *, timeout: float) -> set[str]:
    """The ids of ``GET /events`` on ``port`` read until ``wanted`` are all seen (or time)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    seen: set[str] = set()
    deadline = time.monotonic() + timeout
    try:
        connection.request("GET", "/events", headers={"Authorization": f"Bearer {TOKEN}"})
        response = connection.getresponse()
        assert response.status == 200
        assert response.getheader("Content-Type", "").startswith("text/event-stream")
        while time.monotonic() < deadline and not wanted <= seen:
            line = response.readline()
            if not line:
                break
            if line.startswith(b"id: "):
                seen.add(line[4:].strip().decode())
    finally:
        connection.close()
    return seen


def test_a_stores_health_shows_its_rates_against_the_thresholds(decided: Console) -> None:
    """Needs ``GET /merchants/{id}`` (issue 17 item 2, the queries branch)."""
    browser = decided.browser
    merchant = next(iter(decided.breaches().values()))["merchant_id"]
    offered = browser.run(
        "return [...document.querySelectorAll('#merchant-list option')].map(o => o.value)"
    )
    assert merchant in offered  # the picker offers the stores seen in the feed
    browser.run("document.getElementById('merchant-input').value = ''")
    browser.type("#merchant-input", merchant)
    browser.click("#health-form button")
    try:
        browser.wait(
            f"the health of {merchant}",
            lambda: (
                browser.run(
                    "return document.querySelector('#health-result .store') !== null "
                    "|| document.querySelector('#health-result .error') !== null"
                )
                or None
            ),
        )
    finally:
        decided.shot("05-store", "#health-panel")
    result = browser.text("#health-result")
    assert browser.run("return document.querySelector('#health-result .error') === null"), result
    assert "orders placed in the last" in result
    assert "Open recommendations" in result


def test_a_delivery_resolves_its_breach_on_the_page(decided: Console) -> None:
    """Needs ``deadline.resolved`` (issue 17 item 4, the core-outputs branch)."""
    browser = decided.browser
    breach = next(b for b in decided.breaches().values() if b["deadline"] == "delivery")
    order_id = breach["order_id"]
    events = [json.loads(line) for line in decided.lines]
    tracking = [
        e for e in events if e.get("order_id") == order_id and e["type"] == "tracking.submitted"
    ]
    assert tracking, f"{order_id} has a delivery breach, so it was shipped"
    latest = max(datetime.fromisoformat(e["occurred_at"]) for e in events)
    last = latest.astimezone(UTC).isoformat().replace("+00:00", "Z")
    delivered = {
        "event_id": f"console-test-delivered-{order_id}",
        "type": "carrier.scanned",
        "occurred_at": last,
        "merchant_id": breach["merchant_id"],
        "order_id": order_id,
        "tracking_number": tracking[-1]["tracking_number"],
        "status": "delivered",
    }
    stream = decided.artifacts.parent / f"{decided.first.name}-delivered.jsonl"
    stream.write_text(json.dumps(delivered) + "\n")
    subprocess.run(
        [sys.executable, "-m", "streams", "send", "--quiet", str(stream)],
        env=decided.first.env(),
        check=True,
        capture_output=True,
        timeout=120,
    )
    decided.first.advance_clock(last)
    row = f"#breaches tr[data-breach='{breach['breach_id']}']"
    try:
        status = browser.wait(
            f"the breach of {order_id} to be resolved",
            lambda: text if "resolved" in (text := browser.text(row)) else None,
            timeout=60,
        )
    finally:
        decided.shot("06-resolved")
    assert "resolved: delivered" in status
    cards = browser.run(
        "return [...document.querySelectorAll('#recommendations .rec')]"
        ".map(c => c.innerText).filter(t => t.includes(arguments[0]))",
        order_id,
    )
    assert cards == []  # a delivered order needs nothing more


def test_a_worker_with_a_page_open_stops_promptly_and_ends_the_stream(console: Console) -> None:
    """The feed is closed on shutdown: open streams end, and the web server does not wait for
    them (aiohttp would, for a minute)."""
    worker = console.second
    connection = http.client.HTTPConnection("127.0.0.1", worker.web_port, timeout=60)
    try:
        connection.request("GET", "/events", headers={"Authorization": f"Bearer {TOKEN}"})
        response = connection.getresponse()
        assert response.status == 200
        assert response.readline().startswith(b"retry: ")
        began = time.monotonic()
        assert worker.process is not None
        worker.process.terminate()
        # The stream ends (EOF) rather than hanging until the server gives up on it.
        while response.readline():
            pass
        ended = time.monotonic() - began
        code = worker.process.wait(timeout=30)
        stopped = time.monotonic() - began
    finally:
        connection.close()
    assert ended < 15, f"the stream ended {ended:.1f} s after SIGTERM"
    assert stopped < 20, f"the worker stopped {stopped:.1f} s after SIGTERM"
    assert code == 0, worker.log_text()[-3000:]


def test_rejected_input_shows_what_to_fix(decided: Console) -> None:
    browser = decided.browser
    rejected = [o for o in decided.outputs if o["type"] == "event.rejected"]
    assert len(rejected) == len(decided.bad)
    shown = browser.wait(
        "the dead letters on the page",
        lambda: (
            text
            if f"({len(rejected)})" in browser.text("#dead-letters-panel h2")
            and (text := browser.text("#dead-letters"))
            else None
        ),
    )
    decided.shot("07-rejected", "#dead-letters-panel")
    for output in rejected:
        assert output["error"] in shown
        source = output["source"]
        assert f"partition {source['partition']}, offset {source['offset']}" in shown


def _routable(line: bytes) -> bool:
    try:
        route(line)
    except Unroutable:
        return False
    return True
