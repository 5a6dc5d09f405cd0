"""What a worker must share with its group, and the settings it refuses outright.

Workers of one group (``ORDERWATCH_APP_ID``) split the partitions and hand them to each other,
state included: they must decide alike. A worker's :class:`Fingerprint` is what its decisions
depend on beyond the events: the clock, the policy (profile, version and a digest of the
compiled policy, so that two custom files under one version differ), the partition count, and
the format its states are stored in (:data:`STATE_FORMAT`: a worker must read what another
wrote).
It travels in the metadata each member sends when it joins the group; the group's leader
compares every member's fingerprint with its own when it assigns the partitions
(:mod:`streams.worker.assignor`), gives a member that differs no partitions and, in their stead,
the one line naming the difference. That member logs the line and exits 2, a bad setting its
supervisor does not restart; the group runs on. The members decide through the group protocol
itself, so no start-up race lets two different workers in: whichever joins while the other is
a member is refused. To change one of these settings, stop every worker of the group first.

A member whose metadata carries no fingerprint (an orderwatch from before this check) is
admitted. A fingerprint without a state format is format 1's (plain JSON states). Format 2
deflated the states; format 3 keeps what grows with an aggregate's volume in pages of their own
(the carriers' and merchants' timelines, the SKUs' claims, complaints and inventory ids: a
format-3 worker reads format-2 state and moves it there, a format-2 worker could not read
format 3); format 4 remembers which of an order's breaches were resolved
(``deadline.resolved``): a format-4 worker reads format-3 states (their open breaches are
resolved when their order meets or ends them), a format-3 worker would drop what was resolved,
and its successor resolve those breaches again. Members of another format are refused: an
upgrade that changes the state format stops every worker first.

``exactly_once`` is refused at start: see RELIABILITY.md, "exactly_once".
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, is_dataclass
from typing import Any, NoReturn

from streams.core.policy import Policy
from streams.errors import IncompatibleSetting
from streams.settings import Settings

__all__ = [
    "EXIT_REFUSED",
    "STATE_FORMAT",
    "Fingerprint",
    "difference",
    "fingerprint",
    "refuse_to_join",
    "refuse_unsupported",
]

log = logging.getLogger("orderwatch.worker")

#: The exit status of a worker that its group refused (as :class:`IncompatibleSetting`).
EXIT_REFUSED = IncompatibleSetting.exit_code
#: How this release stores states: 1, plain JSON; 2, deflated with the codec's dictionary 1
#: (``streams.core.state_codec``), which format 1 cannot read; 3, aggregates paged; 4, orders
#: remember their resolved breaches (see above).
STATE_FORMAT = 4


@dataclass(frozen=True)
class Fingerprint:
    """What every member of a group must run alike."""

    clock: str
    policy: str  # "<profile> <version>"
    policy_digest: str  # of the compiled policy
    partitions: int
    state_format: int = STATE_FORMAT

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: object) -> Fingerprint | None:
        """The fingerprint a member sent, or ``None`` if it sent none (or not one of these).
        One without a state format is from a release that stored format 1."""
        if not isinstance(data, dict):
            return None
        try:
            given = {f.name: data[f.name] for f in fields(cls) if f.name != "state_format"}
            return cls(**given, state_format=data.get("state_format", 1))
        except (KeyError, TypeError):
            return None


def fingerprint(settings: Settings, policy: Policy) -> Fingerprint:
    return Fingerprint(
        clock=settings.clock,
        policy=f"{policy.ref.name} {policy.ref.version}",
        policy_digest=hashlib.sha256(_canonical(policy).encode("utf-8")).hexdigest()[:12],
        partitions=settings.partitions,
    )


def _canonical(value: object) -> str:
    """A text of ``value`` that is the same in every process (``repr`` of a set is not)."""
    if is_dataclass(value) and not isinstance(value, type):
        inner = ",".join(f"{f.name}={_canonical(getattr(value, f.name))}" for f in fields(value))
        return f"{type(value).__name__}({inner})"
    if isinstance(value, Mapping):
        return (
            "{"
            + ",".join(sorted(f"{_canonical(k)}:{_canonical(v)}" for k, v in value.items()))
            + "}"
        )
    if isinstance(value, set | frozenset):
        return "{" + ",".join(sorted(_canonical(item) for item in value)) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_canonical(item) for item in value) + "]"
    return repr(value)


def difference(member: Fingerprint, group: Fingerprint, group_id: str) -> str | None:
    """One line naming what ``member`` runs differently from ``group``, or ``None``."""
    differs = []
    if member.clock != group.clock:
        differs.append(f"ORDERWATCH_CLOCK is {member.clock} here, {group.clock} in the group")
    if (member.policy, member.policy_digest) != (group.policy, group.policy_digest):
        differs.append(
            f"ORDERWATCH_POLICY gives {member.policy} (digest {member.policy_digest}) here, "
            f"{group.policy} (digest {group.policy_digest}) in the group"
        )
    if member.partitions != group.partitions:
        differs.append(
            f"ORDERWATCH_PARTITIONS is {member.partitions} here, {group.partitions} in the group"
        )
    if member.state_format != group.state_format:
        differs.append(
            f"states are stored in format {member.state_format} here, {group.state_format} in "
            "the group (another orderwatch release)"
        )
    if not differs:
        return None
    return (
        f"refused by the members of group {group_id!r}: {'; '.join(differs)}; every worker of "
        "a group must run the same (stop them all to change it)"
    )


def refuse_to_join(line: str) -> NoReturn:
    """Stop now with the group's refusal: a bad setting, exit 2, not restarted."""
    log.critical("%s; exit %d", line, EXIT_REFUSED)
    logging.shutdown()
    os._exit(EXIT_REFUSED)


def refuse_unsupported(settings: Settings) -> None:
    """Refuse, with one line, a setting known not to hold its guarantee."""
    if settings.processing_guarantee == "exactly_once":
        source = settings.source_of("processing_guarantee")
        raise IncompatibleSetting(
            f"{source}=exactly_once is refused: Faust's transactions do not survive two "
            "workers or a crash (see RELIABILITY.md, exactly_once); use at_least_once, the "
            "default, whose outputs carry deterministic ids"
        )
