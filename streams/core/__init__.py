"""The pure core: orders, aggregates and clocks, decided without I/O.

Its public face is named here: the partition processor with the reads it takes and the actions
it returns (:mod:`streams.core.processor`), its timekeepers (:mod:`streams.core.timekeeping`),
replay's engine (:mod:`streams.core.engine`) and the compiled policy
(:mod:`streams.core.policy`, its rule ids in :mod:`streams.core.rule_ids`).

Importing the package imports none of them: each name is imported from its module when first
used, so importing one core module never pulls in the rest, and no module of the core imports
itself back through this package.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from streams.core.engine import Engine, EngineStats
    from streams.core.policy import InvalidPolicy, Policy, compile_policy
    from streams.core.processor import (
        Actions,
        AggregateRead,
        ClockRead,
        InboxKeeper,
        OrderRead,
        Output,
        PartitionProcessor,
        Read,
        StockRead,
        Unreadable,
        WatermarkRead,
    )
    from streams.core.rule_ids import RULE_IDS, RuleId
    from streams.core.timekeeping import BatchTime, EventTime, StreamTime, Timekeeper, WallTime

__all__ = [
    "RULE_IDS",
    "Actions",
    "AggregateRead",
    "BatchTime",
    "ClockRead",
    "Engine",
    "EngineStats",
    "EventTime",
    "InboxKeeper",
    "InvalidPolicy",
    "OrderRead",
    "Output",
    "PartitionProcessor",
    "Policy",
    "Read",
    "RuleId",
    "StockRead",
    "StreamTime",
    "Timekeeper",
    "Unreadable",
    "WallTime",
    "WatermarkRead",
    "compile_policy",
]

#: The module each public name lives in.
_HOMES: Final = MappingProxyType(
    {
        **dict.fromkeys(("Engine", "EngineStats"), "engine"),
        **dict.fromkeys(("InvalidPolicy", "Policy", "compile_policy"), "policy"),
        **dict.fromkeys(
            (
                "Actions",
                "AggregateRead",
                "ClockRead",
                "InboxKeeper",
                "OrderRead",
                "Output",
                "PartitionProcessor",
                "Read",
                "StockRead",
                "Unreadable",
                "WatermarkRead",
            ),
            "processor",
        ),
        **dict.fromkeys(("RULE_IDS", "RuleId"), "rule_ids"),
        **dict.fromkeys(
            ("BatchTime", "EventTime", "StreamTime", "Timekeeper", "WallTime"), "timekeeping"
        ),
    }
)

if not TYPE_CHECKING:

    def __getattr__(name: str) -> object:
        """A public name, imported from its module on first use."""
        home = _HOMES.get(name)
        if home is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        return getattr(__import__(f"{__name__}.{home}", fromlist=(name,)), name)
