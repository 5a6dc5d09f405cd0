"""Every recommendation carries its consequence, as a breach does (issue 17 item 5): one
sentence from the profile, per reason, saying what the platform does if the seller does not act.
"""

from __future__ import annotations

import json
from pathlib import Path

from streams.core.outputs import RecommendationIssued
from streams.core.policy import Policy
from streams.policy_files import load_policy
from streams.replay import replay_lines

EXAMPLES = Path(__file__).resolve().parents[4] / "examples" / "orders.jsonl"


def test_every_reason_of_the_profile_has_a_consequence_of_one_sentence(policy: Policy) -> None:
    for reason, spec in policy.recommendations.items():
        assert spec.consequence.endswith("."), reason
        assert "\n" not in spec.consequence, reason
        assert len(spec.consequence) > 20, reason


def test_every_recommendation_of_a_replay_carries_its_reasons_consequence() -> None:
    policy = load_policy()
    issued: list[RecommendationIssued] = []
    replay_lines(
        EXAMPLES.read_bytes().splitlines(),
        lambda output: issued.append(output) if isinstance(output, RecommendationIssued) else None,
        policy=policy,
    )
    assert len({r.reason for r in issued}) >= 5
    for recommendation in issued:
        expected = policy.recommendations[recommendation.reason].consequence
        assert recommendation.consequence == expected
        assert json.loads(recommendation.model_dump_json())["consequence"] == expected
