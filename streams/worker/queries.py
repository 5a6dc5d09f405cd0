"""State queries over HTTP, served by every worker (read-only; docs/contract.md, "HTTP").

- ``GET /orders/{order_id}`` and ``GET /merchants/{merchant_id}`` are key queries: the key's
  partition (Kafka's default partitioner over the order id, or the merchant id for the merchant
  aggregate) is owned by one worker of the group. A worker that owns it answers from its
  stores; any other forwards the request to the owner's URL, which every member shares
  through the group's assignment (Faust's assignor carries each member's ``canonical_url``:
  ``ORDERWATCH_WEB_URL``). :func:`route_key` is that decision.
- ``GET /merchants/{merchant_id}/orders`` spans every partition: the worker asked gathers
  each member's rows (its own directly), checks that together they cover every partition
  once, merges them in respond-by order and cuts the page (:func:`merge_parts`).

A forwarded request carries :data:`FORWARDED_HEADER`: its receiver answers only for its own
partitions and never forwards again, so a request crosses at most one hop. While the owner is
not ready (partitions being assigned, tables restoring) or a member cannot be reached, the
answer is 503 with ``Retry-After``. The views are :mod:`streams.core.views`; states are read
with :meth:`~streams.worker.tables.StateStore.peek`, which leaves the worker's caches as they
were.

With ``ORDERWATCH_WEB_TOKEN`` set, :func:`token_guard` asks every request but ``/health``,
``/ready``, ``/metrics`` and the console's page for ``Authorization: Bearer <token>`` (or,
for a client that cannot set headers, such as a browser's EventSource, ``?access_token=``);
the worker forwards the token with what it forwards.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
from aiohttp import web

from streams.core import views
from streams.core.merchant import MerchantState
from streams.core.order import OrderState
from streams.core.policy import Policy
from streams.worker.stores import Stores

__all__ = [
    "FORWARDED_HEADER",
    "OPEN_PATHS",
    "RETRY_AFTER_SECONDS",
    "Forward",
    "Here",
    "Queries",
    "QuerySource",
    "Unavailable",
    "WorkerSource",
    "merge_parts",
    "route_key",
    "token_guard",
]

log = logging.getLogger("orderwatch.queries")

#: Marks a request one worker forwarded to another: answer for your own partitions only.
FORWARDED_HEADER = "X-Orderwatch-Forwarded"
#: What a 503 tells the client to wait before asking again.
RETRY_AFTER_SECONDS = 2
#: Served without the token: probes, metrics and the console's page (its API calls send it).
OPEN_PATHS = frozenset({"/health", "/ready", "/metrics", "/", "/console"})
_OPEN_PREFIXES = ("/console/",)
#: How long a worker waits for another's answer.
PEER_TIMEOUT_SECONDS = 5.0
DEFAULT_LIMIT = 50
MAX_LIMIT = 500
_STATUSES = frozenset({"open", "at_risk", "breached", "closed"})


class QuerySource(Protocol):
    """What the queries read of the worker."""

    policy: Policy
    partitions: int

    def route(self, key: str) -> int:
        """The partition of a key."""
        ...

    def owned(self) -> set[int]:
        """The partitions this worker owns now."""
        ...

    def owners(self) -> dict[int, str]:
        """Each partition's owner's URL, from the group's last assignment."""
        ...

    def own_url(self) -> str: ...

    def ready(self) -> bool:
        """Partitions assigned, tables recovered, Kafka reachable."""
        ...

    def order(self, order_id: str) -> OrderState | None: ...

    def merchant(self, merchant_id: str) -> MerchantState | None: ...

    def orders_of(self, merchant_id: str, partitions: set[int]) -> Iterable[OrderState]:
        """The merchant's orders held on ``partitions``."""
        ...


# -- routing --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Here:
    """Answer from this worker's own stores."""


@dataclass(frozen=True, slots=True)
class Forward:
    """Ask the owner at ``url``."""

    url: str


@dataclass(frozen=True, slots=True)
class Unavailable:
    """Nobody can answer now (503): why."""

    reason: str


