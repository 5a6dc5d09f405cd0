"""The console's feed and views without Kafka: outputs as server-sent events, what a reconnecting
page is sent, the token, the page's files."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from streams.worker.console import ASSETS, ConsoleViews
from streams.worker.feed import FeedEvent, OutputFeed, event_of, since

BREACH = {
    "type": "deadline.breached",
    "breach_id": "b" * 32,
    "order_id": "o-1",
    "merchant_id": "m-1",
    "deadline": "fulfillment",
}


def _event(ident: str, kind: str = "deadline.breached") -> FeedEvent:
    return FeedEvent(id=ident, type=kind, data=json.dumps({"type": kind, "id": ident}))


def test_an_output_is_one_event_named_by_its_type_with_its_id_from_the_header() -> None:
    value = json.dumps(BREACH, indent=2).encode()  # a producer's line breaks never split it
    event = event_of(value, [("ce_id", b"c" * 32)])
    assert event is not None
    compact = json.dumps(BREACH, separators=(",", ":"))
    expected = f"id: {'c' * 32}\nevent: deadline.breached\ndata: {compact}\n\n"
    assert event.encode() == expected.encode()


def test_without_a_header_the_id_is_the_outputs_own() -> None:
    event = event_of(json.dumps(BREACH).encode())
    assert event is not None
    assert event.id == "b" * 32
    resolved = {**BREACH, "type": "deadline.resolved", "resolution_id": "r" * 32}
    event = event_of(json.dumps(resolved).encode())
    assert event is not None
    assert (event.id, event.type) == ("r" * 32, "deadline.resolved")


@pytest.mark.parametrize("value", [None, b"not json", b"[1, 2]", b'{"no": "type"}'])
def test_what_is_no_output_is_no_event(value: bytes | None) -> None:
    assert event_of(value) is None


def test_a_reconnecting_page_gets_what_came_after_its_last_id() -> None:
    kept = [_event("a"), _event("b"), _event("c")]
    assert [e.id for e in since(kept, "b")] == ["c"]
    assert [e.id for e in since(kept, "c")] == []
    # An id no longer kept (or none): everything kept.
    assert [e.id for e in since(kept, "gone")] == ["a", "b", "c"]
    assert [e.id for e in since(kept, None)] == ["a", "b", "c"]


async def test_every_subscriber_gets_each_output_and_closing_ends_them() -> None:
    feed = OutputFeed({}, ["breaches"], keep=2)
    async with feed.subscribe() as (kept1, queue1), feed.subscribe() as (_, queue2):
        assert kept1 == []
        feed.publish(_event("a"))
        assert (await queue1.get(), await queue2.get()) == (_event("a"), _event("a"))
        feed.publish(_event("b"))
        feed.publish(_event("c"))
        await feed.close()
        assert [queue1.get_nowait(), queue1.get_nowait(), queue1.get_nowait()] == [
            _event("b"),
            _event("c"),
            None,
        ]
    assert [e.id for e in feed.kept] == ["b", "c"]  # bounded
    assert feed.subscribers == set()


async def test_a_subscriber_too_far_behind_is_ended_not_waited_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("streams.worker.feed.SUBSCRIBER_QUEUE", 2)
    feed = OutputFeed({}, ["breaches"])
    async with feed.subscribe() as (_, queue):
        for ident in "abc":
            feed.publish(_event(ident))
        assert feed.subscribers == set()
        assert queue.get_nowait() == _event("b")
        assert queue.get_nowait() is None


class _Feed(OutputFeed):
    """A feed that reads no Kafka: what the test publishes."""

    def ensure_started(self) -> None:
        pass


@pytest.fixture
async def client() -> AsyncIterator[tuple[TestClient[web.Request, web.Application], _Feed]]:
    feed = _Feed({}, ["breaches"])
    views = ConsoleViews(feed, lambda: "s3cret")
    app = web.Application()
    app.router.add_get("/", views.index)

    async def asset(request: web.Request) -> web.StreamResponse:
        return await views.asset(request, request.match_info["name"])

    app.router.add_get("/console/{name}", asset)
    app.router.add_get("/events", views.events)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client, feed
        await feed.close()


async def test_the_page_and_its_files_are_served_without_the_token_and_load_nothing_else(
    client: tuple[TestClient[web.Request, web.Application], _Feed],
) -> None:
    http, _ = client
    page = await http.get("/")
    assert page.status == 200
    assert page.headers["Content-Type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    html = await page.text()
    assert "/console/console.js" in html
    assert "/console/console.css" in html
    assert "http://" not in html
    assert "https://" not in html
    for name in ASSETS:
        answer = await http.get(f"/console/{name}")
        assert answer.status == 200, name
        assert answer.headers["Content-Type"] == ASSETS[name]
    assert (await http.get("/console/secrets.txt")).status == 404


async def test_the_feed_needs_the_token_as_a_header_or_in_the_query(
    client: tuple[TestClient[web.Request, web.Application], _Feed],
) -> None:
    http, _ = client
    refused = await http.get("/events")
    assert refused.status == 401
    assert "ORDERWATCH_WEB_TOKEN" in (await refused.json())["error"]
    assert (await http.get("/events?probe=1&access_token=wrong")).status == 401
    assert (await http.get("/events?probe=1&access_token=s3cret")).status == 204
    bearer = await http.get("/events?probe=1", headers={"Authorization": "Bearer s3cret"})
    assert bearer.status == 204


async def test_the_feed_streams_what_is_kept_after_the_last_id_then_live(
    client: tuple[TestClient[web.Request, web.Application], _Feed],
) -> None:
    http, feed = client
    for ident in "abc":
        feed.publish(_event(ident))
    response = await http.get(
        "/events", headers={"Authorization": "Bearer s3cret", "Last-Event-ID": "a"}
    )
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/event-stream")

    async def read_until(marker: bytes) -> bytes:
        seen = b""
        while marker not in seen:
            seen += await asyncio.wait_for(response.content.readany(), 5)
        return seen

    head = await read_until(b"id: c\n")
    assert head.startswith(b"retry: ")
    assert b"id: a\n" not in head
    assert b"id: b\nevent: deadline.breached\ndata: " in head
    feed.publish(_event("d", "deadline.resolved"))
    assert b"id: d\nevent: deadline.resolved\n" in await read_until(b"id: d\n")
    await feed.close()  # the worker stops: the stream ends
    assert await asyncio.wait_for(response.content.read(), 5) == b""


async def test_an_idle_stream_gets_a_comment_line_as_a_heartbeat(
    client: tuple[TestClient[web.Request, web.Application], _Feed],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("streams.worker.console.HEARTBEAT_SECONDS", 0.2)
    http, _ = client
    response = await http.get("/events", headers={"Authorization": "Bearer s3cret"})
    seen = b""
    while b": heartbeat\n\n" not in seen:
        seen += await asyncio.wait_for(response.content.readany(), 5)
    assert b"data:" not in seen  # nothing was published: only comments and the retry
