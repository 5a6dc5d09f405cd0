"""Every benchmark's last step: print its report and append it to its results file."""

from __future__ import annotations

from pathlib import Path

__all__ = ["record"]


def record(report: str, out: Path) -> None:
    """Print ``report`` and append it, as one entry, to ``out`` (created with its folder)."""
    print(report)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("a", encoding="utf-8") as results:
        results.write(report + "\n")