def route_key(
    partition: int,
    *,
    owned: set[int],
    owners: Mapping[int, str],
    own_url: str,
    forwarded: bool,
) -> Here | Forward | Unavailable:
    """Who answers for ``partition``: this worker if it owns it, else the owner the group's
    assignment names. A forwarded request is never forwarded again: its receiver answers or
    says the partition is moving."""
    if partition in owned:
        return Here()
    if forwarded:
        return Unavailable(f"partition {partition} is moving between workers (a rebalance)")
    url = owners.get(partition)
    if url is None or _same_url(url, own_url):
        return Unavailable(f"partition {partition} has no owner yet (the group is rebalancing)")
    return Forward(url)


def _same_url(first: str, second: str) -> bool:
    return first.rstrip("/") == second.rstrip("/")


# -- merchant order lists -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Part:
    """One worker's share of a merchant's order list."""

    partitions: frozenset[int]
    rows: list[dict[str, Any]]
    more: bool
    known: bool

    def as_json(self) -> dict[str, Any]:
        return {
            "partitions": sorted(self.partitions),
            "orders": self.rows,
            "more": self.more,
            "known": self.known,
        }

    @classmethod
    def from_json(cls, data: Any) -> Part:
        return cls(
            frozenset(int(p) for p in data["partitions"]),
            list(data["orders"]),
            bool(data["more"]),
            bool(data["known"]),
        )


def merge_parts(
    parts: Iterable[Part], *, partitions: int, limit: int
) -> tuple[list[dict[str, Any]], bool, bool] | str:
    """The merged page (rows, whether more follow, whether the merchant is known anywhere), or
    the sentence saying why the parts cannot make one (partitions missing or twice)."""
    seen: set[int] = set()
    rows: list[dict[str, Any]] = []
    more = known = False
    for part in parts:
        twice = seen & part.partitions
        if twice:
            return f"partitions {sorted(twice)} answered twice (the group is rebalancing)"
        seen |= part.partitions
        rows += part.rows
        more = more or part.more
        known = known or part.known
    missing = set(range(partitions)) - seen
    if missing:
        return f"partitions {sorted(missing)} have no owner now (the group is rebalancing)"
    rows.sort(key=views.sort_key)
    return rows[:limit], more or len(rows) > limit, known


# -- the token ------------------------------------------------------------------------------


def token_guard(token: str) -> Callable[..., Awaitable[web.StreamResponse]]:
    """An aiohttp middleware: every path but :data:`OPEN_PATHS` needs ``Bearer <token>``."""
    expected = f"Bearer {token}".encode()

    @web.middleware
    async def guard(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        path = request.path
        if path in OPEN_PATHS or path.startswith(_OPEN_PREFIXES):
            return await handler(request)
        given = request.headers.get("Authorization", "").encode()
        # RFC 6750's query form too, for clients that cannot set a header (EventSource).
        query_token = request.query.get("access_token")
        if query_token is not None:
            given = f"Bearer {query_token}".encode()
        if not hmac.compare_digest(given, expected):
            return web.json_response(
                {
                    "error": "this worker needs a bearer token: send the header "
                    "'Authorization: Bearer <ORDERWATCH_WEB_TOKEN>'"
                },
                status=401,
                headers={"WWW-Authenticate": 'Bearer realm="orderwatch"'},
            )
        return await handler(request)

    return guard


# -- the routes -----------------------------------------------------------------------------


def _error(status: int, sentence: str, *, retry: bool = False) -> web.Response:
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)} if retry else None
    return web.json_response({"error": sentence}, status=status, headers=headers)


def _not_ready() -> web.Response:
    return _error(
        503,
        "this worker's partitions are being assigned or restored; ask again shortly",
        retry=True,
    )


