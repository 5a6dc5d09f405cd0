"""Offline tools around the worker: the simulator, ``send``, control messages, the published
schemas and the embedded broker."""
