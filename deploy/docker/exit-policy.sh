#!/bin/sh
# Runs the worker (its arguments: the command) for docker compose, whose `restart: on-failure`
# restarts any non-zero exit and cannot tell exit statuses apart:
# - 75 (Kafka unavailable, a crash in Faust: transient) and a kill by a signal (128 + N, the
#   OOM killer's SIGKILL too) are passed on: compose restarts the worker;
# - 1 and 2 (a bad setting, named on the line before) become 0, with one more line: compose
#   leaves the worker stopped until the setting is fixed (docs/operations.md).
# SIGTERM and SIGINT (docker stop, Ctrl-C) are passed to the worker, which leaves its group.
"$@" &
child=$!
trap 'kill -TERM "$child" 2>/dev/null' TERM INT
while :; do
    wait "$child"
    status=$?
    # A trapped signal ends `wait` early (status > 128) while the worker runs on: wait again.
    kill -0 "$child" 2>/dev/null || break
done
case "$status" in
1 | 2)
    echo "orderwatch: exit $status is a bad setting (see the line above): not restarted;" \
        "fix it, then docker compose up -d" >&2
    exit 0
    ;;
esac
exit "$status"
