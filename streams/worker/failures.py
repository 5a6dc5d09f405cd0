"""The worker's one error policy: what handling a message may fail with, and what follows.

- Input that can never be processed (bad bytes, an invalid event) is not a failure: it is
  rejected to the dead-letter topic and the partition flows on.
- A failure to reach Kafka (send, write state, commit), a consumer that skipped offsets or
  stalled on a partition (:mod:`streams.worker.faust_fixes.offsets`), or a worker the group removed
  while it was stalled (:class:`Fenced`, :mod:`streams.worker.fence`) is not a property of the
  message: the worker stops at once with a non-zero exit code, without acknowledging its batch, so
  that a restart (by its supervisor) reads it again from the last commit. Nothing is dead-lettered
  for it.
- Any other exception while decoding or deciding is a defect met by this message: the message
  goes to the dead-letter topic as ``processing_failed`` with the error logged, and the rest of
  its batch and the partition flow on.
- Outside a message (timers, rebalance callbacks, the rebuild and catch-up after an assignment)
  Kafka failing stops the worker the same way (:func:`stopping_on_kafka_failure`). Whatever else
  stops Faust (a crashed service, an exception in recovery) exits 75 as well, with its error
  logged (:func:`exit_code_of_stop`): a restart is what it needs. Only a bad setting exits
  otherwise, 1 or 2 (:class:`~streams.errors.ConfigurationError`), and is not restarted.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable, Coroutine
from typing import Any, NoReturn, ParamSpec, TypeVar

from aiokafka.errors import KafkaError  # type: ignore[import-untyped]
from faust.exceptions import ProducerSendError

from streams.errors import ConfigurationError
from streams.worker.backends import StoreFailure

__all__ = [
    "EXIT_KAFKA_UNAVAILABLE",
    "Fenced",
    "SkippedOffsets",
    "StalledPartition",
    "exit_code_of_stop",
    "is_infrastructure",
    "stop_worker",
    "stopping_on_kafka_failure",
]

log = logging.getLogger("orderwatch.worker")

EXIT_KAFKA_UNAVAILABLE = 75  # EX_TEMPFAIL: try again later
_P = ParamSpec("_P")
_R = TypeVar("_R")
_Async = Callable[_P, Coroutine[Any, Any, _R]]


class Fenced(Exception):
    """A batch was handled for partitions this worker may no longer own (it was removed from
    the group while stalled): nothing more of it may be sent."""


_INFRASTRUCTURE = (
    KafkaError,
    ProducerSendError,
    ConnectionError,
    TimeoutError,
    Fenced,
    StoreFailure,
)


class SkippedOffsets(Exception):
    """The consumer handed over a message after skipping some before it."""


class StalledPartition(Exception):
    """The consumer hands over nothing of a partition that has unread messages."""


def is_infrastructure(error: BaseException) -> bool:
    """Did handling fail because Kafka could not be reached or refused a write, or the local
    state store failed (not because of the message)?"""
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


def stopping_on_kafka_failure(where: str) -> Callable[[_Async[_P, _R]], _Async[_P, _R]]:
    """A coroutine function under the error policy: Kafka failing in it stops the worker (its
    other errors propagate to Faust, whose crash :func:`exit_code_of_stop` maps to 75)."""

    def wrap(function: _Async[_P, _R]) -> _Async[_P, _R]:
        @functools.wraps(function)
        async def run(*args: _P.args, **kwargs: _P.kwargs) -> _R:
            try:
                return await function(*args, **kwargs)
            except Exception as error:
                if is_infrastructure(error):
                    stop_worker(error, where)
                raise

        return run

    return wrap


def exit_code_of_stop(code: object, error: BaseException | None) -> int:
    """The exit status of a worker that Faust's worker ended with ``code`` after ``error``.

    A clean stop (0) stays 0; a bad setting keeps its status (1 or 2); anything else that
    stopped the worker (a crashed service, an error in recovery or in a rebalance, an exhausted
    memory) is transient: 75.
    """
    if code in (0, None):
        return 0
    if isinstance(error, ConfigurationError):
        return error.exit_code
    return EXIT_KAFKA_UNAVAILABLE
