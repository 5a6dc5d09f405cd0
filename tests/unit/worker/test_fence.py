"""The fence: a batch of an assignment this worker may have lost sends nothing."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from streams.worker.fence import Fence, Fenced


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class _Response:
    def __init__(self, error_code: int) -> None:
        self.error_code = error_code


class HeartbeatRequest:  # named as aiokafka's
    pass


class _Coordinator:
    """aiokafka's group coordinator, as far as the fence reads it."""

    def __init__(self) -> None:
        self.member_id = "m1"
        self.generation = 4
        self.answer = 0

    async def _send_req(self, request: Any) -> Any:
        return _Response(self.answer)


def _fence() -> tuple[Fence, _Clock, _Coordinator]:
    clock = _Clock()
    fence = Fence(6.0, clock=clock)
    coordinator = _Coordinator()
    assert fence.watch(coordinator)
    assert fence.watch(coordinator)  # once
    fence.assigned(4, "m1")
    return fence, clock, coordinator


def _beat(coordinator: _Coordinator) -> None:
    asyncio.run(coordinator._send_req(HeartbeatRequest()))


def test_a_batch_waits_for_an_accepted_heartbeat_then_writes() -> None:
    fence, clock, coordinator = _fence()
    term = fence.term
    assert not fence.held(term)  # no heartbeat accepted yet
    _beat(coordinator)
    assert fence.held(term)
    asyncio.run(fence.check(term))
    # A rebalance in progress still renews the member's session.
    clock.now += 4
    coordinator.answer = 27
    _beat(coordinator)
    clock.now += 4
    assert fence.held(term)
    assert fence.stamp(term) < fence.stamp(term)


def test_a_worker_resumed_after_its_session_expired_is_fenced() -> None:
    fence, clock, coordinator = _fence()
    term = fence.term
    _beat(coordinator)
    clock.now += 20  # frozen past the session timeout
    assert not fence.held(term)

    async def resumed() -> None:
        checking = asyncio.ensure_future(fence.check(term))
        await asyncio.sleep(0.2)
        assert not checking.done()  # waits for the coordinator
        coordinator.answer = 25  # UNKNOWN_MEMBER_ID: the session expired
        await coordinator._send_req(HeartbeatRequest())
        await asyncio.sleep(0.2)
        assert not checking.done()
        coordinator.member_id = ""  # aiokafka forgets the member id, then joins again
        with pytest.raises(Fenced):
            await checking

    asyncio.run(resumed())


def test_a_worker_that_joined_again_as_another_member_is_fenced() -> None:
    fence, clock, coordinator = _fence()
    term = fence.term
    clock.now += 20
    coordinator.member_id = "m2"
    _beat(coordinator)
    with pytest.raises(Fenced):
        asyncio.run(fence.check(term))


def test_a_short_stall_and_an_ordinary_rebalance_do_not_fence() -> None:
    fence, clock, coordinator = _fence()
    term = fence.term
    _beat(coordinator)
    clock.now += 5  # stalled, but less than the session timeout
    assert not fence.held(term)

    async def resumed() -> None:
        checking = asyncio.ensure_future(fence.check(term))
        await asyncio.sleep(0.1)
        await coordinator._send_req(HeartbeatRequest())  # the same member: still in the group
        await checking

    asyncio.run(resumed())
    # A rebalance completes while a batch of the previous generation is in flight: the member
    # is the same, the batch writes on (stamped with its own, older generation).
    fence.assigned(5, "m1")
    _beat(coordinator)
    assert fence.held(term)
    assert fence.stamp(term)[0] == 4 < fence.stamp(fence.term)[0]


def test_without_the_coordinator_the_stamps_alone_fence() -> None:
    fence = Fence(6.0)
    assert not fence.watch(object())
    assert fence.held((1, "m"))


def test_a_fenced_batch_stops_the_worker_like_a_kafka_failure() -> None:
    """Timers and rebalance callbacks stop the worker (exit 75) on it, as on Kafka failing."""
    from streams.worker.failures import is_infrastructure

    assert is_infrastructure(Fenced("removed from the group"))
