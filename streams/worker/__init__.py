"""The Faust worker: wiring (:mod:`.app`), the batch loops (:mod:`.agents`), how a batch is
acknowledged (:mod:`.acknowledge`), the partitions' processors (:mod:`.partitions`), what it
sends (:mod:`.publish`), its watch over the consumer (:mod:`.watch`) and its workarounds for
Faust and aiokafka (:mod:`.faust_fixes`)."""

from streams.worker.app import OrderwatchWorker, describe_startup, partition_for, run
from streams.worker.publish import PROCESSING_FAILED

__all__ = ["PROCESSING_FAILED", "OrderwatchWorker", "describe_startup", "partition_for", "run"]
