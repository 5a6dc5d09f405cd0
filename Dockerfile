# The orderwatch worker (and the CLI: the simulator profile of docker-compose.yml runs
# `orderwatch simulate | orderwatch send -` in this image).
#   docker build -t orderwatch .
#   docker run --rm -e ORDERWATCH_BROKER=kafka:9092 -p 6066:6066 orderwatch
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY streams ./streams
# The worker's exit statuses, told apart for docker compose (docker-compose.yml, worker).
COPY deploy/docker/exit-policy.sh /usr/local/bin/orderwatch-exit-policy
RUN chmod 0755 /usr/local/bin/orderwatch-exit-policy \
    && pip install . \
    && rm -rf /src \
    && useradd --system --uid 10001 --create-home --home-dir /var/lib/orderwatch orderwatch \
    && install -d -o orderwatch -g orderwatch /var/lib/orderwatch/data

# Runs as an unprivileged user; its data directory (Faust's tables) is in its home, created here
# so that a volume mounted on it starts out owned by that user.
USER orderwatch
WORKDIR /var/lib/orderwatch

# Inside a container the HTTP endpoints must listen on every interface, on purpose: Prometheus
# and the healthcheck reach /metrics and /ready through the container's network. (Outside a
# container the default, 127.0.0.1, keeps them private.)
ENV ORDERWATCH_WEB_HOST=0.0.0.0 \
    ORDERWATCH_WEB_PORT=6066 \
    ORDERWATCH_DATA_DIR=/var/lib/orderwatch/data

EXPOSE 6066

# Healthy = /ready answers 200 (partitions assigned, tables recovered, Kafka reachable).
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('ORDERWATCH_WEB_PORT', '6066') + '/ready', timeout=4)"

# Exit code 75: Kafka was unreachable or Faust crashed: restart it. 1 or 2: a bad setting, named
# in the log: do not. docker-compose.yml runs the worker under orderwatch-exit-policy, which
# turns 1 and 2 into 0 for `restart: on-failure` (docs/operations.md, "Exit statuses").
CMD ["orderwatch", "worker"]
