"""Workarounds for faust-streaming (0.15) and aiokafka (0.14) behaviour that would lose, repeat
or expose work.

Each module's docstring names the upstream behaviour it works around and the test that fails
without it; the worker (:mod:`streams.worker.app`) installs each by name before Faust starts:

- :mod:`.consumer`: partitions resumed at their committed offset, never-committed ones too,
  and nothing fetched before the seek handed over (``install_resuming_consumer``);
- :mod:`.recovery`: table recovery never acts on an assignment a new rebalance replaced, and
  discards local state its changelog never had (``install_guarded_recovery``);
- :mod:`.restore`: the changelogs read in bulk before Faust's recovery reads the rest (given
  to the guarded recovery);
- :mod:`.web`: Faust's web server without Faust's own views (``install_orderwatch_web``);
- :mod:`.commits`: the offsets Faust committed, told to the batch's acknowledgement
  (``follow_commits``);
- :mod:`.heartbeats`: the heartbeats the group accepted, told to the fence
  (``group_coordinator``, ``follow_heartbeats``);
- :mod:`.offsets`: a guard against offsets Faust skips in a rebalance (applied to every
  message by :class:`~streams.worker.watch.ConsumerWatch`).

Kept with what they belong to: the tables' awaited changelog writes
(:class:`~streams.worker.tables.DurableTable`: they are the tables' write path), the stamped
restore and per-partition local stores of :class:`~streams.worker.tables.StampedTable` (a
Faust table class), and the Faust settings the worker turns off in
:class:`~streams.worker.app.OrderwatchWorker` (``topic_allow_declare``: topics are created
by :mod:`streams.kafka.topics`; ``stream_processing_timeout``: :mod:`streams.worker.watch`
checks progress instead).
"""
