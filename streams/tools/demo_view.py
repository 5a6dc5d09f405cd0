"""What ``orderwatch demo`` shows: its counters, fed by the output topics and the worker's
``/metrics``, and their rendering as a live terminal view (rich) or as plain lines.

:class:`DemoState` holds no I/O: :mod:`streams.tools.demo` feeds it (``record_sent``,
``apply_output``, ``apply_metrics``) and draws :func:`render` of it a few times a second.
"""

from __future__ import annotations

import json
import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

__all__ = [
    "DemoState",
    "FeedRow",
    "StoreRow",
    "feed_line",
    "health_text",
    "merchant_health",
    "parse_metrics",
    "render",
    "short_time",
]

#: Decisions kept for the feed (the screen shows as many as fit).
FEED_KEPT: Final = 200
#: Seconds over which the send rate is averaged.
RATE_WINDOW: Final = 3.0
_MEASURES: Final = {
    "refund_rate": "refunds",
    "late_confirmed_fulfillment_rate": "late confirmed fulfillment",
    "valid_tracking_rate": "valid tracking",
    "merchant_cancellation_rate": "merchant cancellations",
}
_STYLE: Final = {
    "BREACH": "bold red",
    "resolved": "green",
    "critical": "red",
    "warning": "yellow",
    "info": "cyan",
}


def short_time(value: str | datetime | None) -> str:
    """An event time as ``MM-DD HH:MM`` (UTC); ``-`` for none, the text itself if unreadable."""
    if value is None:
        return "-"
    if isinstance(value, datetime):
        when = value
    else:
        try:
            when = datetime.fromisoformat(value)
        except ValueError:
            return value
    if when.tzinfo is not None:
        when = when.astimezone(UTC)
    return when.strftime("%m-%d %H:%M")


def health_text(evidence: dict[str, Any]) -> str:
    """A store-health warning's evidence in words, with whole counts beside the rate:
    ``valid tracking 93.8 % < 95 % (30 of 32)``."""
    measure = str(evidence.get("measure") or evidence.get("metric") or "health")
    name = _MEASURES.get(measure, measure.replace("_", " "))
    text = f"{name} {_percent(evidence.get('value'))}"
    comparison, threshold = evidence.get("comparison"), evidence.get("threshold")
    if comparison is not None and threshold is not None:
        text += f" {comparison} {_percent(threshold)}"
    numerator, denominator = evidence.get("numerator"), evidence.get("denominator")
    if isinstance(numerator, int) and isinstance(denominator, int):
        text += f" ({numerator} of {denominator})"
    return text


def _percent(value: object) -> str:
    if value is None:
        return "-"
    try:
        number = float(str(value))
    except ValueError:
        return str(value)
    return f"{number * 100:.1f} %".replace(".0 %", " %")


@dataclass(frozen=True)
class FeedRow:
    """One decision as the feed shows it."""

    kind: str  # "BREACH", "resolved", or a recommendation's severity
    what: str  # the deadline (and a resolution's kind), or the recommendation's reason
    subject: str  # the order id, or the recommendation's subject (a store, SKU, carrier)
    store: str
    at: str  # event time it was decided (detected_at / issued_at)
    respond_by: str | None = None


def feed_line(row: FeedRow) -> str:
    """The row as one plain line (``--no-live``)."""
    line = f"{short_time(row.at)}  {row.kind:<8}  {row.what:<28}  {row.subject:<12}  {row.store}"
    if row.respond_by:
        line += f"  respond by {short_time(row.respond_by)}"
    return line


@dataclass
class StoreRow:
    """What the demo saw of one store."""

    breaches: int = 0
    resolved: int = 0
    recommendations: int = 0
    critical: int = 0
    #: measure -> the latest store-health warning about it, in words (:func:`health_text`)
    health: dict[str, str] = field(default_factory=dict)
    #: From the worker's ``GET /merchants/{id}``, once it answered: orders in the window, and
    #: its measures at risk in words (None: not known).
    orders_in_window: int | None = None
    at_risk: list[str] | None = None

    def health_cell(self) -> tuple[str, bool]:
        """The health column's text, and whether it is a warning."""
        if self.at_risk is not None:
            orders = "?" if self.orders_in_window is None else f"{self.orders_in_window:,}"
            text = "; ".join(self.at_risk) or "within thresholds"
            return f"{orders} orders in window: {text}", bool(self.at_risk)
        if self.health:
            return "; ".join(self.health[m] for m in sorted(self.health)), True
        return "no warning", False


