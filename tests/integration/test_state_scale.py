"""State at a busy store's scale, on the real broker: a store placing 10,000 orders a day and a
SKU with 5,000 open orders are decided as replay decides them, and every value the worker
writes stays within its bound.

Before ledgers, one store's health state held every order of its window: 8,000 orders took
1,002,295 bytes, over the producer's 1 MB limit, and its partition stopped for good; a SKU held
every open and closed order (450,523 bytes at 4,887 open orders).
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer  # type: ignore[import-untyped]
from faults import Scenario, run_scenario

from streams.kafka.topics import TABLES, changelog_topic
from streams.settings import load_settings
from streams.tools.simulator import generate_events

pytestmark = [pytest.mark.broker, pytest.mark.slow]

START = datetime(2026, 3, 2, tzinfo=UTC)
#: The largest value each table may hold (bytes, as written to its changelog).
BOUNDS = {
    "orders": 1_000,  # an open order's state is about 200 bytes; a closed one keeps more
    "merchants": 16_000,
    "carriers": 16_000,
    "ledgers": 16_000,  # a page: at most 512 moments of a ledger, or 256 claims of a SKU
    "skus": 8_000,  # a head: one slot per page of its queue and ledgers
    "clocks": 1_000,
    "inbox": 64_000,
}


def busy_store_lines(orders: int, hot_sku_orders: int) -> list[bytes]:
    """One store placing 10,000 orders a day (the simulator's lifecycle for each), and on
    another store a SKU whose ``hot_sku_orders`` orders are placed and never shipped, with
    stock for 100 of them."""
    busy = list(
        generate_events(
            seed=5, orders=orders, merchants=1, start=START, orders_per_hour=10_000 / 24
        )
    )
    hot = [
        {
            "event_id": "hot-stock",
            "type": "inventory.updated",
            "occurred_at": START.isoformat(),
            "merchant_id": "m-hot",
            "sku": "HOT-1",
            "available": 100,
        }
    ]
    for number in range(hot_sku_orders):
        placed_at = START + timedelta(seconds=5 * number)
        hot.append(
            {
                "event_id": f"hot-{number:05d}",
                "type": "order.placed",
                "occurred_at": placed_at.isoformat(),
                "merchant_id": "m-hot",
                "order_id": f"hot-{number:05d}",
                "sku": "HOT-1",
                "quantity": 1,
                "unit_price": "9.90",
                "shipping_price": "1.00",
                "currency": "USD",
                "destination_country": "US",
            }
        )
    # Merged by event time, as both stores' events would reach a broker: the hot SKU's events
    # appended after two days of the busy store's would be days late, beyond the allowed
    # lateness, where the contract lets a worker's order of arrival decide.
    timed = [
        (datetime.fromisoformat(event["occurred_at"]), json.dumps(event).encode())
        for event in [*busy, *hot]
    ]
    return [line for _, line in sorted(timed, key=lambda pair: pair[0])]


async def largest_values(bootstrap: str, app_id: str) -> dict[str, int]:
    """The largest value each table's changelog holds."""
    settings = load_settings(app_id=app_id, topic_prefix=f"{app_id}-")
    topics = {changelog_topic(settings, table): table for table in TABLES}
    consumer = AIOKafkaConsumer(
        *topics, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    try:
        partitions = consumer.assignment()
        while not partitions:
            await asyncio.sleep(0.1)
            partitions = consumer.assignment()
        ends = await consumer.end_offsets(list(partitions))
        largest: dict[str, int] = defaultdict(int)
        remaining = {tp for tp, end in ends.items() if end > 0}
        while remaining:
            batches = await consumer.getmany(timeout_ms=1000, max_records=5000)
            for tp, records in batches.items():
                table = topics[tp.topic]
                for record in records:
                    largest[table] = max(largest[table], len(record.value or b""))
                    if record.offset + 1 >= ends[tp]:
                        remaining.discard(tp)
        return dict(largest)
    finally:
        await consumer.stop()


@pytest.mark.durable_broker("reads every changelog record, and Tansu reports short end offsets")
def test_a_busy_store_and_a_sku_with_5000_open_orders(kafka_bootstrap: str, tmp_path: Path) -> None:
    lines = busy_store_lines(orders=20_000, hot_sku_orders=5_000)
    scenario = Scenario(rate=4_000.0, plan=(), bad_lines=0, workers=1)
    report = run_scenario(kafka_bootstrap, tmp_path, scenario, lines=lines, say=print)
    print(report.line(), report.log_lines)
    assert report.comparison.clean, "\n".join([report.line(), *report.comparison.examples])
    assert report.comparison.expected > 5_000
    largest = asyncio.run(largest_values(kafka_bootstrap, report.app_id))
    print("largest values:", largest)
    assert set(largest) >= {"orders", "merchants", "ledgers", "skus"}
    over = {table: size for table, size in largest.items() if size > BOUNDS[table]}
    assert not over, f"values over their bound: {over}"
