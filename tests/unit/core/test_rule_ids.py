"""Rule ids are declared once (:mod:`streams.core.rule_ids`): the policy's schema reads exactly
those, the order processor cites only those, and a profile may not name another."""

from __future__ import annotations

import tomllib
from importlib import resources
from typing import Any

import pytest

from streams.core.order import BREACH_RULES
from streams.core.policy import InvalidPolicy, compile_policy
from streams.core.rule_ids import RULE_IDS
from streams.policy_files import DEFAULT_PROFILE, load_policy

POLICY = load_policy()


def _default() -> dict[str, Any]:
    data = resources.files("streams.marketplaces").joinpath(DEFAULT_PROFILE).read_bytes()
    return tomllib.loads(data.decode("utf-8"))


def test_the_policy_has_a_rule_for_every_declared_id_and_no_other() -> None:
    assert list(POLICY.rules) == list(RULE_IDS)
    assert len(set(RULE_IDS)) == len(RULE_IDS)


def test_every_rule_a_breach_cites_is_declared() -> None:
    cited = {rule for rules in BREACH_RULES.values() for rule in rules}
    assert cited
    assert cited <= set(RULE_IDS)
    assert cited <= set(POLICY.consequences)


def test_a_profile_citing_an_undeclared_rule_is_refused() -> None:
    user = {"recommendations": {"CARRIER_REVIEW": {"rule": "wish.carrier_reviews"}}}
    with pytest.raises(InvalidPolicy, match=r"'wish\.carrier_reviews' is not a rule of this"):
        compile_policy(_default(), user, user_name="mine.toml")
