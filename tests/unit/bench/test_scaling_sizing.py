"""The pure helpers of the scaling and sizing benchmarks: the arithmetic and the report rows."""

from __future__ import annotations

import pytest

from bench.scaling import Changelog, Run, parse_workers, schedule, summary_rows
from bench.sizing import Measured, Stream, human_bytes, human_seconds, partitions_for, size


def _stream() -> Stream:
    return Stream(
        orders=1000,
        events=6000,
        order_events=5500,
        lifecycle_days=10.0,
        state_bytes=1000.0,
        hourly_peak=1.3,
        ttl_days=90.0,
        by_type={"order.placed": 1000},
    )


def _measured(
    rate: float = 800.0, cpu_ms: float = 0.5, worker_orders: int = 1_000_000, peak: float = 3.0
) -> Measured:
    return Measured(
        rate=rate,
        cpu_ms=cpu_ms,
        worker_orders=worker_orders,
        ready_seconds=20.0,
        rss_bytes=750e6,
        restore_rate=100_000.0,
        peak=peak,
    )


def test_one_million_orders_a_day_written_out() -> None:
    measured = _measured()
    s = size(1_000_000, _stream(), measured)
    assert s.average == pytest.approx(1_000_000 * 6 / 86_400)  # 69.4 events/s
    assert s.peak == pytest.approx(3 * 1_000_000 * 6 / 86_400)  # 208.3
    assert measured.core_rate == pytest.approx(2000.0)
    assert s.cores == 1  # 208 / 2000 per core
    assert s.workers_measured == 1  # 208 / 800
    assert s.held_orders == pytest.approx(1_000_000 * 100)  # (10 + 90) days held
    assert s.state_bytes == pytest.approx(1e11)
    assert s.workers_for_state == 100  # 100 million orders, a million a worker
    assert s.workers == 100
    assert s.partitions == 256  # a power of two ≥ 2 × 100
    assert s.machines == 15  # 100 / 7 workers a machine (8 cores, one for the system)
    assert s.orders_per_worker == pytest.approx(1_000_000)
    assert s.worker_rss_bytes == pytest.approx(750e6)
    assert s.worker_ready_seconds == pytest.approx(20.0)
    assert s.partition_read_seconds == pytest.approx(1e8 / 256 / 100_000)


def test_the_cpu_or_the_state_whichever_needs_more_workers() -> None:
    measured = _measured(rate=100.0, cpu_ms=5.0, peak=2.0, worker_orders=2_000_000_000)
    s = size(10_000_000, _stream(), measured)  # 694.4 average, 1388.9 peak events/s
    assert s.cores == 7  # 1388.9 / 200
    assert s.workers_measured == 14  # 1388.9 / 100
    assert s.workers_for_state == 1
    assert s.workers == 14
    assert s.partitions == 32  # a power of two ≥ 2 × 14
    assert s.worker_ready_seconds == pytest.approx(20.0 * 1e9 / 14 / 2e9)


@pytest.mark.parametrize(
    ("workers", "partitions"), [(1, 8), (4, 8), (5, 16), (8, 16), (9, 32), (40, 128)]
)
def test_partitions_for(workers: int, partitions: int) -> None:
    assert partitions_for(workers) == partitions


def test_human_units() -> None:
    assert human_bytes(1_223) == "1.2 kB"
    assert human_bytes(124.5e9) == "124.5 GB"
    assert human_seconds(42.0) == "42.0 s"
    assert human_seconds(90.0) == "1.5 min"
    assert human_seconds(7.2 * 3600) == "7.2 h"


def test_parse_workers_and_turns() -> None:
    assert parse_workers("1,2,2") == [1, 2]
    with pytest.raises(ValueError, match="at least 1"):
        parse_workers("0,1")
    assert schedule([1, 2], 2) == [(1, 0), (2, 0), (1, 1), (2, 1)]


