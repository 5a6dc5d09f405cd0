"""A bare Faust agent for ``bench.worker_throughput``: the floor Faust itself sets.

Run as a process of its own (the benchmark starts it)::

    python -m bench.bare_agent --broker HOST:PORT --prefix P --web-port N --mode per-message

A minimal ``faust.App`` (raw serializers, ``autodiscover=False``, in-memory store, web on the
given port) with one agent over the four input topics ``P{orders,inventory,tracking,complaints}``
that ``json.loads`` each value and produces it, with its key, to ``Pbare-out``:

- ``per-message``: ``async for event in stream.events()`` and ``await topic.send(...)`` per
  message;
- ``batched``: ``stream.take_events(1000, within=0.1)`` and ``topic.send_soon(...)`` per
  message (Faust's producer buffer; no await per message).

The web server answers ``/ready`` (200 once partitions are assigned and the rebalance is over)
and ``/metrics`` (``bare_processed_total N``: messages whose output was handed to the
producer), which the benchmark polls as it polls the worker's.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import faust
from faust.worker import Worker

INPUTS = ("orders", "inventory", "tracking", "complaints")
BATCH = 1000
WITHIN = 0.1


def make_app(broker: str, prefix: str, web_port: int, mode: str, datadir: str) -> faust.App:
    app = faust.App(
        f"{prefix}bare-{mode}",
        broker=f"kafka://{broker}",
        store="memory://",
        datadir=datadir,
        web_host="127.0.0.1",
        web_bind="127.0.0.1",
        web_port=web_port,
        web_enabled=True,
        key_serializer="raw",
        value_serializer="raw",
        autodiscover=False,
        topic_disable_leader=True,
        consumer_auto_offset_reset="earliest",
        env={},
    )
    source = app.topic(
        *(prefix + topic for topic in INPUTS), key_serializer="raw", value_serializer="raw"
    )
    out = app.topic(prefix + "bare-out", key_serializer="raw", value_serializer="raw")
    state = {"processed": 0, "ready": False}

    async def per_message(stream: Any) -> None:
        async for event in stream.events():
            json.loads(event.value)
            await out.send(key=event.key, value=event.value)
            state["processed"] += 1

    async def batched(stream: Any) -> None:
        async for events in stream.take_events(BATCH, within=WITHIN):
            for event in events:
                json.loads(event.value)
                out.send_soon(key=event.key, value=event.value)
            state["processed"] += len(events)

    app.agent(source, name=f"bare.{mode}")(per_message if mode == "per-message" else batched)

    async def assigned(sender: Any, **_: Any) -> None:
        state["ready"] = True

    async def ready(web: Any, request: Any) -> Any:
        ok = bool(state["ready"]) and not app.rebalancing
        return web.json({"ready": ok}, status=200 if ok else 503)

    async def metrics(web: Any, request: Any) -> Any:
        return web.text(f"bare_processed_total {state['processed']}\n")

    app.on_rebalance_complete.connect(assigned)  # type: ignore[arg-type]
    app.page("/ready")(ready)
    app.page("/metrics")(metrics)
    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--broker", required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--web-port", type=int, required=True)
    parser.add_argument("--mode", choices=("per-message", "batched"), required=True)
    parser.add_argument("--datadir", required=True)
    args = parser.parse_args(argv)
    app = make_app(args.broker, args.prefix, args.web_port, args.mode, args.datadir)

    class _Worker(Worker):
        def __init__(self, *a: Any, **kw: Any) -> None:
            super().__init__(*a, **kw)
            self.spinner = None  # as the orderwatch worker: no spinner (it turns on DEBUG logs)

    # Faust's Worker parses sys.argv; give it none of the benchmark's arguments.
    import sys

    sys.argv = sys.argv[:1]
    _Worker(app, loglevel="WARNING", quiet=True).execute_from_commandline()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
