"""The state queries' routing (streams.worker.queries): who answers a key, how a merchant's
order list is gathered, the token, and the 503s, on real aiohttp servers over loopback; and
schemas/openapi.yaml (streams.worker.queries_openapi) describing their real answers.

Each server is a :class:`Queries` over an in-memory source that owns some partitions of a real
replay's states (examples/orders.jsonl, stopped part way); the broker tests
(tests/integration/test_queries.py) do the same with real workers.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from aiohttp import ClientSession, web
from aiohttp.test_utils import TestServer
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from streams.core import views
from streams.core.engine import Engine
from streams.core.events import decode_event
from streams.core.merchant import MerchantState
from streams.core.order import OrderState
from streams.core.outputs import Rejection
from streams.policy_files import load_policy
from streams.worker import partition_for
from streams.worker.queries import (
    FORWARDED_HEADER,
    Forward,
    Here,
    Part,
    Queries,
    Unavailable,
    merge_parts,
    route_key,
)
from streams.worker.queries_openapi import openapi_document

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "orders.jsonl"
POLICY = load_policy()
PARTITIONS = 4


@cache
def engine() -> Engine:
    decoded = (decode_event(line) for line in EXAMPLE.read_bytes().splitlines() if line.strip())
    events = [event for event in decoded if not isinstance(event, Rejection)]
    replay = Engine(POLICY)
    for event in events[: len(events) * 7 // 10]:
        replay.process(event)
    return replay


# -- the decision ---------------------------------------------------------------------------


def test_an_owned_partition_is_answered_here() -> None:
    decision = route_key(
        2, owned={1, 2}, owners={2: "http://b:1"}, own_url="http://a:1", forwarded=False
    )
    assert decision == Here()


def test_another_workers_partition_is_forwarded_to_its_owner() -> None:
    owners = {0: "http://a:1", 3: "http://b:1"}
    decision = route_key(3, owned={0}, owners=owners, own_url="http://a:1", forwarded=False)
    assert decision == Forward("http://b:1")


def test_a_forwarded_request_is_never_forwarded_again() -> None:
    owners = {3: "http://b:1"}
    decision = route_key(3, owned={0}, owners=owners, own_url="http://a:1", forwarded=True)
    assert isinstance(decision, Unavailable)
    assert "rebalance" in decision.reason


@pytest.mark.parametrize("owners", [{}, {3: "http://a:1/"}], ids=["no owner", "still me"])
def test_a_partition_without_another_owner_is_unavailable(owners: dict[int, str]) -> None:
    decision = route_key(3, owned={0}, owners=owners, own_url="http://a:1", forwarded=False)
    assert isinstance(decision, Unavailable)


def test_parts_that_miss_or_repeat_a_partition_make_no_page() -> None:
    row = {"order_id": "o", "status": "open"}
    one = Part(frozenset({0, 1}), [row], more=False, known=True)
    assert "[2, 3]" in str(merge_parts([one], partitions=4, limit=5))
    assert "twice" in str(merge_parts([one, one], partitions=2, limit=5))
    merged = merge_parts([one, Part(frozenset({2, 3}), [], False, False)], partitions=4, limit=5)
    assert merged == ([row], False, True)


# -- two servers ----------------------------------------------------------------------------


@dataclass
class Source:
    """The states of the partitions this 'worker' owns, and the group's assignment."""

    owned_partitions: set[int]
    url: str = ""
    owners_map: dict[int, str] = field(default_factory=dict)
    is_ready: bool = True
    policy: Any = POLICY
    partitions: int = PARTITIONS

    def route(self, key: str) -> int:
        return partition_for(key, PARTITIONS)

    def owned(self) -> set[int]:
        return set(self.owned_partitions)

    def owners(self) -> dict[int, str]:
        return dict(self.owners_map)

    def own_url(self) -> str:
        return self.url

    def ready(self) -> bool:
        return self.is_ready

    def order(self, order_id: str) -> OrderState | None:
        assert self.route(order_id) in self.owned_partitions, "read a partition not owned"
        return engine().orders.get(order_id)

    def merchant(self, merchant_id: str) -> MerchantState | None:
        assert self.route(merchant_id) in self.owned_partitions, "read a partition not owned"
        return engine().merchants.get(merchant_id)

    def orders_of(self, merchant_id: str, partitions: set[int]) -> Iterable[OrderState]:
        return [
            state
            for key, state in sorted(engine().orders.items())
            if self.route(key) in partitions and state.merchant_id == merchant_id
        ]


