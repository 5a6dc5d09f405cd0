"""State queries over HTTP (streams.worker.queries) on a real broker, with two workers.

Two workers of one group share the partitions; a simulated stream is sent with
``orderwatch send`` and the clock advanced to its last event. Then every key is asked of BOTH
workers: the answers must be equal, and equal to the view of the state a replay of the same
input holds (same status, deadlines, decisions). A merchant's order list, gathered from both
workers, must be the same from either, page by page.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from worker_harness import WorkerRun, committed_all, free_port, wait_for, wait_until_shared

from streams.core import views
from streams.core.engine import Engine
from streams.core.events import decode_event
from streams.core.outputs import Rejection
from streams.policy_files import load_policy
from streams.worker import partition_for
from streams.worker.queries_openapi import openapi_document

pytestmark = pytest.mark.broker

TOKEN = "test-token-not-a-secret"
POLICY = load_policy()
START = "2026-01-05T00:00:00Z"


@cache
def validator(template: str, status: int) -> jsonschema.Draft202012Validator:
    """The schema schemas/openapi.yaml gives the answer to ``template`` with ``status``."""
    document = openapi_document()
    response = document["paths"][template]["get"]["responses"][str(status)]
    reference = response["content"]["application/json"]["schema"]["$ref"]
    uri = "urn:orderwatch:openapi"
    registry: Registry[Any] = Registry().with_resource(
        uri, Resource.from_contents(document, default_specification=DRAFT202012)
    )
    return jsonschema.Draft202012Validator(
        {"$ref": uri + reference},
        registry=registry,
        format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
    )


def template_of(path: str) -> str:
    parts = path.split("?")[0].split("/")
    if parts[1] == "orders":
        return "/orders/{order_id}"
    return "/merchants/{merchant_id}" + ("/orders" if len(parts) > 3 else "")


def ask(worker: WorkerRun, path: str, token: str | None = TOKEN) -> tuple[int, Any, Any]:
    """Status, JSON body and headers of ``GET path`` on ``worker``; the body validated against
    schemas/openapi.yaml."""
    status, body, headers = _ask(worker, path, token)
    validator(template_of(path), status).validate(body)
    return status, body, headers


def _ask(worker: WorkerRun, path: str, token: str | None) -> tuple[int, Any, Any]:
    request = urllib.request.Request(f"http://127.0.0.1:{worker.web_port}{path}")
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return response.status, json.loads(response.read()), response.headers
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read()), error.headers


def simulated(path: Path) -> list[bytes]:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "streams",
            "simulate",
            "--orders",
            "240",
            "--merchants",
            "3",
            "--seed",
            "17",
            "--orders-per-hour",
            "3",
            "--start",
            START,
        ],
        capture_output=True,
        check=True,
        timeout=120,
    )
    # Cut eight days in: orders of every status, many deadlines still pending.
    cut = datetime.fromisoformat(START) + timedelta(days=8)
    lines = [
        line
        for line in result.stdout.splitlines()
        if line.strip() and datetime.fromisoformat(json.loads(line)["occurred_at"]) <= cut
    ]
    path.write_bytes(b"\n".join(lines) + b"\n")
    return lines


def replayed(lines: list[bytes]) -> Engine:
    """The states a replay of ``lines`` holds once its clock reached the last event."""
    decoded = (decode_event(line) for line in lines)
    events = [event for event in decoded if not isinstance(event, Rejection)]
    engine = Engine(POLICY)
    for event in events:
        engine.process(event)
    engine.advance_to(max(event.occurred_at for event in events))
    return engine


class Group:
    def __init__(self, workers: list[WorkerRun], engine: Engine) -> None:
        self.workers = workers
        self.engine = engine


@pytest.fixture(scope="module")
def group(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Group]:
    workdir = tmp_path_factory.mktemp("queries")
    env = {"ORDERWATCH_WEB_TOKEN": TOKEN}
    first = WorkerRun(kafka_bootstrap, workdir, extra_env=dict(env))
    second = WorkerRun(kafka_bootstrap, workdir, name=first.name, extra_env=dict(env))
    try:
        first.start()
        second.start()
        wait_until_shared([first, second])
        stream = workdir / "stream.jsonl"
        lines = simulated(stream)
        subprocess.run(
            [sys.executable, "-m", "streams", "send", "--quiet", str(stream)],
            env=first.env(),
            check=True,
            capture_output=True,
            timeout=180,
        )
        committed_all(first, second)
        last = max(datetime.fromisoformat(json.loads(line)["occurred_at"]) for line in lines)
        first.advance_clock(last.astimezone(UTC).isoformat().replace("+00:00", "Z"))
        yield Group([first, second], replayed(lines))
    finally:
        first.stop()
        second.stop()


def sample_orders(engine: Engine, count: int) -> list[str]:
    """Up to ``count`` order ids, every status included (the rarer ones first)."""
    by_status: dict[str, list[str]] = {}
    for order_id in sorted(engine.orders):
        status = views.order_view(engine.orders[order_id], POLICY)["status"]
        by_status.setdefault(status, []).append(order_id)
    chosen: list[str] = []
    for ids in sorted(by_status.values(), key=len):
        chosen += ids[: max(1, (count - len(chosen)) // 2)]
    return sorted(chosen)


def test_both_workers_answer_every_order_as_the_replayed_state_says(group: Group) -> None:
    first, second = group.workers
    ids = sample_orders(group.engine, 60)
    expected = {i: views.order_view(group.engine.orders[i], POLICY) for i in ids}
    # The owner writes its states after its outputs: wait until it answers what replay holds.
    answers: dict[str, tuple[Any, Any]] = {}

    def settled() -> bool:
        for order_id in ids:
            answers[order_id] = (
                ask(first, f"/orders/{order_id}"),
                ask(second, f"/orders/{order_id}"),
            )
        return all(
            a[0] == b[0] == 200 and a[1] == b[1] == expected[i] for i, (a, b) in answers.items()
        )

    try:
        wait_for(settled, 90, "both workers to answer as the replay's states")
    except AssertionError:
        wrong = {i: (a[:2], expected[i]) for i, (a, _) in answers.items() if a[1] != expected[i]}
        example = next(iter(wrong.items()), None)
        raise AssertionError(f"{len(wrong)} orders differ, e.g. {example}") from None
    # The answers cover what a seller wants to see: each status and pending deadlines.
    statuses = {view["status"] for view in expected.values()}
    assert statuses == set(views.ORDER_STATUSES), statuses
    owners = {partition_for(i, first.partitions) for i in ids}
    assert len(owners) == first.partitions  # keys of every partition: both owners were asked


def difference(got: dict[str, Any], expected: dict[str, Any]) -> dict[str, Any]:
    return {
        key: (got.get(key), expected.get(key))
        for key in sorted({*got, *expected})
        if got.get(key) != expected.get(key)
    }


def test_both_workers_answer_every_merchant_alike(group: Group) -> None:
    first, second = group.workers
    for merchant_id, state in sorted(group.engine.merchants.items()):
        a = ask(first, f"/merchants/{merchant_id}")
        b = ask(second, f"/merchants/{merchant_id}")
        assert a[0] == b[0] == 200
        assert a[1] == b[1]
        expected = views.merchant_view(state, POLICY)
        assert a[1]["orders_in_window"] == expected["orders_in_window"]
        assert [h["measure"] for h in a[1]["health"]] == [h["measure"] for h in expected["health"]]


@pytest.mark.parametrize("status", [None, "open", "at_risk"])
def test_a_merchants_orders_are_the_same_from_either_worker_page_by_page(
    group: Group, status: str | None
) -> None:
    engine = group.engine
    merchant_id = sorted(engine.merchants)[0]
    rows = [
        views.order_summary(state, POLICY)
        for state in engine.orders.values()
        if state.merchant_id == merchant_id
    ]
    expected, _ = views.order_page(rows, status=status, limit=len(rows) + 1, after=None)
    assert expected
    query = f"limit=7&status={status}" if status else "limit=7"
    for worker in group.workers:
        got: list[dict[str, Any]] = []
        path = f"/merchants/{merchant_id}/orders?{query}"
        while True:
            code, body, _ = ask(worker, path)
            assert code == 200, body
            got += body["orders"]
            if "next_cursor" not in body:
                break
            path = f"/merchants/{merchant_id}/orders?{query}&cursor={body['next_cursor']}"
        assert got == expected


def test_an_unknown_id_is_404_from_either_worker(group: Group) -> None:
    for worker in group.workers:
        for path in ("/orders/o-unknown", "/merchants/m-unknown", "/merchants/m-unknown/orders"):
            status, body, _ = ask(worker, path)
            assert status == 404, path
            assert "unknown" in body["error"]


def test_without_the_token_the_queries_are_401_and_the_probes_open(group: Group) -> None:
    order_id = sorted(group.engine.orders)[0]
    for worker in group.workers:
        for path in (f"/orders/{order_id}", "/merchants/m-001", "/merchants/m-001/orders"):
            for token in (None, "wrong"):
                status, _, headers = ask(worker, path, token=token)
                assert status == 401
                assert headers["WWW-Authenticate"].startswith("Bearer")
        for path in ("/health", "/ready", "/metrics"):
            assert worker.get(path)[0] == 200
        assert TOKEN not in worker.log_text()


def join_a_third_worker(group: Group, workdir: Path, *, strict: bool) -> set[int]:
    """Start a third worker of the group and ask all three for sampled orders until each
    answers 200 and the three answers of every order are equal (from its owner, whoever is
    asked); with ``strict``, until they are also what replay holds, and a 200 that is not
    fails at once. Every 503 must carry Retry-After and a sentence. The statuses seen."""
    first, second = group.workers
    third = WorkerRun(
        first.bootstrap,
        workdir,
        name=first.name,
        web_port=free_port(),
        extra_env={"ORDERWATCH_WEB_TOKEN": TOKEN},
    )
    ids = sample_orders(group.engine, 12)
    expected = {i: views.order_view(group.engine.orders[i], POLICY) for i in ids}
    seen: set[int] = set()
    last: list[Any] = []
    try:
        third.start(timeout=None)

        def answered() -> bool:
            last.clear()
            for order_id in ids:
                bodies = []
                for worker in (first, second, third):
                    status, body, headers = ask(worker, f"/orders/{order_id}")
                    seen.add(status)
                    if status == 503:
                        assert int(headers["Retry-After"]) > 0
                        assert "again" in body["error"]
                        last.append((worker.web_port, order_id, body["error"]))
                        continue
                    assert status == 200, body
                    if strict:
                        who = "the joining worker" if worker is third else "an old member"
                        assert body == expected[order_id], (
                            who,
                            difference(body, expected[order_id]),
                        )
                    bodies.append(body)
                if len(bodies) < 3 or any(body != bodies[0] for body in bodies):
                    last.append((order_id, "answers differ or missing"))
            return not last and third.get("/ready")[0] == 200

        try:
            wait_for(answered, 120, "every worker to answer alike")
        except AssertionError:
            raise AssertionError(f"still not alike after 120 s: {last[:3]}") from None
    finally:
        third.stop()
    return seen


def test_while_a_worker_joins_the_answers_are_503_with_retry_after_then_right_again(
    group: Group, tmp_path: Path
) -> None:
    """The join rebalances every member: for a while their partitions are being assigned
    and restored, and they say so (503, Retry-After); then all three answer alike (what the
    key's owner holds: compared with replay by the durable-broker test below)."""
    seen = join_a_third_worker(group, tmp_path, strict=False)
    assert {200, 503} <= seen


@pytest.mark.durable_broker(
    "on Tansu a partition restored after a rebalance can briefly miss its last changelog "
    "records (short end offsets, as in test_worker_group's restart tests), and its owner "
    "answers that state"
)
def test_while_a_worker_joins_no_worker_answers_an_incomplete_state(
    group: Group, tmp_path: Path
) -> None:
    join_a_third_worker(group, tmp_path, strict=True)