class Queries:
    """The query routes of one worker, over its :class:`QuerySource`."""

    def __init__(self, source: QuerySource, *, token: str | None = None) -> None:
        self.source = source
        self.token = token
        self._session: aiohttp.ClientSession | None = None

    def install(self, app: web.Application) -> None:
        """Add the routes (and the token's guard, if one is set) to ``app``."""
        if self.token is not None:
            app.middlewares.append(token_guard(self.token))
        app.router.add_get("/orders/{order_id}", self.order)
        app.router.add_get("/merchants/{merchant_id}", self.merchant)
        app.router.add_get("/merchants/{merchant_id}/orders", self.merchant_orders)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    # -- key queries ----------------------------------------------------------------------

    async def order(self, request: web.Request) -> web.Response:
        order_id = request.match_info["order_id"]
        source = self.source

        def answer() -> web.Response:
            state = source.order(order_id)
            if state is None:
                return _error(
                    404,
                    f"no order {order_id!r} is known here: never seen, or forgotten after "
                    "its state's time to live",
                )
            return web.json_response(views.order_view(state, source.policy))

        return await self._by_key(request, source.route(order_id), answer)

    async def merchant(self, request: web.Request) -> web.Response:
        merchant_id = request.match_info["merchant_id"]
        source = self.source

        def answer() -> web.Response:
            state = source.merchant(merchant_id)
            if state is None:
                return _error(
                    404,
                    f"no merchant {merchant_id!r} is known: none of its orders reached the "
                    "store-health window yet",
                )
            return web.json_response(views.merchant_view(state, source.policy))

        return await self._by_key(request, source.route(merchant_id), answer)

    async def _by_key(
        self, request: web.Request, partition: int, answer: Callable[[], web.Response]
    ) -> web.Response:
        source = self.source
        decision = route_key(
            partition,
            owned=source.owned(),
            owners=source.owners(),
            own_url=source.own_url(),
            forwarded=FORWARDED_HEADER in request.headers,
        )
        if isinstance(decision, Here):
            return answer() if source.ready() else _not_ready()
        if isinstance(decision, Unavailable):
            return _error(503, f"{decision.reason}; ask again shortly", retry=True)
        return await self._forward(request, decision.url)

    async def _forward(self, request: web.Request, url: str) -> web.Response:
        try:
            status, body, retry_after = await self._get(url, request.rel_url.path_qs, request)
        except (TimeoutError, aiohttp.ClientError) as error:
            return self._unreachable(url, error)
        headers = {"Retry-After": retry_after} if retry_after else None
        return web.Response(
            body=body,
            status=status,
            content_type="application/json",
            charset="utf-8",
            headers=headers,
        )

    def _unreachable(self, url: str, error: BaseException) -> web.Response:
        log.warning("cannot reach the worker at %s: %s", url, type(error).__name__)
        return _error(
            503,
            f"the worker at {url} that owns this data does not answer; ask again shortly",
            retry=True,
        )

    async def _get(
        self, url: str, path_qs: str, request: web.Request
    ) -> tuple[int, bytes, str | None]:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=PEER_TIMEOUT_SECONDS)
            )
        headers = {FORWARDED_HEADER: "1"}
        authorization = request.headers.get("Authorization")
        if authorization is not None:
            headers["Authorization"] = authorization
        async with self._session.get(url.rstrip("/") + path_qs, headers=headers) as response:
            return response.status, await response.read(), response.headers.get("Retry-After")

    # -- the merchant's orders ------------------------------------------------------------

    async def merchant_orders(self, request: web.Request) -> web.Response:
        merchant_id = request.match_info["merchant_id"]
        query = request.query
        status = query.get("status") or None
        if status is not None and status not in _STATUSES:
            return _error(400, f"status must be one of {', '.join(sorted(_STATUSES))}")
        try:
            limit = int(query.get("limit", DEFAULT_LIMIT))
        except ValueError:
            limit = 0
        if not 1 <= limit <= MAX_LIMIT:
            return _error(400, f"limit must be a whole number from 1 to {MAX_LIMIT}")
        cursor = query.get("cursor") or None
        try:
            after = None if cursor is None else views.decode_cursor(cursor)
        except ValueError as error:
            return _error(400, f"{error}: start again without it")
        source = self.source
        if FORWARDED_HEADER in request.headers:
            if not source.ready():
                return _not_ready()
            return web.json_response(self._part(merchant_id, status, limit, after).as_json())
        return await self._gather(request, merchant_id, status, limit, after)

    def _part(
        self, merchant_id: str, status: str | None, limit: int, after: tuple[str, str, str] | None
    ) -> Part:
        source = self.source
        owned = source.owned()
        rows = [
            views.order_summary(state, source.policy)
            for state in source.orders_of(merchant_id, owned)
        ]
        page, more = views.order_page(rows, status=status, limit=limit, after=after)
        return Part(frozenset(owned), page, more, bool(rows))

    async def _gather(
        self,
        request: web.Request,
        merchant_id: str,
        status: str | None,
        limit: int,
        after: tuple[str, str, str] | None,
    ) -> web.Response:
        source = self.source
        if not source.ready():
            return _not_ready()
        own_url = source.own_url()
        peers = sorted({url for url in source.owners().values() if not _same_url(url, own_url)})
        parts = [self._part(merchant_id, status, limit, after)]
        path_qs = request.rel_url.path_qs
        answers = await asyncio.gather(
            *(self._get(url, path_qs, request) for url in peers), return_exceptions=True
        )
        for url, answer in zip(peers, answers, strict=True):
            if isinstance(answer, BaseException):
                if isinstance(answer, aiohttp.ClientError | TimeoutError):
                    return self._unreachable(url, answer)
                raise answer
            status_code, body, retry_after = answer
            if status_code != 200:
                headers = {"Retry-After": retry_after} if retry_after else None
                return web.Response(
                    body=body,
                    status=status_code,
                    content_type="application/json",
                    charset="utf-8",
                    headers=headers,
                )
            parts.append(Part.from_json(json.loads(body)))
        merged = merge_parts(parts, partitions=source.partitions, limit=limit)
        if isinstance(merged, str):
            return _error(503, f"{merged}; ask again shortly", retry=True)
        rows, more, known = merged
        if not known:
            return _error(404, f"no order of merchant {merchant_id!r} is known")
        answer_json: dict[str, Any] = {"orders": rows}
        if more and rows:
            answer_json["next_cursor"] = views.encode_cursor(rows[-1])
        return web.json_response(answer_json)