@dataclass
class Group:
    servers: list[TestServer]
    sources: list[Source]
    queries: list[Queries]
    session: ClientSession

    async def close(self) -> None:
        await self.session.close()
        for query in self.queries:
            await query.close()
        for server in self.servers:
            await server.close()

    async def get(
        self, worker: int, path: str, token: str | None = None
    ) -> tuple[int, Any, dict[str, str]]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with self.session.get(self.servers[worker].make_url(path), headers=headers) as r:
            return r.status, json.loads(await r.read()), dict(r.headers)


async def start_group(token: str | None = None) -> Group:
    sources = [Source({0, 2}), Source({1, 3})]
    servers = []
    queries = []
    for source in sources:
        app = web.Application()
        query = Queries(source, token=token)
        query.install(app)
        queries.append(query)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        source.url = str(server.make_url("")).rstrip("/")
    owners = {p: s.url for s in sources for p in s.owned_partitions}
    for source in sources:
        source.owners_map = owners
    return Group(servers, sources, queries, ClientSession())


@pytest.fixture
async def group() -> AsyncIterator[Group]:
    running = await start_group()
    yield running
    await running.close()


@pytest.fixture
async def guarded() -> AsyncIterator[Group]:
    running = await start_group(token="s3cret")
    yield running
    await running.close()


def some_orders() -> list[str]:
    return sorted(engine().orders)[:40]


async def test_both_workers_answer_every_order_as_its_owners_state_says(group: Group) -> None:
    for order_id in some_orders():
        expected = views.order_view(engine().orders[order_id], POLICY)
        for worker in (0, 1):
            status, body, _ = await group.get(worker, f"/orders/{order_id}")
            assert (status, body) == (200, expected)


async def test_both_workers_answer_every_merchant_alike(group: Group) -> None:
    for merchant_id, state in sorted(engine().merchants.items()):
        expected = views.merchant_view(state, POLICY)
        for worker in (0, 1):
            status, body, headers = await group.get(worker, f"/merchants/{merchant_id}")
            assert (status, body) == (200, expected)
            assert headers["Content-Type"] == "application/json; charset=utf-8"


@pytest.mark.parametrize("status", [None, "open", "at_risk", "breached"])
async def test_a_merchants_orders_are_gathered_from_every_worker_page_by_page(
    group: Group, status: str | None
) -> None:
    merchant_id = max(engine().merchants, key=lambda m: len(list(orders_of(m))))
    rows = [views.order_summary(state, POLICY) for state in orders_of(merchant_id)]
    expected, _ = views.order_page(rows, status=status, limit=len(rows), after=None)
    for worker in (0, 1):
        got: list[dict[str, Any]] = []
        query = f"limit=4&status={status}" if status else "limit=4"
        path = f"/merchants/{merchant_id}/orders?{query}"
        while True:
            code, body, _ = await group.get(worker, path)
            assert code == 200, body
            got += body["orders"]
            if "next_cursor" not in body:
                break
            path = f"/merchants/{merchant_id}/orders?{query}&cursor={body['next_cursor']}"
        assert got == expected
    assert status is not None or len(expected) > 4


def orders_of(merchant_id: str) -> list[OrderState]:
    return [s for s in engine().orders.values() if s.merchant_id == merchant_id]


async def test_an_unknown_id_is_404_with_a_sentence(group: Group) -> None:
    for path in ("/orders/o-nope", "/merchants/m-nope", "/merchants/m-nope/orders"):
        for worker in (0, 1):
            status, body, _ = await group.get(worker, path)
            assert status == 404
            assert "nope" in body["error"]


@pytest.mark.parametrize("query", ["status=lost", "limit=0", "limit=many", "cursor=not-a-cursor"])
async def test_a_bad_list_query_is_400_saying_what_to_change(group: Group, query: str) -> None:
    status, body, _ = await group.get(0, f"/merchants/m-001/orders?{query}")
    assert status == 400
    assert query.split("=")[0] in body["error"]


async def test_an_owner_not_ready_answers_503_with_retry_after_through_either_worker(
    group: Group,
) -> None:
    order_id = next(o for o in some_orders() if partition_for(o, PARTITIONS) in {1, 3})
    group.sources[1].is_ready = False
    for worker in (0, 1):
        status, body, headers = await group.get(worker, f"/orders/{order_id}")
        assert status == 503
        assert int(headers["Retry-After"]) > 0
        assert "again" in body["error"]
    status, _, headers = await group.get(0, "/merchants/m-001/orders")
    assert status == 503
    assert "Retry-After" in headers


