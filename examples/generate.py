"""Regenerate ``examples/orders.jsonl``: about 200 simulated orders with 3 malformed lines.

Run from anywhere: ``python examples/generate.py``. The output is deterministic (seed 7), so
running it again rewrites the same bytes unless ``streams/tools/simulator.py`` changed.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # the checkout's ``streams``, installed or not

from streams.tools.simulator import generate_events, write_jsonl  # noqa: E402

OUTPUT = HERE / "orders.jsonl"
SEED = 7
ORDERS = 200
BAD_LINES = 3


def main() -> int:
    # A small marketplace, so a few hundred orders show stock-outs and aggregate hot spots.
    events = list(
        generate_events(
            seed=SEED, orders=ORDERS, merchants=4, skus_per_merchant=6, orders_per_hour=3.0
        )
    )
    # One malformed line after every `every` events: exactly BAD_LINES of them.
    every = len(events) // (BAD_LINES + 1) + 1
    lines = write_jsonl(events, OUTPUT, bad_line_every=every, seed=SEED)
    bad = lines - len(events)
    print(f"wrote {lines} lines ({len(events)} events, {bad} malformed) to {OUTPUT.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
