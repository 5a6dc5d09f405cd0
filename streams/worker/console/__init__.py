"""The seller's console: a page the worker serves (``/``, its assets under ``/console/``) and its
live feed (``GET /events``, server-sent events of the outputs, :mod:`streams.worker.feed`).

The page is three static files beside this module (package data, no build step) and loads
nothing from elsewhere: its Content-Security-Policy allows this worker only. It reads the state
queries (``/orders/{id}``, ``/merchants/{id}``) and the feed from the worker that served it.

With ``ORDERWATCH_WEB_TOKEN`` set, the page and its assets are served without it (the page asks
for the token once), and ``/events`` needs it: as ``Authorization: Bearer <token>``, or as
``?access_token=`` (RFC 6750) because a browser's EventSource cannot send headers.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Callable
from importlib import resources
from typing import Any

from aiohttp import web

from streams.worker.feed import HEARTBEAT_SECONDS, OutputFeed

__all__ = ["ASSETS", "ConsoleViews", "token_of"]

#: The files served, by name, with their content types.
ASSETS: dict[str, str] = {
    "index.html": "text/html; charset=utf-8",
    "console.js": "text/javascript; charset=utf-8",
    "console.css": "text/css; charset=utf-8",
}

#: Only this worker: no script, style, font or connection anywhere else.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)

#: Reconnect delay the browser is told (milliseconds).
RETRY_MS = 3000


def token_of(request: web.BaseRequest, *, query: bool) -> str | None:
    """The token a request carries: its bearer token, else (with ``query``) its
    ``?access_token=``."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    if query:
        return request.query.get("access_token") or None
    return None


def _asset(name: str) -> bytes:
    return (resources.files(__name__) / name).read_bytes()


class ConsoleViews:
    """The console's handlers; the worker registers them as Faust pages."""

    def __init__(self, feed: OutputFeed, token: Callable[[], str | None]) -> None:
        self.feed = feed
        self._token = token

    def authorized(self, request: web.BaseRequest) -> bool:
        expected = self._token()
        if expected is None:
            return True
        given = token_of(request, query=True)
        return given is not None and hmac.compare_digest(given.encode(), expected.encode())

    async def index(self, request: Any) -> web.StreamResponse:
        """The page."""
        return self._file("index.html")

    async def asset(self, request: Any, name: str) -> web.StreamResponse:
        """The page's files (its script, its style sheet)."""
        if name not in ASSETS:
            return web.json_response({"error": f"no console file {name!r}"}, status=404)
        return self._file(name)

    def _file(self, name: str) -> web.StreamResponse:
        return web.Response(
            body=_asset(name),
            headers={
                "Content-Type": ASSETS[name],
                "Cache-Control": "no-cache",
                "Content-Security-Policy": CSP,
                "X-Content-Type-Options": "nosniff",
                "Referrer-Policy": "no-referrer",
            },
        )

    async def events(self, request: Any) -> web.StreamResponse:
        """Server-sent events of the outputs: what is kept, then live, with heartbeats.

        ``?probe=1`` answers 204 at once (after the token check): how the page tells a refused
        token from a worker that is down, which EventSource cannot.
        """
        if not self.authorized(request):
            return web.json_response(
                {
                    "error": "this worker needs its token (ORDERWATCH_WEB_TOKEN): send it as "
                    "'Authorization: Bearer <token>' or ?access_token=<token>"
                },
                status=401,
                headers={"WWW-Authenticate": 'Bearer realm="orderwatch"'},
            )
        if request.query.get("probe"):
            return web.Response(status=204, headers={"Cache-Control": "no-store"})
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-store",
                "X-Accel-Buffering": "no",
            }
        )
        await response.prepare(request)
        self.feed.ensure_started()
        last = request.headers.get("Last-Event-ID") or request.query.get("last_event_id")
        try:
            async with self.feed.subscribe(last) as (kept, queue):
                await response.write(f"retry: {RETRY_MS}\n: orderwatch outputs\n\n".encode())
                if kept:
                    await response.write(b"".join(event.encode() for event in kept))
                while True:
                    try:
                        event = await asyncio.wait_for(queue.get(), HEARTBEAT_SECONDS)
                    except TimeoutError:
                        await response.write(b": heartbeat\n\n")
                        continue
                    if event is None:
                        break
                    await response.write(event.encode())
        except ConnectionError:
            pass  # the browser went away
        return response