def merchant_health(body: object) -> tuple[int | None, list[str]] | None:
    """Orders in the window and the measures at risk, in words, from a ``GET
    /merchants/{id}`` answer (``{orders_in_window, health: [{measure, rate, count, of,
    threshold, at_risk}]}``); None if it is not one."""
    if not isinstance(body, dict) or not isinstance(body.get("health"), list):
        return None
    orders = body.get("orders_in_window")
    at_risk = []
    for entry in body["health"]:
        if isinstance(entry, dict) and entry.get("at_risk"):
            at_risk.append(
                health_text(
                    {
                        "measure": entry.get("measure"),
                        "value": entry.get("rate"),
                        "comparison": entry.get("comparison"),
                        "threshold": entry.get("threshold"),
                        "numerator": entry.get("count"),
                        "denominator": entry.get("of"),
                    }
                )
            )
    return (orders if isinstance(orders, int) else None), at_risk


def parse_metrics(text: str) -> dict[str, float]:
    """Prometheus text exposition: each metric name with the sum of its samples (NaN skipped)."""
    totals: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        name = head.split("{", 1)[0].strip()
        try:
            number = float(value)
        except ValueError:
            continue
        if name and not math.isnan(number):
            totals[name] = totals.get(name, 0.0) + number
    return totals


@dataclass
class DemoState:
    """The demo's counters and the decisions it read; ``started`` and every ``now`` are
    ``time.monotonic()`` seconds."""

    started: float
    broker: str
    embedded: bool
    web_url: str
    speed: float  # hours of event time per second
    sent: int = 0
    bad: int = 0
    event_time: datetime | None = None  # the largest occurred_at sent
    sending_done: bool = False
    worker_ready: bool = False
    open_orders: int | None = None
    worker_clock: datetime | None = None
    breaches: int = 0
    resolved: int = 0
    recommendations: int = 0
    critical: int = 0
    dead_letters: int = 0
    first_breach_after: float | None = None
    feed: deque[FeedRow] = field(default_factory=lambda: deque(maxlen=FEED_KEPT))
    stores: dict[str, StoreRow] = field(default_factory=dict)
    _sends: deque[tuple[float, int]] = field(default_factory=deque)

    # ---- fed by the demo -----------------------------------------------------------------------

    def record_sent(self, now: float, sent: int, bad: int, event_time: datetime | None) -> None:
        """The producer's totals so far."""
        self.sent, self.bad = sent, bad
        if event_time is not None:
            self.event_time = event_time
        self._sends.append((now, sent))
        while len(self._sends) > 2 and self._sends[1][0] <= now - RATE_WINDOW:
            self._sends.popleft()

    def events_per_second(self, now: float) -> float:
        """Events sent per second over the last :data:`RATE_WINDOW` seconds (0 once sending
        paused that long)."""
        if not self._sends:
            return 0.0
        since, count = self._sends[0]
        for at, sent in self._sends:
            if at > now - RATE_WINDOW:
                break
            since, count = at, sent
        if now - since < 0.5:
            return 0.0
        return (self.sent - count) / (now - since)

    def apply_output(self, role: str, value: bytes, now: float) -> FeedRow | None:
        """One message of an output topic (``breaches``, ``recommendations``, ``dead_letter``);
        the feed row it adds, if any."""
        if role == "dead_letter":
            self.dead_letters += 1
            return None
        try:
            output = json.loads(value)
        except ValueError:
            return None
        if not isinstance(output, dict):
            return None
        kind = output.get("type")
        store = str(output.get("merchant_id") or "-")
        shop = self.stores.setdefault(store, StoreRow())
        row: FeedRow | None = None
        if kind == "deadline.breached":
            self.breaches += 1
            shop.breaches += 1
            if self.first_breach_after is None:
                self.first_breach_after = now - self.started
            row = FeedRow(
                kind="BREACH",
                what=str(output.get("deadline")),
                subject=str(output.get("order_id")),
                store=store,
                at=str(output.get("detected_at")),
            )
        elif kind == "deadline.resolved":
            self.resolved += 1
            shop.resolved += 1
            row = FeedRow(
                kind="resolved",
                what=f"{output.get('deadline')} {output.get('resolution')}",
                subject=str(output.get("order_id")),
                store=store,
                at=str(output.get("detected_at")),
            )
        elif kind == "recommendation.issued":
            severity = str(output.get("severity"))
            self.recommendations += 1
            shop.recommendations += 1
            if severity == "critical":
                self.critical += 1
                shop.critical += 1
            reason = str(output.get("reason"))
            evidence = output.get("evidence")
            if reason == "STORE_HEALTH_AT_RISK" and isinstance(evidence, dict):
                measure = str(evidence.get("measure") or evidence.get("metric"))
                shop.health[measure] = health_text(evidence)
            respond_by = output.get("respond_by")
            row = FeedRow(
                kind=severity,
                what=reason,
                subject=str(output.get("order_id") or output.get("subject")),
                store=store,
                at=str(output.get("issued_at")),
                respond_by=str(respond_by) if respond_by else None,
            )
        if row is not None:
            self.feed.appendleft(row)
        return row

    def store_ids(self) -> list[str]:
        """The stores seen in outputs, sorted."""
        return sorted(store for store in self.stores if store != "-")

    def apply_merchant(self, store: str, body: object) -> bool:
        """The worker's ``GET /merchants/{store}`` answer; False if it is not one."""
        health = merchant_health(body)
        if health is None:
            return False
        shop = self.stores.setdefault(store, StoreRow())
        shop.orders_in_window, shop.at_risk = health
        return True

    def apply_metrics(self, text: str) -> None:
        """A scrape of the worker's ``/metrics``."""
        values = parse_metrics(text)
        if "orderwatch_open_orders" in values:
            self.open_orders = int(values["orderwatch_open_orders"])
        if values.get("orderwatch_ready"):
            self.worker_ready = True
        clock = values.get("orderwatch_clock_timestamp_seconds")
        if clock:
            self.worker_clock = datetime.fromtimestamp(clock, UTC)


