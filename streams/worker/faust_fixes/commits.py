"""Telling the worker which offsets Faust committed.

Works around: faust-streaming (0.15) has no signal for "these offsets are committed"; its
consumer only calls ``app.tables.on_commit(offsets)`` once a commit succeeded (for the tables'
own exactly-once bookkeeping). Fails without it:
``tests/unit/worker/faust_fixes/test_commits.py::test_an_applied_input_leaves_the_inbox_once_its_message_is_committed``.

:func:`follow_commits` wraps that call, so the worker learns each committed offset right after
Faust's own handling of it (:meth:`~streams.worker.acknowledge.Acknowledgement.committed`, step 5
of a batch's acknowledgement).
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from typing import Any

import faust

__all__ = ["Committed", "follow_commits"]

Committed = Callable[[str, int, int], None]
"""Told (topic, partition, offset) of each offset Faust committed (the next offset to read)."""


def follow_commits(app: faust.App, committed: Committed) -> None:
    """After each of ``app``'s commits, tell ``committed`` every offset it committed."""
    tables: Any = app.tables
    on_commit = tables.on_commit

    def on_commit_then_tell(offsets: MutableMapping[Any, int]) -> None:
        on_commit(offsets)
        for tp, offset in offsets.items():
            committed(tp.topic, tp.partition, offset)

    tables.on_commit = on_commit_then_tell
