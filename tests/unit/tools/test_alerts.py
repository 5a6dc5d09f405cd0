"""The alerts ``orderwatch alerts`` builds from the outputs (streams.tools.alerts.AlertBook).

Breaches and recommendations are the core's own (a replay of a few events); resolutions are
built to the agreed ``deadline.resolved`` shape (issue 17).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from streams.cli import main
from streams.core.dates import format_utc
from streams.core.output_json import serialize
from streams.errors import ConfigurationError
from streams.policy_files import load_policy
from streams.replay import replay_lines
from streams.settings import load_settings
from streams.tools.alerts import (
    BREACH_ALERT,
    RECOMMENDATION_ALERT,
    RECOMMENDATION_LIFETIME,
    AlertBook,
    Change,
)

RUNBOOK = "https://docs.example.com/operations#order-alerts"
EXPIRY = timedelta(minutes=4)


def _t(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _event(kind: str, at: str, **fields: Any) -> bytes:
    return json.dumps(
        {"event_id": f"e-{kind}-{at}", "type": kind, "occurred_at": at, "merchant_id": "m-1"}
        | fields
    ).encode()


PLACED = _event(
    "order.placed",
    "2026-01-05T00:00:00Z",
    order_id="o-1",
    sku="sku-1",
    quantity=1,
    unit_price="10.00",
    shipping_price="1.00",
    currency="USD",
    destination_country="US",
)
COUNTERFEIT = _event(
    "complaint.filed",
    "2026-01-06T00:00:00Z",
    order_id="o-1",
    complaint_id="c-1",
    reason="counterfeit",
    message="fake",
)


def replayed(*lines: bytes, until: str, policy: Path | None = None) -> list[dict[str, Any]]:
    outputs: list[dict[str, Any]] = []
    replay_lines(
        lines,
        lambda output: outputs.append(json.loads(serialize(output))),
        policy=load_policy(policy),
        until=_t(until),
    )
    return outputs


def one(outputs: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    [found] = [o for o in outputs if all(o.get(k) == v for k, v in fields.items())]
    return found


def resolution(breach: dict[str, Any], at: str, how: str = "met_late") -> dict[str, Any]:
    """A ``deadline.resolved`` of the agreed shape for ``breach``."""
    return {
        "type": "deadline.resolved",
        "resolution_id": "0" * 32,
        "breach_id": breach["breach_id"],
        "order_id": breach["order_id"],
        "merchant_id": breach["merchant_id"],
        "deadline": breach["deadline"],
        "rule": breach["rule"],
        "resolution": how,
        "resolved_at": at,
        "detected_at": at,
        "policy": breach["policy"],
    }


@pytest.fixture(scope="module")
def missed() -> list[dict[str, Any]]:
    """An order never shipped: its fulfillment breach and its recommendations."""
    return replayed(PLACED, until="2026-01-12T00:00:00Z")


def apply(book: AlertBook, outputs: list[dict[str, Any]], now: datetime) -> list[Change]:
    return [change for output in outputs for change in book.apply(output, now)]


def test_a_breach_is_a_critical_alert_with_its_recommendations_actions(
    missed: list[dict[str, Any]],
) -> None:
    now = _t("2026-01-12T01:00:00Z")
    book = AlertBook(RUNBOOK)
    changes = apply(book, missed, now)
    breach = one(missed, type="deadline.breached")
    overdue = one(missed, reason="FULFILLMENT_OVERDUE")
    # The breach's alert, and no alert of its own for the breach's recommendation (nor for the
    # warning FULFILLMENT_AT_RISK).
    assert [(c.what, c.alert.key) for c in changes] == [
        ("opened", breach["breach_id"]),
        ("updated", breach["breach_id"]),
    ]
    [alert] = book.active(now)
    payload = alert.payload(now, EXPIRY)
    assert payload["labels"] == {
        "alertname": BREACH_ALERT,
        "severity": "critical",
        "merchant": "m-1",
        "order": "o-1",
        "deadline": "fulfillment",
        "rule": "wish.fulfillment",
    }
    annotations = payload["annotations"]
    assert annotations["actions"].splitlines() == [
        f"{n}. {a['code']}: {a['detail']}" for n, a in enumerate(overdue["actions"], start=1)
    ]
    assert annotations["actions"].startswith("1. SHIP_NOW: ")
    assert annotations["recommendation_id"] == overdue["recommendation_id"]
    assert annotations["breach_id"] == breach["breach_id"]
    assert annotations["description"] == breach["consequence"]
    assert annotations["runbook_url"] == RUNBOOK
    assert annotations["summary"] == (
        "Order o-1 of merchant m-1 missed its fulfillment deadline (due 2026-01-10T08:00:00Z)"
    )
    assert payload["startsAt"] == breach["detected_at"]
    assert payload["endsAt"] == format_utc(now + EXPIRY)


def test_the_breach_and_its_recommendation_make_one_alert_in_either_order(
    missed: list[dict[str, Any]],
) -> None:
    now = _t("2026-01-12T01:00:00Z")
    forward, backward = AlertBook(RUNBOOK), AlertBook(RUNBOOK)
    apply(forward, missed, now)
    apply(backward, list(reversed(missed)), now)
    assert [a.payload(now, EXPIRY) for a in backward.active(now)] == [
        a.payload(now, EXPIRY) for a in forward.active(now)
    ]
    assert backward.advice == {}


def test_respond_by_of_the_recommendation_is_an_annotation(tmp_path: Path) -> None:
    # Wish's *_OVERDUE recommendations have no respond_by; a policy may give them one.
    policy = tmp_path / "policy.toml"
    policy.write_text(
        '[recommendations.COMPLAINT_RESPONSE_OVERDUE]\nrespond_by = "complaint_response_due"\n'
    )
    now = _t("2026-01-09T01:00:00Z")
    for policy_path, respond_by in ((None, False), (policy, True)):
        outputs = replayed(PLACED, COUNTERFEIT, until="2026-01-09T00:00:00Z", policy=policy_path)
        breach = one(outputs, type="deadline.breached", deadline="complaint_response")
        overdue = one(outputs, reason="COMPLAINT_RESPONSE_OVERDUE")
        book = AlertBook(RUNBOOK)
        apply(book, outputs, now)
        alert = book.alerts[breach["breach_id"]]
        assert alert.labels["complaint"] == "c-1"
        assert alert.labels["deadline"] == "complaint_response"
        assert (
            alert.annotations["actions"]
            == "1. CONTACT_CUSTOMER: " + (overdue["actions"][0]["detail"])
        )
        assert ("respond_by" in overdue) is respond_by
        assert alert.annotations.get("respond_by") == overdue.get("respond_by")
        if respond_by:
            assert alert.annotations["summary"].endswith(f"; respond by {overdue['respond_by']}")


def test_a_resolution_closes_the_alert_at_the_resolving_events_time(
    missed: list[dict[str, Any]],
) -> None:
    now = _t("2026-01-13T00:00:00Z")
    book = AlertBook(RUNBOOK)
    apply(book, missed, now)
    breach = one(missed, type="deadline.breached")
    changes = book.apply(resolution(breach, "2026-01-12T06:00:00Z"), now)
    assert [(c.what, c.alert.key) for c in changes] == [("closed", breach["breach_id"])]
    assert book.active(now) == []
    payload = changes[0].alert.payload(now, EXPIRY)
    assert payload["startsAt"] == breach["detected_at"]
    assert payload["endsAt"] == "2026-01-12T06:00:00Z"
    assert payload["annotations"]["resolution"] == "met_late"


def test_closing_times_are_never_before_the_start_nor_after_now(
    missed: list[dict[str, Any]],
) -> None:
    breach = one(missed, type="deadline.breached")
    now = _t("2026-01-13T00:00:00Z")
    early, late = AlertBook(RUNBOOK), AlertBook(RUNBOOK)
    apply(early, missed, now)
    apply(late, missed, now)
    # A late event older than the breach's detection resolves it: ends as it starts.
    [closed] = early.apply(resolution(breach, "2026-01-11T00:00:00Z"), now)
    assert closed.alert.payload(now, EXPIRY)["endsAt"] == breach["detected_at"]
    # A resolution in event time ahead of the wall clock ends now.
    [closed] = late.apply(resolution(breach, "2026-02-01T00:00:00Z"), now)
    assert closed.alert.payload(now, EXPIRY)["endsAt"] == format_utc(now)


def test_duplicates_neither_reopen_nor_close_twice(missed: list[dict[str, Any]]) -> None:
    now = _t("2026-01-13T00:00:00Z")
    book = AlertBook(RUNBOOK)
    breach = one(missed, type="deadline.breached")
    apply(book, missed, now)
    assert book.apply(breach, now) == []
    resolved = resolution(breach, "2026-01-12T06:00:00Z")
    assert len(book.apply(resolved, now)) == 1
    assert book.apply(resolved, now) == []
    assert apply(book, missed, now) == []  # redelivered after its resolution: stays closed
    assert book.active(now) == []


def test_rebuilding_from_the_same_outputs_posts_the_same_alerts(
    missed: list[dict[str, Any]],
) -> None:
    """What a restart does: identical payloads, so re-posting is idempotent in Alertmanager."""
    outputs = [*missed, *replayed(PLACED, COUNTERFEIT, until="2026-01-06T01:00:00Z")]
    now = _t("2026-01-06T02:00:00Z")
    first, second = AlertBook(RUNBOOK), AlertBook(RUNBOOK)
    apply(first, outputs, now)
    apply(second, outputs, now)
    assert len(first.active(now)) == 2
    assert [a.payload(now, EXPIRY) for a in second.active(now)] == [
        a.payload(now, EXPIRY) for a in first.active(now)
    ]


def test_a_critical_recommendation_is_an_alert_that_ends_at_its_respond_by() -> None:
    outputs = replayed(PLACED, COUNTERFEIT, until="2026-01-06T01:00:00Z")
    counterfeit = one(outputs, reason="COMPLAINT_COUNTERFEIT")
    respond_by = _t(counterfeit["respond_by"])
    now = _t("2026-01-06T02:00:00Z")
    book = AlertBook(RUNBOOK)
    changes = apply(book, outputs, now)
    assert [c.what for c in changes] == ["opened"]
    [alert] = book.active(now)
    payload = alert.payload(now, EXPIRY)
    assert payload["labels"] == {
        "alertname": RECOMMENDATION_ALERT,
        "severity": "critical",
        "merchant": "m-1",
        "reason": "COMPLAINT_COUNTERFEIT",
        "rule": counterfeit["rule"],
        "scope": "order",
        "subject": "o-1",
        "recommendation": counterfeit["recommendation_id"],
        "order": "o-1",
    }
    assert payload["annotations"]["actions"].startswith("1. DELIST_SKU: ")
    assert payload["annotations"]["respond_by"] == counterfeit["respond_by"]
    assert payload["annotations"]["runbook_url"] == RUNBOOK
    assert payload["endsAt"] == format_utc(now + EXPIRY)  # re-sent while it lasts
    near = respond_by - timedelta(minutes=1)
    assert alert.payload(near, EXPIRY)["endsAt"] == counterfeit["respond_by"]
    assert book.expire(near) == []
    after = respond_by + timedelta(seconds=1)
    assert [(c.what, c.alert.key) for c in book.expire(after)] == [("closed", alert.key)]
    assert book.active(after) == []


def test_a_critical_recommendation_without_a_respond_by_ahead_lasts_its_lifetime() -> None:
    outputs = replayed(PLACED, COUNTERFEIT, until="2026-01-06T01:00:00Z")
    counterfeit = one(outputs, reason="COMPLAINT_COUNTERFEIT")
    issued = _t(counterfeit["issued_at"])
    passed = counterfeit | {"respond_by_passed": True}
    book = AlertBook(RUNBOOK)
    [opened] = book.apply(passed, issued)
    assert opened.alert.ends_at == issued + RECOMMENDATION_LIFETIME
    # Read after its lifetime (a rebuild long after): no alert at all.
    assert AlertBook(RUNBOOK).apply(passed, issued + RECOMMENDATION_LIFETIME) == []


def test_warnings_and_other_outputs_make_no_alert() -> None:
    outputs = replayed(PLACED, until="2026-01-09T12:00:00Z")
    assert {o["reason"] for o in outputs} == {"FULFILLMENT_AT_RISK"}
    book = AlertBook(RUNBOOK)
    now = _t("2026-01-09T13:00:00Z")
    assert apply(book, outputs, now) == []
    assert book.apply({"type": "event.rejected", "rejection_id": "x"}, now) == []
    assert book.apply({"type": "deadline.breached"}, now) == []  # nothing to identify it by


def test_a_bad_alertmanager_url_fails_at_start_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ORDERWATCH_ALERTMANAGER_URL", "127.0.0.1:9093")
    with pytest.raises(ConfigurationError, match=r"^setting ORDERWATCH_ALERTMANAGER_URL: "):
        load_settings()
    result = CliRunner().invoke(main, ["alerts"])
    assert result.exit_code == 1
    assert "ORDERWATCH_ALERTMANAGER_URL" in result.output
    result = CliRunner().invoke(main, ["alerts", "--alertmanager", "http://am:port"])
    assert result.exit_code == 1
    assert "--alertmanager-url: its port is not a number" in result.output


def test_the_bridge_needs_an_alertmanager_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ORDERWATCH_ALERTMANAGER_URL", raising=False)
    result = CliRunner().invoke(main, ["alerts"])
    assert result.exit_code == 1
    assert "setting ORDERWATCH_ALERTMANAGER_URL: orderwatch alerts needs" in result.output
    assert load_settings(alertmanager_url="https://am.example.com/prefix/").alertmanager_url == (
        "https://am.example.com/prefix"
    )
