"""Faust's partition assignor, admitting to the group only members that run what it runs.

Each member adds its :class:`~streams.worker.admission.Fingerprint` to the JSON metadata Faust's
assignor sends when it joins (under ``"orderwatch"``; Faust's own reader keeps unknown keys, so
an older member's leader still reads it). The leader assigns the partitions among the members
whose fingerprint is its own (or who sent none); a member that differs gets no partitions and,
in its assignment, the line naming the difference, on which it stops with exit 2
(:func:`~streams.worker.admission.refuse_to_join`). See :mod:`streams.worker.admission`.
"""

from __future__ import annotations

import json
import logging
import zlib
from typing import Any

from aiokafka.coordinator.protocol import (  # type: ignore[import-untyped]
    ConsumerProtocolMemberAssignment,
    ConsumerProtocolMemberMetadata,
)
from faust.assignor import PartitionAssignor

from streams.worker.admission import Fingerprint, difference, refuse_to_join

__all__ = ["AdmittingAssignor"]

log = logging.getLogger("orderwatch.worker")

_KEY = "orderwatch"
_REFUSED = "orderwatch_refused"


class AdmittingAssignor(PartitionAssignor):
    """Set :attr:`fingerprint` and :attr:`group_id` before the worker starts."""

    fingerprint: Fingerprint | None = None
    group_id: str = ""

    def metadata(self, topics: set[str]) -> ConsumerProtocolMemberMetadata:
        base = super().metadata(topics)
        if self.fingerprint is None:
            return base
        data = json.loads(base.user_data)
        data[_KEY] = self.fingerprint.as_json()
        return ConsumerProtocolMemberMetadata(
            base.version, base.subscription, json.dumps(data).encode("utf-8")
        )

    def _perform_assignment(self, cluster: Any, member_metadata: Any) -> Any:
        refused = self.refusals(member_metadata)
        admitted = {m: meta for m, meta in member_metadata.items() if m not in refused}
        assignments = dict(super()._perform_assignment(cluster, admitted))
        for member, line in refused.items():
            log.warning("refusing member %s of the group: %s", member, line)
            assignments[member] = ConsumerProtocolMemberAssignment(
                self.version, [], self._compress(json.dumps({_REFUSED: line}).encode("utf-8"))
            )
        return assignments

    def refusals(self, member_metadata: Any) -> dict[str, str]:
        """The members whose fingerprint differs from this (the leader's), with the line."""
        own = self.fingerprint
        if own is None:
            return {}
        refused = {}
        for member, metadata in member_metadata.items():
            try:
                sent = json.loads(metadata.user_data).get(_KEY)
            except (ValueError, AttributeError):
                continue
            theirs = Fingerprint.from_json(sent)
            if theirs is None:
                continue  # an orderwatch without this check: admitted
            line = difference(theirs, own, self.group_id)
            if line is not None:
                refused[member] = line
        return refused

    def on_assignment(self, assignment: Any) -> None:
        try:
            data = json.loads(self._decompress(assignment.user_data))
        except (ValueError, zlib.error):
            data = None
        if isinstance(data, dict) and _REFUSED in data:
            refuse_to_join(str(data[_REFUSED]))
        super().on_assignment(assignment)
