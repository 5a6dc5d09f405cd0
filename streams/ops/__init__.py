"""What operators see of a worker: Prometheus metrics, the log, outage lines."""
