"""Exceptions raised by orderwatch.

Bad *input events* are never raised: they become ``event.rejected`` outputs. Exceptions are for
what the operator must fix before anything can run::

    OrderwatchError
    └── ConfigurationError      a setting, flag or file is wrong; the message names it
        └── PolicyError         a policy file cannot be loaded or breaks a rule's bounds
"""

from __future__ import annotations

__all__ = ["ConfigurationError", "OrderwatchError", "PolicyError"]


class OrderwatchError(Exception):
    """Root of every exception orderwatch raises on purpose."""


class ConfigurationError(OrderwatchError):
    """A setting, command-line flag or file is wrong; the message is one line naming it."""


class PolicyError(ConfigurationError):
    """A policy file cannot be read, is not TOML, or holds an invalid key or value."""
