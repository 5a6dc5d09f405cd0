"""What the worker sends: a batch's actions carried out on Kafka.

Everything goes straight to the producer (Faust's, or its transaction manager with
``exactly_once``), not through Faust's topic objects: a batch hands its messages over in a row
and waits for none of them; :meth:`Publisher.delivered` waits until Kafka has them all, when a
batch's acknowledgement needs it (outputs before state: :mod:`streams.worker.acknowledge`). A
message Kafka finally refuses stops the worker (the error policy, :mod:`streams.worker.failures`),
so nothing is acknowledged, and no state written, past it.

Facts for the aggregate partitions go as one message per partition per batch (a
:data:`~streams.worker.wire.BATCH` envelope), not one per fact.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from streams.core import state_codec
from streams.core.facts import Fact, sku_subject
from streams.core.ids import rejection_id
from streams.core.output_json import raw_text, serialize
from streams.core.outputs import (
    DeadlineBreached,
    DeadlineResolved,
    EventRejected,
    KafkaSource,
    Rejection,
)
from streams.core.processor import Actions, Output
from streams.kafka.headers import Headers, headers
from streams.ops.metrics import Metrics
from streams.worker import wire
from streams.worker.failures import is_infrastructure, stop_worker
from streams.worker.inbox_table import Ref

__all__ = ["PROCESSING_FAILED", "Publisher", "where"]

log = logging.getLogger("orderwatch.worker")

PROCESSING_FAILED = Rejection(
    "processing_failed",
    "orderwatch failed to process this message; see the worker log for the error",
)


def where(message: Any) -> str:
    """A message's coordinates, as logs name them."""
    return f"{message.topic}[{message.partition}]@{message.offset}"


class Publisher:
    """Sends outputs, facts, forwarded events and dead letters, and counts them."""

    def __init__(
        self,
        producer: Callable[[], Awaitable[Any]],
        topics: dict[str, str],
        *,
        partition_of: Callable[[str], int],
        metrics: Metrics,
        source: str,
    ) -> None:
        self._producer_started = producer
        self._producer: Any = None
        self.topics = topics
        self._partition_of = partition_of
        self.metrics = metrics
        self._source = source
        self._refused: BaseException | None = None

    async def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        partition: int | None = None,
        attributes: Headers | None = None,
    ) -> Any:
        """Hand one message to the producer; its delivery (checked when it completes)."""
        producer = self._producer or await self._started()
        delivery = await producer.send(topic, key, value, partition, None, attributes)
        delivery.add_done_callback(self._delivered)
        return delivery

    async def delivered(self) -> None:
        """Wait until Kafka has acknowledged every message handed over so far (a refused one
        stops the worker before this returns)."""
        producer = self._producer or await self._started()
        await _flush(producer)
        await asyncio.sleep(0)  # the deliveries' callbacks run
        if self._refused is not None:
            stop_worker(self._refused, "a send")

    def _delivered(self, delivery: Any) -> None:
        """A message's delivery completed: one Kafka refused stops the worker."""
        if delivery.cancelled():
            return
        error = delivery.exception()
        if error is not None:
            self._refused = error
            if not is_infrastructure(error):
                log.error("a send failed: %r", error)
            stop_worker(error, "a send")

    async def _started(self) -> Any:
        """Faust's producer (its transaction manager with exactly_once), started once."""
        self._producer = await self._producer_started()
        return self._producer

    async def carry_out(self, actions: Actions[Ref, bytes]) -> None:
        """Send what a batch decided (the state writes are the caller's).

        A message whose handling met Kafka or the local store failing is not dead-lettered:
        the worker stops before anything of the batch is sent, and reads it again.
        """
        for ref, error in actions.failed:
            if is_infrastructure(error):
                stop_worker(error, where(ref.message))
        await self.publish(actions.outputs)
        if actions.facts:
            await self.send_facts(actions.facts)
        for ref, event in actions.forward:
            message = ref.message
            await self.send(self.topics["order-events"], event.order_id.encode(), message.value)
        for ref, stock in actions.forward_stock:
            key = sku_subject(stock.merchant_id, stock.sku).encode()
            envelope = wire.pack(wire.INVENTORY, stock.occurred_at, ref.message.value or b"")
            await self.send(self.topics["aggregate-inputs"], key, envelope)
        for ref, rejection in actions.rejected:
            await self.reject(ref.message, rejection)
        for ref, error in actions.failed:
            await self.failed(ref.message, error)

    async def publish(self, outputs: Sequence[Output]) -> None:
        if not outputs:
            return
        for output in outputs:
            value = serialize(output).encode("utf-8")
            attributes = headers(output, self._source)
            if isinstance(output, DeadlineBreached | DeadlineResolved):
                topic, key = self.topics["breaches"], output.order_id
            else:
                topic, key = self.topics["recommendations"], output.subject
            await self.send(topic, key.encode(), value, None, attributes)
        self.metrics.observe_outputs(outputs)

    async def send_facts(self, facts: Sequence[Fact]) -> None:
        """One message per aggregate partition, carrying that partition's facts in order."""
        by_partition: dict[int, list[bytes]] = {}
        latest: dict[int, datetime] = {}
        for fact in facts:
            partition = self._partition_of(fact.subject)
            envelope = wire.pack(wire.FACT, fact.at, state_codec.encode_fact(fact))
            by_partition.setdefault(partition, []).append(envelope)
            if partition not in latest or fact.at > latest[partition]:
                latest[partition] = fact.at
        topic = self.topics["aggregate-inputs"]
        for partition, envelopes in by_partition.items():
            value = wire.pack_batch(latest[partition], envelopes)
            await self.send(topic, None, value, partition)

    async def reject(self, message: Any, rejection: Rejection) -> None:
        """A dead letter for ``message``, saying why."""
        raw = message.value or b""
        key = message.key.decode("utf-8", errors="replace") if message.key is not None else None
        source = f"{message.topic}:{message.partition}:{message.offset}"
        rejected = EventRejected(
            rejection_id=rejection_id(source, raw),
            source=KafkaSource(
                topic=message.topic, partition=message.partition, offset=message.offset
            ),
            key=key,
            raw=raw_text(raw),
            error=rejection.error,
            rejected_at=datetime.now(UTC),
            reason=rejection.reason,
        )
        self.metrics.observe_rejection(message.topic, rejection.reason)
        await self.send(
            self.topics["dead-letter"],
            message.key,
            serialize(rejected).encode("utf-8"),
            None,
            headers(rejected, self._source),
        )

    async def failed(self, message: Any, error: Exception) -> None:
        """A defect met while handling ``message``: logged, counted, dead-lettered."""
        log.error(
            "failed to process %s",
            where(message),
            exc_info=(type(error), error, error.__traceback__),
        )
        await self.reject(message, PROCESSING_FAILED)


async def _flush(producer: Any) -> None:
    """Faust's producer flush, without waiting out the linger.

    aiokafka's ``flush`` waits for batches that are still lingering (``producer_linger``) to
    fill; its ``flush_for_commit`` closes them and wakes the sender, so the wait is one round
    trip. Used when Faust's producer has one aiokafka producer and nothing buffered of its own
    (at least once); otherwise Faust's flush.
    """
    kafka = getattr(producer, "_producer", None)
    accumulator = getattr(kafka, "_message_accumulator", None)
    buffer = getattr(producer, "buffer", None)
    if (
        accumulator is None
        or not hasattr(accumulator, "flush_for_commit")
        or getattr(producer, "_transaction_producers", None)
        or (buffer is not None and getattr(buffer, "size", 0))
    ):
        await producer.flush()
        return
    await accumulator.flush_for_commit()
