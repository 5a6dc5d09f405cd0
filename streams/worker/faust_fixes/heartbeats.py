"""The group coordinator's answers to this worker's heartbeats, followed for the fence.

Works around: aiokafka 0.14 telling no one which heartbeats the group coordinator accepted (a
worker resumed after a long stall cannot tell whether it is still in the group), and
faust-streaming 0.15.3 keeping aiokafka's consumer, and its coordinator, inside its consumer
thread. Fails without it:
``tests/unit/worker/test_fence.py::test_a_worker_resumed_after_its_session_expired_is_fenced``;
on a broker,
``tests/integration/test_faults.py::test_workers_frozen_past_their_session_timeout_lose_invent_and_change_nothing``.

:func:`group_coordinator` finds the coordinator; :func:`follow_heartbeats` wraps the method it
sends its requests with, and tells the fence (:mod:`streams.worker.fence`) of every heartbeat
answered without error (or with a rebalance in progress: the member stays in the group).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import faust

__all__ = ["Renewed", "follow_heartbeats", "group_coordinator"]

Renewed = Callable[[float, str], None]
"""Told (sent at, member id) of each heartbeat that renewed a member's session."""

#: The heartbeat answers that renew a member's session: none, and a rebalance in progress.
_RENEWING = frozenset({0, 27})


def group_coordinator(app: faust.App) -> Any | None:
    """aiokafka's group coordinator of ``app``'s consumer, or None (not started, or not the
    aiokafka driver)."""
    with contextlib.suppress(AttributeError):
        consumer: Any = app.consumer
        return consumer._thread._ensure_consumer()._coordinator
    return None


def follow_heartbeats(coordinator: Any, renewed: Renewed, clock: Callable[[], float]) -> bool:
    """Tell ``renewed`` of each heartbeat ``coordinator`` sends that its group accepts (sent at
    ``clock()``). Once per coordinator; False if it has not the expected shape."""
    send = getattr(coordinator, "_send_req", None)
    if send is None or not hasattr(coordinator, "member_id"):
        return False
    if getattr(send, "_orderwatch_fence", False):
        return True

    async def send_req(request: Any) -> Any:
        if not type(request).__name__.startswith("HeartbeatRequest"):
            return await send(request)
        sent_at, member = clock(), coordinator.member_id
        response = await send(request)
        if getattr(response, "error_code", None) in _RENEWING:
            renewed(sent_at, member)
        return response

    send_req._orderwatch_fence = True  # type: ignore[attr-defined]
    coordinator._send_req = send_req
    return True
