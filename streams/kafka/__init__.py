"""Kafka plumbing shared by the worker and the tools: client connections, topics, headers, admin."""
