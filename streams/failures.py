"""The worker's one error policy: what handling a message may fail with, and what follows.

- Input that can never be processed (bad bytes, an invalid event) is not a failure: it is
  rejected to the dead-letter topic and the partition flows on.
- A failure to reach Kafka (send, write state, commit), a consumer that skipped offsets or
  stalled on a partition (:mod:`streams.offsets`), or a worker the group removed while it was
  stalled (:class:`Fenced`, :mod:`streams.worker.fence`) is not a property of the message: the
  worker stops at once with a non-zero exit code, without acknowledging its batch, so that a
  restart (by its supervisor) reads it again from the last commit. Nothing is dead-lettered for
  it.
- Any other exception while decoding or deciding is a defect met by this message: the message
  goes to the dead-letter topic as ``processing_failed`` with the error logged, and the rest of
  its batch and the partition flow on.
"""

from __future__ import annotations

import logging
import os
from typing import NoReturn

from aiokafka.errors import KafkaError  # type: ignore[import-untyped]
from faust.exceptions import ProducerSendError

__all__ = [
    "EXIT_KAFKA_UNAVAILABLE",
    "Fenced",
    "SkippedOffsets",
    "StalledPartition",
    "is_infrastructure",
    "stop_worker",
]

log = logging.getLogger("orderwatch.worker")

EXIT_KAFKA_UNAVAILABLE = 75  # EX_TEMPFAIL: try again later


class Fenced(Exception):
    """A batch was handled for partitions this worker may no longer own (it was removed from
    the group while stalled): nothing more of it may be sent."""


_INFRASTRUCTURE = (KafkaError, ProducerSendError, ConnectionError, TimeoutError, Fenced)


class SkippedOffsets(Exception):
    """The consumer handed over a message after skipping some before it."""


class StalledPartition(Exception):
    """The consumer hands over nothing of a partition that has unread messages."""


def is_infrastructure(error: BaseException) -> bool:
    """Did handling fail because Kafka could not be reached or refused a write?"""
    return isinstance(error, _INFRASTRUCTURE)


def stop_worker(error: BaseException, where: str) -> NoReturn:
    """Stop the process now, leaving ``where`` unacknowledged (it is read again on restart).

    An immediate exit is what a crash is, and crash-consistency is what the worker guarantees:
    no offset is committed ahead of the state and outputs of the messages it covers.
    """
    log.critical(
        "stopping at %s: %s: %s; exit %d, a restart reads it again from the last commit",
        where,
        type(error).__name__,
        error,
        EXIT_KAFKA_UNAVAILABLE,
    )
    logging.shutdown()
    os._exit(EXIT_KAFKA_UNAVAILABLE)
