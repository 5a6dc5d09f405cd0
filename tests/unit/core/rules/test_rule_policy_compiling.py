"""compile_policy: the core compiles profiles the shell has already read and parsed.

The same merge, validation and one-line messages as :func:`streams.policy_files.load_policy`, but
from mappings, raising the core's :class:`InvalidPolicy`, and leaving its arguments unchanged.
"""

from __future__ import annotations

import copy
import hashlib
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from streams.core.policy import InvalidPolicy, compile_policy
from streams.errors import PolicyError
from streams.policy_files import load_policy

US_12_DAYS = '[rules."wish.delivery".days_by_country]\nUS = 12\n'


@pytest.fixture
def default() -> dict[str, Any]:
    data = resources.files("streams.marketplaces").joinpath("wish.toml").read_bytes()
    return tomllib.loads(data.decode("utf-8"))


def test_the_default_alone_compiles_to_what_load_policy_gives(default: dict[str, Any]) -> None:
    assert compile_policy(default) == load_policy()


def test_a_user_profile_is_merged_and_its_digest_marks_the_version(default: dict[str, Any]) -> None:
    policy = compile_policy(
        default, tomllib.loads(US_12_DAYS), user_name="mine.toml", user_digest="abcd1234"
    )

    assert policy.delivery_days_by_country["US"] == 12
    assert policy.delivery_days_by_country["FR"] == 16
    assert policy.ref.version == "2021.1+abcd1234"


def test_a_user_profile_with_its_own_version_keeps_it(default: dict[str, Any]) -> None:
    user = {"profile": {"version": "7"}}

    assert compile_policy(default, user, user_digest="abcd1234").ref.version == "7"


def test_the_same_file_compiles_to_what_load_policy_gives(
    default: dict[str, Any], tmp_path: Path
) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(US_12_DAYS, encoding="utf-8")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:8]

    compiled = compile_policy(
        default, tomllib.loads(US_12_DAYS), user_name=str(path), user_digest=digest
    )

    assert compiled == load_policy(path)


def test_a_bad_value_raises_the_cores_one_line_error_naming_the_profile_and_key(
    default: dict[str, Any],
) -> None:
    user = {"rules": {"wish.fulfillment": {"dayz": 6}}}

    with pytest.raises(InvalidPolicy) as caught:
        compile_policy(default, user, user_name="mine.toml")

    assert str(caught.value) == (
        "policy file 'mine.toml': rules.\"wish.fulfillment\".dayz: "
        "is not a known key (check its spelling)"
    )
    assert not isinstance(caught.value, PolicyError)  # the core knows nothing of the shell's


def test_a_bad_default_is_named_as_the_default_profile(default: dict[str, Any]) -> None:
    broken = copy.deepcopy(default)
    del broken["profile"]["name"]

    with pytest.raises(InvalidPolicy, match=r"^default policy profile: profile\.name: "):
        compile_policy(broken)


def test_the_shell_raises_the_same_line_as_a_policy_error(
    default: dict[str, Any], tmp_path: Path
) -> None:
    path = tmp_path / "policy.toml"
    path.write_text('[rules."wish.fulfillment"]\ndayz = 6\n', encoding="utf-8")
    user = {"rules": {"wish.fulfillment": {"dayz": 6}}}

    with pytest.raises(InvalidPolicy) as core:
        compile_policy(default, user, user_name=str(path))
    with pytest.raises(PolicyError) as shell:
        load_policy(path)

    assert str(shell.value) == str(core.value)


def test_compiling_changes_neither_profile(default: dict[str, Any]) -> None:
    user = tomllib.loads(US_12_DAYS + '[rules."wish.fulfillment"]\ndays = 6\n')
    default_before, user_before = copy.deepcopy(default), copy.deepcopy(user)

    compile_policy(default, user, user_name="mine.toml", user_digest="abcd1234")

    assert default == default_before
    assert user == user_before
