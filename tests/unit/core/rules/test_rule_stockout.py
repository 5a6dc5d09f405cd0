"""wish.stockout: at each order.placed and inventory.updated, the SKU's last known available units
are allocated to its open orders (not yet tracked, not cancelled or refunded) in placement order;
each open order the stock does not cover gets STOCKOUT_RISK at once, once per order until stock
covers it again. No inventory event yet for the SKU: no signal.
STOCKOUT_RISK: warning, RESTOCK, SHIP_NOW, SUBMIT_TRACKING, CONTACT_CUSTOMER,
respond_by = the order's fulfillment due (release + 120 h).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from streams.core.engine import Output
from streams.core.policy import Policy

if TYPE_CHECKING:
    from tests.unit.core.rules.conftest import Events, Run

T0 = datetime(2024, 3, 4, 9, 0, tzinfo=UTC)  # a Monday
MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)


def flagged(run: Run, outputs: list[Output] | None = None) -> list[str | None]:
    return [r.order_id for r in run.recs("STOCKOUT_RISK", outputs=outputs)]


def test_without_any_inventory_event_there_is_no_signal(ev: Events, run: Run) -> None:
    run.step(*(ev.placed(f"o{i}", T0 + i * MINUTE, quantity=50) for i in range(5)))
    run.advance(T0 + 3 * HOUR)

    assert flagged(run) == []


def test_the_first_order_the_stock_does_not_cover_is_flagged_at_its_placement(
    ev: Events, run: Run
) -> None:
    run.step(ev.inventory(T0, available=1), ev.placed("o1", T0 + MINUTE))
    produced = run.step(ev.placed("o2", T0 + 2 * MINUTE))

    assert flagged(run, produced) == ["o2"]
    assert flagged(run) == ["o2"]


def test_stockout_risk_asks_to_restock_ship_submit_and_contact_by_the_fulfillment_due(
    ev: Events, run: Run
) -> None:
    placed_at = T0 + 2 * MINUTE
    run.step(ev.inventory(T0, available=0), ev.placed("o1", placed_at))

    [risk] = run.recs("STOCKOUT_RISK")
    assert risk.severity == "warning"
    assert run.codes(risk) == ["RESTOCK", "SHIP_NOW", "SUBMIT_TRACKING", "CONTACT_CUSTOMER"]
    assert risk.respond_by == placed_at + 8 * HOUR + 120 * HOUR
    assert risk.rule == "wish.stockout"
    assert (risk.scope, risk.subject, risk.order_id) == ("order", "o1", "o1")


def test_an_inventory_update_allocates_to_orders_already_placed(ev: Events, run: Run) -> None:
    run.step(*(ev.placed(f"o{i}", T0 + i * MINUTE) for i in (1, 2, 3)))
    produced = run.step(ev.inventory(T0 + 4 * MINUTE, available=2))

    assert flagged(run, produced) == ["o3"]


def test_stock_goes_to_orders_in_placement_order_not_arrival_order(ev: Events, run: Run) -> None:
    run.step(ev.inventory(T0, available=1), ev.placed("late", T0 + 3 * MINUTE))
    assert flagged(run) == []

    run.step(ev.placed("early", T0 + MINUTE))

    assert flagged(run) == ["late"]


def test_orders_arriving_out_of_order_within_the_lateness_get_stock_by_placement(
    ev: Events, run: Run
) -> None:
    run.step(
        ev.inventory(T0, available=1),
        ev.placed("late", T0 + 3 * MINUTE),
        ev.placed("early", T0 + MINUTE),
    )

    assert flagged(run) == ["late"]


def test_quantities_count_in_units(ev: Events, run: Run) -> None:
    run.step(ev.inventory(T0, available=4), ev.placed("o1", T0 + MINUTE, quantity=3))
    assert flagged(run) == []

    run.step(ev.placed("o2", T0 + 2 * MINUTE, quantity=2))
    assert flagged(run) == ["o2"]


def test_stock_that_covers_an_order_exactly_is_enough(ev: Events, run: Run) -> None:
    run.step(ev.inventory(T0, available=3), ev.placed("o1", T0 + MINUTE, quantity=3))

    assert flagged(run) == []


def test_an_order_is_flagged_once_while_the_shortage_lasts(ev: Events, run: Run) -> None:
    run.step(ev.inventory(T0, available=0), ev.placed("o1", T0 + MINUTE))
    run.step(
        ev.inventory(T0 + 2 * MINUTE, available=0),
        ev.placed("o2", T0 + 3 * MINUTE),
        ev.inventory(T0 + 4 * MINUTE, available=1),
    )

    assert flagged(run) == ["o1", "o2"]


def test_an_order_is_flagged_again_after_a_restock_then_a_new_shortage(
    ev: Events, run: Run
) -> None:
    run.step(ev.inventory(T0, available=0), ev.placed("o1", T0 + MINUTE))
    covered = run.step(ev.inventory(T0 + 2 * MINUTE, available=5))
    assert flagged(run, covered) == []

    short_again = run.step(ev.inventory(T0 + 3 * MINUTE, available=0))

    assert flagged(run, short_again) == ["o1"]
    first, second = run.recs("STOCKOUT_RISK")
    assert first.recommendation_id != second.recommendation_id


@pytest.mark.parametrize("close", ["cancelled", "refunded", "tracked"])
def test_an_order_that_is_closed_or_shipped_releases_its_stock(
    ev: Events, run: Run, close: str
) -> None:
    builders = {
        "cancelled": lambda: ev.cancelled("o1", T0 + 2 * MINUTE),
        "refunded": lambda: ev.refunded("o1", T0 + 2 * MINUTE),
        "tracked": lambda: ev.tracked("o1", T0 + 2 * MINUTE),
    }
    run.step(ev.inventory(T0, available=1), ev.placed("o1", T0 + MINUTE))
    run.step(builders[close]())
    run.step(ev.placed("o2", T0 + 3 * MINUTE))

    assert flagged(run) == []


def test_a_flagged_order_behind_a_cancelled_one_is_covered_again(ev: Events, run: Run) -> None:
    run.step(
        ev.inventory(T0, available=1),
        ev.placed("o1", T0 + MINUTE),
        ev.placed("o2", T0 + 2 * MINUTE),
    )
    assert flagged(run) == ["o2"]

    covered = run.step(
        ev.cancelled("o1", T0 + 3 * MINUTE), ev.inventory(T0 + 4 * MINUTE, available=1)
    )
    assert flagged(run, covered) == []

    short_again = run.step(ev.inventory(T0 + 5 * MINUTE, available=0))
    assert flagged(run, short_again) == ["o2"]


def test_the_later_inventory_level_wins_by_occurred_at_not_by_arrival(ev: Events, run: Run) -> None:
    run.step(
        ev.inventory(T0 + 2 * MINUTE, available=5),
        ev.inventory(T0 + MINUTE, available=0),
        ev.placed("o1", T0 + 3 * MINUTE),
    )

    assert flagged(run) == []


def test_inventory_of_another_sku_gives_no_signal(ev: Events, run: Run) -> None:
    run.step(ev.inventory(T0, available=0, sku="SKU-2"), ev.placed("o1", T0 + MINUTE))

    assert flagged(run) == []


def test_an_opening_delivered_again_after_its_close_changes_nothing(
    ev: Events, policy: Policy
) -> None:
    """At-least-once delivery may repeat a fact after a rebalance: a closed claim stays closed."""
    from streams.core import sku
    from streams.core.events import InventoryUpdated
    from streams.core.facts import Demand
    from streams.core.ledger import DictPages
    from streams.core.stockqueue import DictQueuePages

    def demand(open_: bool, at: datetime) -> Demand:
        return Demand("m1/SKU-1", "o1", "m1", "SKU-1", T0, 5, T0 + 5 * 24 * HOUR, "e1", open_, at)

    pages = DictQueuePages()
    stock = ev.inventory(T0, available=1)
    assert isinstance(stock, InventoryUpdated)
    state = sku.apply_inventory(None, stock, T0, policy, pages, DictPages()).state
    opened = sku.apply_demand(state, demand(True, T0), T0, policy, pages)
    assert [r.reason for r in opened.outputs] == ["STOCKOUT_RISK"]
    closed = sku.apply_demand(opened.state, demand(False, T0 + HOUR), T0 + HOUR, policy, pages)
    again = sku.apply_demand(closed.state, demand(True, T0), T0 + 2 * HOUR, policy, pages)
    assert again.outputs == []
    assert again.state.queue.open_orders == 0
