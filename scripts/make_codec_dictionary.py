"""How ``streams/core/state_codec_dictionary.py`` was made (kept as a record: never run it to
replace a dictionary that has been released, since stored states name it by number).

    python scripts/make_codec_dictionary.py > streams/core/state_codec_dictionary.py

The dictionary is the last 8 KiB of states the core keeps for the simulator's stream (seed 5,
which the tests do not use): a merchant, a carrier and two SKUs, then orders at every stage of
their lives, the most common kind last, where deflate finds it nearest.
"""

from __future__ import annotations

import json
import random
import textwrap

from streams.core import state_codec
from streams.core.engine import Engine
from streams.core.events import decode_event
from streams.policy_files import load_policy
from streams.tools.simulator import generate_events

SIZE = 8192


def samples() -> list[bytes]:
    engine = Engine(load_policy())
    orders: list[bytes] = []
    for number, raw in enumerate(generate_events(seed=5, orders=600)):
        engine.process(decode_event(json.dumps(raw).encode()))  # type: ignore[arg-type]
        if number % 1500 == 0:  # orders caught at every stage of their lives
            orders += [state_codec.encode_order(s) for s in list(engine.orders.values())[::40]]
    rng = random.Random(5)
    aggregates = [
        state_codec.encode_merchant(next(iter(engine.merchants.values()))),
        state_codec.encode_carrier(next(iter(engine.carriers.values()))),
        *(state_codec.encode_sku(s) for s in list(engine.skus.values())[:2]),
    ]
    return aggregates + rng.sample(orders, min(len(orders), 24))


def main() -> None:
    dictionary = b"".join(samples())[-SIZE:]
    lines = textwrap.wrap(dictionary.decode("ascii"), 88, drop_whitespace=False)
    print('"""The codec\'s deflate dictionary number 1 (scripts/make_codec_dictionary.py).')
    print()
    print("Never change it: stored states compressed with it name it by number.")
    print('"""')
    print()
    print("from typing import Final")
    print()
    print("DICTIONARY_1: Final = (")
    for line in lines:
        print(f"    {json.dumps(line)}")
    print(').encode("ascii")')


if __name__ == "__main__":
    main()
