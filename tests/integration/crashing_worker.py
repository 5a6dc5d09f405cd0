"""A worker with one more timer, which raises once the worker is ready: a crashed Faust service
(run by ``test_stops.py`` with the worker's ``ORDERWATCH_`` environment)."""

from __future__ import annotations

import asyncio

from streams.kafka.topics import ensure_topics
from streams.ops.logs import configure_logging
from streams.settings import load_settings
from streams.worker import OrderwatchWorker, run


def main() -> None:
    settings = load_settings()
    worker = OrderwatchWorker(settings)
    configure_logging("info", "text")
    asyncio.run(ensure_topics(settings))

    async def crash() -> None:
        if worker.is_ready():
            raise RuntimeError("a service crashed")

    worker.app.timer(0.5)(crash)
    run(worker)


if __name__ == "__main__":
    main()
