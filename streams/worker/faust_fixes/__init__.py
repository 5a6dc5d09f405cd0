"""Workarounds for faust-streaming and aiokafka behaviour that would lose or repeat work.

Each module names the upstream behaviour it works around and the test that fails without it.
"""
