"""The Faust worker: wiring (:mod:`.app`), the batch loops (:mod:`.agents`), the partitions'
processors (:mod:`.partitions`), what it sends (:mod:`.publish`) and its watch over the
consumer (:mod:`.watch`)."""

from streams.worker.app import OrderwatchWorker, describe_startup, partition_for, run
from streams.worker.publish import PROCESSING_FAILED

__all__ = ["PROCESSING_FAILED", "OrderwatchWorker", "describe_startup", "partition_for", "run"]