# -- the worker's side ----------------------------------------------------------------------


class WorkerSource:
    """A :class:`QuerySource` over a worker's stores and its group's assignment."""

    def __init__(
        self,
        *,
        policy: Policy,
        partitions: int,
        route: Callable[[str], int],
        owned: Callable[[], set[int]],
        ready: Callable[[], bool],
        stores: Stores,
        assignor: Any,
        orders_topic: str,
        url: str,
    ) -> None:
        self.policy = policy
        self.partitions = partitions
        self._route = route
        self._owned = owned
        self._ready = ready
        self.stores = stores
        self.assignor = assignor
        self.orders_topic = orders_topic
        self.url = url

    def route(self, key: str) -> int:
        return self._route(key)

    def owned(self) -> set[int]:
        return self._owned()

    def ready(self) -> bool:
        return self._ready()

    def owners(self) -> dict[int, str]:
        """From the assignment every member received: each member's URL and its partitions
        of the orders topic (every topic is co-partitioned with it)."""
        found: dict[int, str] = {}
        for url, topics in self.assignor.external_topics_metadata().items():
            for partition in topics.get(self.orders_topic, ()):
                found[int(partition)] = str(url)
        return found

    def own_url(self) -> str:
        return self.url

    def order(self, order_id: str) -> OrderState | None:
        return self.stores.orders.peek(order_id)

    def merchant(self, merchant_id: str) -> MerchantState | None:
        return self.stores.merchants.peek(merchant_id)

    def orders_of(self, merchant_id: str, partitions: set[int]) -> Iterable[OrderState]:
        orders, route = self.stores.orders, self._route
        for key in sorted(orders.peek_keys()):
            if route(key) not in partitions:
                continue
            state = orders.peek(key)
            if state is not None and state.merchant_id == merchant_id:
                yield state
