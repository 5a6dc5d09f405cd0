"""Benchmarks for orderwatch (run from the repository root, e.g. ``python -m bench.replay``)."""
