"""orderwatch: an order-lifecycle monitor for marketplace sellers, on Kafka and Faust.

The decision logic lives in :mod:`streams.core` (pure, no I/O); :mod:`streams.replay` drives it
offline, and the Faust worker drives it on Kafka.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

__all__ = ["__version__"]

try:
    __version__ = version("orderwatch")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"
