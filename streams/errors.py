"""Exceptions raised by orderwatch.

Bad *input events* are never raised: they become ``event.rejected`` outputs. Exceptions are for
what the operator must fix before anything can run::

    OrderwatchError
    └── ConfigurationError      a setting, flag or file is wrong; the message names it (exit 1)
        ├── PolicyError         a policy file cannot be loaded or breaks a rule's bounds
        ├── IncompatibleSetting a valid setting this worker cannot run with: the group's
        │                       members run another, or orderwatch refuses it (exit 2)
        └── BrokerUnreachable   no broker answered: down, or a wrong address (exit 75, retried)
"""

from __future__ import annotations

__all__ = [
    "BrokerUnreachable",
    "ConfigurationError",
    "IncompatibleSetting",
    "OrderwatchError",
    "PolicyError",
]


class OrderwatchError(Exception):
    """Root of every exception orderwatch raises on purpose."""


class ConfigurationError(OrderwatchError):
    """A setting, command-line flag or file is wrong; the message is one line naming it."""

    #: The command's exit status: a supervisor does not restart it (docs/operations.md).
    exit_code = 1


class PolicyError(ConfigurationError):
    """A policy file cannot be read, is not TOML, or holds an invalid key or value."""


class IncompatibleSetting(ConfigurationError):
    """A setting valid on its own that the worker refuses: its group's members run another
    (clock, policy, partitions), or it is known not to hold (``exactly_once``)."""

    exit_code = 2


class BrokerUnreachable(ConfigurationError):
    """No bootstrap server answered at all (no TCP connection, or its name did not resolve).

    The line names the setting, but the brokers may as well be down or not yet up (a host that
    boots, a restart after an outage): the exit is transient, 75, for the supervisor to retry.
    A broker that answers and refuses (TLS, login) is a bad setting.
    """

    exit_code = 75  # streams.worker.failures.EXIT_KAFKA_UNAVAILABLE