def render(state: DemoState, now: float, *, height: int = 40) -> RenderableType:
    """The whole screen: addresses, counters, the latest decisions and the stores."""
    header = Text()
    where = "embedded, memory only" if state.embedded else "--broker"
    header.append(f"broker {state.broker} ({where})\n")
    header.append("console ")
    header.append(state.web_url, style="bold underline")
    header.append(f"   metrics {state.web_url}metrics\n")
    header.append("Ctrl-C stops the demo: worker, broker and all", style="dim")
    title = Text("orderwatch demo", style="bold")

    elapsed = now - state.started
    status = Text()
    status.append(f"running {int(elapsed) // 60}:{int(elapsed) % 60:02d}")
    status.append(f"   event time {_clock(state.event_time)}")
    status.append(f" ({state.speed:g} h of event time a second)", style="dim")
    status.append(f"   worker clock {_clock(state.worker_clock)}")
    if not state.worker_ready:
        status.append("   worker starting…", style="yellow")
    if state.sending_done:
        status.append("   all events sent", style="green")
    counts = Table(box=None, expand=False, pad_edge=False, padding=(0, 3, 0, 0))
    opened = "-" if state.open_orders is None else f"{state.open_orders:,}"
    cells = {
        "events sent": f"{state.sent:,}",
        "events/s": f"{state.events_per_second(now):,.0f}",
        "bad": f"{state.bad:,}",
        "open orders": opened,
        "breaches": f"{state.breaches:,}",
        "resolved": f"{state.resolved:,}",
        "recommendations": f"{state.recommendations:,}",
        "critical": f"{state.critical:,}",
        "dead letters": f"{state.dead_letters:,}",
    }
    for name in cells:
        # Headers wrap on a narrow terminal ("events" over "sent"); the numbers never do.
        counts.add_column(name, justify="right", header_style="dim", min_width=len(cells[name]))
    counts.add_row(*cells.values(), style="bold")
    first = Text()
    if state.first_breach_after is not None:
        first.append(f"first breach {state.first_breach_after:.1f} s after start", style="dim")
    else:
        first.append("waiting for the first breach…", style="dim")

    stores = _stores_table(state)
    feed_rows = max(3, height - 16 - len(state.stores))
    return Group(
        Panel(header, title=title, title_align="left", expand=True),
        status,
        counts,
        first,
        _feed_table(state.feed, feed_rows),
        stores,
    )


def _clock(value: datetime | None) -> str:
    return "-" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _feed_table(feed: Iterable[FeedRow], rows: int) -> Table:
    table = Table(title="latest decisions", title_justify="left", expand=True, box=None)
    # The fixed-width columns keep their width on a narrow terminal; reason and subject give way.
    widths = {"event time": 11, "kind": 8, "store": 5, "respond by": 11}
    for name in ("event time", "kind", "reason", "order / subject", "store", "respond by"):
        table.add_column(name, no_wrap=True, min_width=widths.get(name))
    for count, row in enumerate(feed):
        if count >= rows:
            break
        table.add_row(
            short_time(row.at),
            Text(row.kind, style=_STYLE.get(row.kind, "")),
            row.what,
            row.subject,
            row.store,
            short_time(row.respond_by) if row.respond_by else "",
        )
    return table


def _stores_table(state: DemoState) -> Table:
    table = Table(title="stores", title_justify="left", expand=True, box=None)
    for name in ("store", "breaches", "resolved", "recommendations", "critical", "health"):
        table.add_column(name, no_wrap=name != "health")
    for store in state.store_ids():
        shop = state.stores[store]
        health, warning = shop.health_cell()
        table.add_row(
            store,
            f"{shop.breaches:,}",
            f"{shop.resolved:,}",
            f"{shop.recommendations:,}",
            f"{shop.critical:,}",
            Text(health, style="yellow" if warning else "green"),
        )
    return table