def _run(workers: int, index: int, seconds: float, breaches: int = 90) -> Run:
    return Run(
        workers=workers,
        index=index,
        events=20_000,
        seconds=seconds,
        processed=[20_000 / workers] * workers,
        cpu=[14.0 / workers] * workers,
        outputs={"deadline-breaches": breaches, "dispute-recommendations": 312, "dead-letter": 0},
        matches_replay=True,
    )


def test_summary_rows_give_medians_ranges_and_the_output_check() -> None:
    runs = [_run(1, 0, 20.0), _run(2, 0, 10.0), _run(1, 1, 25.0), _run(2, 1, 12.5, breaches=89)]
    one, two = summary_rows(runs)
    # one worker: rates 1000 and 800, median 900; speedup over that median
    assert one.startswith(
        "| 1 | 2 | 22.50 (20.00 – 25.00) | 900 (800 – 1,000) | 1.00 (0.89 – 1.11)"
    )
    assert one.endswith("| yes | yes |")
    # two workers: rates 2000 and 1600; one run's breaches differ from the one-worker runs'
    assert "| 1,800 (1,600 – 2,000) | 2.00 (1.78 – 2.22) |" in two
    assert "| 0.700 (0.700 – 0.700) |" in two  # 14 CPU s / 20,000 events
    assert two.endswith("| NO | yes |")


def test_changelog_bytes_per_live_key() -> None:
    log = Changelog("orders", records=10, bytes=5000, live_keys=4, live_bytes=3600)
    assert log.bytes_per_live_key == 900
    assert Changelog("inbox").bytes_per_live_key == 0.0


class _FakeWorker:
    """Answers ``get("/metrics")`` from a list of (handled, cpu) readings; None: refused."""

    def __init__(self, readings: list[tuple[float, float] | None]) -> None:
        self.readings = readings

    def get(self, path: str) -> tuple[int, bytes]:
        reading = self.readings.pop(0)
        if reading is None:
            raise ConnectionRefusedError
        handled, cpu = reading
        body = (
            f'orderwatch_events_consumed_total{{topic="orders",type="order.placed"}} {handled}\n'
            f'orderwatch_events_rejected_total{{topic="orders",reason="not_json"}} 0.0\n'
            f"process_cpu_seconds_total {cpu}\n"
        )
        return 200, body.encode()


def test_the_sampler_adds_up_across_a_worker_restart() -> None:
    from bench.scaling import _Sampler

    worker = _FakeWorker([(0, 3.0), (500, 4.0), None, (100, 0.5), (700, 1.5)])
    sampler = _Sampler([worker])
    assert sampler() == 0
    assert sampler() == 500
    assert sampler() == 500  # refused: restarting
    assert sampler() == 600  # a new process: counts again from 0
    assert sampler() == 1200
    assert sampler.cpu == [pytest.approx(3.0 + 1.0 + 0.5 + 1.0)]


def test_state_scale_reads_the_restore_rate_from_the_workers_log() -> None:
    from bench.state_scale import restore_rate

    log = (
        "INFO orderwatch.worker: recovery: read 1000 active changelog records of 8 partitions "
        "in 0.5 s (2000/s)\n"
        "INFO orderwatch.worker: recovery: read 9 standby changelog records of 8 partitions "
        "in 0.1 s (90/s)\n"
        "INFO orderwatch.worker: recovery: read 3000 active changelog records of 8 partitions "
        "in 1.5 s (2000/s)\n"
    )
    assert restore_rate(log) == 4000 / 2.0  # the actives only
    assert restore_rate("nothing read\n") is None


def test_state_scale_reads_the_longest_rebuild_from_the_workers_log() -> None:
    from bench.state_scale import longest_rebuild

    log = (
        "INFO orderwatch.worker: ready: 8 partitions, 0 open orders (rebuilt in 0.0 s)\n"
        "INFO orderwatch.worker: ready: 8 partitions, 1000000 open orders (rebuilt in 4.8 s)\n"
        "INFO orderwatch.worker: ready: 4 partitions, 500000 open orders (rebuilt in 2.1 s)\n"
    )
    assert longest_rebuild(log) == 4.8
    assert longest_rebuild("") == 0.0