async def test_an_unreachable_owner_is_503_with_retry_after(group: Group) -> None:
    order_id = next(o for o in some_orders() if partition_for(o, PARTITIONS) in {1, 3})
    await group.servers[1].close()
    status, body, headers = await group.get(0, f"/orders/{order_id}")
    assert status == 503
    assert "Retry-After" in headers
    assert group.sources[1].url in body["error"]
    status, _, headers = await group.get(0, "/merchants/m-001/orders")
    assert status == 503
    assert "Retry-After" in headers


async def test_a_forwarded_request_for_a_partition_not_owned_is_503_not_forwarded(
    group: Group,
) -> None:
    order_id = next(o for o in some_orders() if partition_for(o, PARTITIONS) in {1, 3})
    url = group.servers[0].make_url(f"/orders/{order_id}")
    async with group.session.get(url, headers={FORWARDED_HEADER: "1"}) as response:
        assert response.status == 503


async def test_with_a_token_every_query_needs_it_and_forwarding_passes_it_on(
    guarded: Group,
) -> None:
    order_id = next(o for o in some_orders() if partition_for(o, PARTITIONS) in {1, 3})
    for path in (f"/orders/{order_id}", "/merchants/m-001", "/merchants/m-001/orders"):
        status, body, headers = await guarded.get(0, path)
        assert status == 401
        assert headers["WWW-Authenticate"].startswith("Bearer")
        assert "s3cret" not in json.dumps(body)
        assert (await guarded.get(0, path, token="wrong"))[0] == 401
        assert (await guarded.get(0, path, token="s3cret"))[0] == 200
        separator = "&" if "?" in path else "?"
        assert (await guarded.get(0, f"{path}{separator}access_token=s3cret"))[0] == 200
        assert (await guarded.get(0, f"{path}{separator}access_token=wrong"))[0] == 401


# -- the OpenAPI document ----------------------------------------------------------------

SCHEMAS = Path(__file__).resolve().parents[3] / "schemas"
DOCUMENT_URI = "urn:orderwatch:openapi"


@cache
def validator_for(path_template: str, status: int) -> jsonschema.Draft202012Validator:
    document = openapi_document()
    response = document["paths"][path_template]["get"]["responses"][str(status)]
    schema = response["content"]["application/json"]["schema"]
    registry: Registry[Any] = Registry().with_resource(
        DOCUMENT_URI, Resource.from_contents(document, default_specification=DRAFT202012)
    )
    return jsonschema.Draft202012Validator(
        {"$ref": DOCUMENT_URI + schema["$ref"]},
        registry=registry,
        format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
    )


def test_the_committed_openapi_document_is_the_generated_one() -> None:
    assert yaml.safe_load((SCHEMAS / "openapi.yaml").read_text()) == openapi_document()


async def test_every_answer_validates_against_the_openapi_document(guarded: Group) -> None:
    group = guarded
    replay = engine()
    asked: list[tuple[str, str, str | None]] = [
        ("/orders/{order_id}", f"/orders/{order_id}", "s3cret")
        for order_id in sorted(replay.orders)
    ]
    for merchant_id in sorted(replay.merchants):
        asked.append(("/merchants/{merchant_id}", f"/merchants/{merchant_id}", "s3cret"))
        for only in ("", "&status=open", "&status=at_risk", "&status=breached"):
            asked.append(
                (
                    "/merchants/{merchant_id}/orders",
                    f"/merchants/{merchant_id}/orders?limit=3{only}",
                    "s3cret",
                )
            )
    asked += [
        ("/orders/{order_id}", "/orders/o-unknown", "s3cret"),  # 404
        ("/merchants/{merchant_id}", "/merchants/m-001", None),  # 401
        ("/merchants/{merchant_id}/orders", "/merchants/m-001/orders?limit=0", "s3cret"),  # 400
    ]
    statuses: set[int] = set()
    for template, path, token in asked:
        status, body, _ = await group.get(0, path, token=token)
        validator_for(template, status).validate(body)
        statuses.add(status)
    group.sources[1].is_ready = False
    status, body, _ = await group.get(0, "/merchants/m-001/orders", token="s3cret")
    validator_for("/merchants/{merchant_id}/orders", status).validate(body)
    statuses.add(status)
    assert statuses == {200, 400, 401, 404, 503}


def test_a_wrong_answer_does_not_validate_against_the_openapi_document() -> None:
    view = views.order_view(next(iter(engine().orders.values())), load_policy())
    validator = validator_for("/orders/{order_id}", 200)
    validator.validate(view)
    for broken in (
        {**view, "status": "lost"},
        {k: v for k, v in view.items() if k != "deadlines"},
        {**view, "next_due": "tomorrow"},
    ):
        with pytest.raises(jsonschema.ValidationError):
            validator.validate(broken)
