"""load_policy: a user's partial file is merged key by key into the Wish profile (policy.md,
"Conventions"); a bad file raises PolicyError with one line naming the key and the problem.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from streams.core.policy import Policy
from streams.errors import ConfigurationError, PolicyError
from streams.policy_files import load_policy

if TYPE_CHECKING:
    from tests.unit.core.rules.conftest import Events, Run

T0 = datetime(2024, 3, 4, 9, 0, tzinfo=UTC)  # a Monday
DAY = timedelta(days=1)

US_12_DAYS = '[rules."wish.delivery".days_by_country]\nUS = 12\n'


def write(tmp_path: Path, text: str, name: str = "policy.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def delivery_due(run: Run, ev: Events, country: str) -> datetime:
    run.feed(ev.placed("o1", T0, destination_country=country))
    run.advance(T0 + 60 * DAY)
    [breach] = run.breaches("delivery")
    return breach.due_at


def test_the_default_profile_is_wish_2021_1(policy: Policy) -> None:
    assert (policy.ref.name, policy.ref.version) == ("wish", "2021.1")


def test_one_country_can_be_changed_alone(tmp_path: Path) -> None:
    policy = load_policy(write(tmp_path, US_12_DAYS))

    assert policy.delivery_days_by_country["US"] == 12
    assert policy.delivery_days_by_country["GB"] == 12
    assert policy.delivery_days_by_country["FR"] == 16
    assert policy.delivery_days_by_country["ZA"] == 37
    assert len(policy.delivery_days_by_country) == 41
    assert policy.delivery_default_days == 30


def test_a_partial_file_changes_the_deadline_it_names_and_no_other(
    tmp_path: Path, ev: Events, make_run: Callable[..., Run]
) -> None:
    policy = load_policy(write(tmp_path, US_12_DAYS))

    assert delivery_due(make_run(policy), ev, "US") == T0 + 12 * DAY
    assert delivery_due(make_run(policy), ev, "FR") == T0 + 16 * DAY
    assert delivery_due(make_run(policy), ev, "TH") == T0 + 30 * DAY


def test_a_partial_file_leaves_the_other_rules_alone(tmp_path: Path, policy: Policy) -> None:
    merged = load_policy(write(tmp_path, US_12_DAYS))

    assert merged.fulfillment == policy.fulfillment == timedelta(days=5)
    assert merged.release_delay == timedelta(hours=8)
    assert merged.recommendations == policy.recommendations
    assert merged.express_business_days_by_country == {"FR": 6}


def test_a_partial_file_marks_the_version_with_a_hash_of_the_file(tmp_path: Path) -> None:
    policy = load_policy(write(tmp_path, US_12_DAYS))

    assert policy.ref.name == "wish"
    assert re.fullmatch(r"2021\.1\+[0-9a-f]+", policy.ref.version), policy.ref.version


def test_the_hash_follows_the_file_content(tmp_path: Path) -> None:
    same = load_policy(write(tmp_path, US_12_DAYS, "a.toml"))
    again = load_policy(write(tmp_path, US_12_DAYS, "b.toml"))
    other = load_policy(write(tmp_path, US_12_DAYS.replace("12", "13"), "c.toml"))

    assert same.ref.version == again.ref.version
    assert same.ref.version != other.ref.version


def test_outputs_carry_the_merged_version(
    tmp_path: Path, ev: Events, make_run: Callable[..., Run]
) -> None:
    policy = load_policy(write(tmp_path, US_12_DAYS))
    run = make_run(policy)
    run.feed(ev.placed("o1", T0))
    run.advance(T0 + 60 * DAY)

    assert {b.policy.version for b in run.breaches()} == {policy.ref.version}
    assert {r.policy.version for r in run.recs()} == {policy.ref.version}


def test_a_number_changed_in_a_user_file_reaches_the_engine(
    tmp_path: Path, ev: Events, make_run: Callable[..., Run]
) -> None:
    policy = load_policy(write(tmp_path, '[rules."wish.fulfillment"]\ndays = 6\n'))
    run = make_run(policy)
    run.feed(ev.placed("o1", T0))
    run.advance(T0 + 60 * DAY)

    [breach] = run.breaches("fulfillment")
    assert breach.due_at == T0 + timedelta(hours=8) + 6 * DAY


def test_a_recommendations_respond_by_is_read_from_the_policy_file(
    tmp_path: Path, ev: Events, make_run: Callable[..., Run]
) -> None:
    text = '[recommendations.FULFILLMENT_AT_RISK]\nrespond_by = "confirmed_fulfillment_due"\n'
    run = make_run(load_policy(write(tmp_path, text)))
    run.feed(ev.placed("o1", T0))
    run.advance(T0 + 5 * DAY)

    [warning] = run.recs("FULFILLMENT_AT_RISK")
    assert warning.respond_by == T0 + timedelta(hours=8 + 168)  # confirmed-fulfillment due


def test_a_respond_by_given_to_an_overdue_reason_is_honoured(
    tmp_path: Path, ev: Events, make_run: Callable[..., Run]
) -> None:
    text = '[recommendations.FULFILLMENT_OVERDUE]\nrespond_by = "confirmed_fulfillment_due"\n'
    run = make_run(load_policy(write(tmp_path, text)))
    run.feed(ev.placed("o1", T0))
    run.advance(T0 + 6 * DAY)

    [overdue] = run.recs("FULFILLMENT_OVERDUE")
    assert overdue.respond_by == T0 + timedelta(hours=8 + 168)  # confirmed-fulfillment due


def test_a_recommendation_naming_an_unknown_rule_is_rejected_when_loading(tmp_path: Path) -> None:
    path = write(tmp_path, '[recommendations.CARRIER_REVIEW]\nrule = "wish.nonexistent"\n')

    with pytest.raises(PolicyError) as caught:
        load_policy(path)

    assert "CARRIER_REVIEW" in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ('[rules."wish.fulfillment"]\ndayz = 6\n', ["wish.fulfillment", "dayz"]),
        ('[rules."wish.fulfillment"]\ndays = "five"\n', ["wish.fulfillment", "days", "five"]),
        ('[rules."wish.delivery".days_by_country]\nXX = 10\n', ["days_by_country", "XX"]),
        ('[rules."wish.delivery".days_by_country]\nUS = 0\n', ["days_by_country", "US"]),
        ('[rules."wish.typo"]\nhours = 1\n', ["wish.typo"]),
        ('[currency.usd_per_unit]\nEUR = "abc"\n', ["usd_per_unit", "EUR"]),
        (
            '[recommendations.FULFILLMENT_OVERDUE]\nactions = ["SHIP_NOW", "FLY"]\n',
            ["FULFILLMENT_OVERDUE", "actions", "FLY"],
        ),
        ('[recommendations.CARRIER_REVIEW]\nconsequence = ""\n', ["CARRIER_REVIEW", "consequence"]),
        (
            '[recommendations.CARRIER_REVIEW]\nconsequence = "One.\\nTwo."\n',
            ["CARRIER_REVIEW", "consequence", "one sentence"],
        ),
    ],
    ids=[
        "unknown-key",
        "wrong-type",
        "bad-country",
        "zero-days",
        "unknown-rule",
        "bad-rate",
        "unknown-action",
        "empty-consequence",
        "two-line-consequence",
    ],
)
def test_a_bad_value_raises_one_line_naming_the_key(
    tmp_path: Path, text: str, names: list[str]
) -> None:
    path = write(tmp_path, text)

    with pytest.raises(PolicyError) as caught:
        load_policy(path)

    message = str(caught.value)
    assert "\n" not in message
    for name in names:
        assert name in message
    assert str(path) in message


def test_a_file_that_is_not_toml_raises_one_line_saying_so(tmp_path: Path) -> None:
    path = write(tmp_path, "this is = = not toml\n")

    with pytest.raises(PolicyError, match="not valid TOML") as caught:
        load_policy(path)

    assert "\n" not in str(caught.value)


def test_a_missing_file_raises_one_line_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"

    with pytest.raises(PolicyError, match="does not exist") as caught:
        load_policy(path)

    assert str(path) in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_policy_error_is_a_configuration_error() -> None:
    assert issubclass(PolicyError, ConfigurationError)


def test_when_missed_needs_a_respond_by_to_miss(tmp_path: Path) -> None:
    mine = tmp_path / "mine.toml"
    mine.write_text('[recommendations.FULFILLMENT_OVERDUE]\nwhen_missed = ["SHIP_NOW"]\n')
    with pytest.raises(PolicyError, match=r"FULFILLMENT_OVERDUE\.when_missed: .* no respond_by"):
        load_policy(mine)


def test_a_recommendations_consequence_is_read_from_the_policy_file(
    tmp_path: Path, make_run: Callable[..., Run], ev: Events
) -> None:
    path = write(
        tmp_path,
        '[recommendations.FULFILLMENT_OVERDUE]\nconsequence = "The store is closed tomorrow."\n',
    )
    run = make_run(load_policy(path))
    run.feed(ev.placed("o1", T0))
    run.advance(T0 + 10 * DAY)

    [overdue] = run.recs("FULFILLMENT_OVERDUE")
    assert overdue.consequence == "The store is closed tomorrow."
    [at_risk] = run.recs("FULFILLMENT_AT_RISK")
    assert at_risk.consequence is not None
    assert at_risk.consequence.startswith("Without tracking by the fulfillment deadline")
