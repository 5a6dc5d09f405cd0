"""The ``orderwatch`` command line (click, the CLI library Faust itself is built on).

Stable commands and flags are the contract's (section 5). Output events go to stdout or
``--output``; progress and summaries go to stderr.
"""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import click
from pydantic import TypeAdapter, ValidationError

from streams import __version__
from streams.core.dates import format_utc
from streams.core.events import Timestamp
from streams.errors import ConfigurationError

__all__ = ["main"]

_TIMESTAMP: TypeAdapter[datetime] = TypeAdapter(Timestamp)


class _TimestampType(click.ParamType):
    """An RFC 3339 timestamp with an offset."""

    name = "TIMESTAMP"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, datetime):
            return value
        try:
            return _TIMESTAMP.validate_strings(value)
        except ValidationError:
            self.fail(
                f"{value!r} is not an RFC 3339 timestamp with an offset, "
                "such as 2026-01-05T10:00:00Z",
                param,
                ctx,
            )


def _refused(error: ConfigurationError) -> click.ClickException:
    """The one line of a bad setting, with its exit status (1, or 2 for an incompatible one)."""
    refused = click.ClickException(str(error))
    refused.exit_code = error.exit_code
    return refused


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="orderwatch")
def main() -> None:
    """orderwatch: deadline breaches and dispute advice for marketplace orders."""


@main.command()
@click.argument("input_path", metavar="INPUT", type=click.Path(dir_okay=False, allow_dash=True))
@click.option(
    "--output",
    "-o",
    "output_path",
    metavar="FILE",
    type=click.Path(dir_okay=False, writable=True, allow_dash=True),
    help="Write output events here (default: stdout).",
)
@click.option(
    "--policy",
    "policy_path",
    metavar="FILE",
    type=click.Path(dir_okay=False),
    help="A policy TOML file merged over the default Wish profile.",
)
@click.option(
    "--until",
    type=_TimestampType(),
    help="After the last line, advance the clock to this time (default: the latest event).",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress or summary on stderr.")
def replay(
    input_path: str,
    output_path: str | None,
    policy_path: str | None,
    until: datetime | None,
    quiet: bool,
) -> None:
    """Replay JSON Lines events (INPUT, or - for stdin) through the core in event time."""
    from streams.policy_files import load_policy
    from streams.replay import OutputError, ReplaySummary, replay_file

    if input_path != "-" and not Path(input_path).is_file():
        raise click.BadParameter(f"file {input_path!r} does not exist", param_hint="INPUT")
    try:
        policy = load_policy(policy_path)
    except ConfigurationError as error:
        raise _refused(error) from None
    interactive = sys.stderr.isatty() and not quiet

    def progress(summary: ReplaySummary) -> None:
        rate = summary.lines / summary.seconds if summary.seconds else 0.0
        click.echo(
            f"\rreplay: {summary.lines:,} lines, {sum(summary.by_type.values()):,} outputs, "
            f"{summary.rejected:,} rejected ({rate:,.0f} lines/s)",
            err=True,
            nl=False,
        )

    try:
        summary = replay_file(
            input_path,
            output_path,
            policy=policy,
            until=until,
            progress=progress if interactive else None,
        )
    except OutputError as error:
        raise click.ClickException(str(error)) from None
    if interactive:
        click.echo("\r", err=True, nl=False)
    latest = summary.latest
    if until is not None and latest is not None and until <= latest - policy.allowed_lateness:
        click.echo(
            f"orderwatch: warning: --until {format_utc(until)} is before the events read "
            f"(the latest at {format_utc(latest)}); the clock never goes back, so --until "
            "changed nothing",
            err=True,
        )
    if not quiet:
        click.echo(f"orderwatch: {summary.describe()}", err=True)


@main.command()
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("schemas"),
    show_default=True,
    help="Where to write the schemas.",
)
@click.option("--check", is_flag=True, help="Only compare; exit 1 if any file differs.")
def schemas(directory: Path, check: bool) -> None:
    """Write (or --check) the JSON Schemas and AsyncAPI document generated from the models."""
    from streams.tools.schemas import write_schemas

    stale = write_schemas(directory, check=check)
    if check and stale:
        raise click.ClickException(
            f"{len(stale)} schema file(s) differ from the models: {', '.join(stale)}; "
            "run 'orderwatch schemas' and commit the result"
        )
    verb = "checked" if check else "wrote"
    click.echo(f"orderwatch: {verb} schemas in {directory}", err=True)


def _settings(**flags: Any) -> Any:
    from streams.settings import load_settings

    try:
        return load_settings(**flags)
    except ConfigurationError as error:
        raise _refused(error) from None


#: Flags of every command that connects to Kafka (each also an ORDERWATCH_ variable). A command
#: takes them as ``**flags`` and hands them to ``_settings``, so a new flag here needs no
#: signature changes.
_CONNECTION_FLAGS = [
    click.option("--broker", help="Kafka bootstrap servers (ORDERWATCH_BROKER)."),
    click.option("--app-id", help="Consumer group / application id (ORDERWATCH_APP_ID)."),
    click.option("--partitions", type=int, help="Partitions per topic (ORDERWATCH_PARTITIONS)."),
    click.option("--topic-prefix", help="Prefix of every topic name (ORDERWATCH_TOPIC_PREFIX)."),
    click.option(
        "--security-protocol",
        metavar="PROTOCOL",
        help=(
            "PLAINTEXT (default), SSL, SASL_PLAINTEXT or SASL_SSL (ORDERWATCH_SECURITY_PROTOCOL)."
        ),
    ),
    click.option(
        "--sasl-mechanism",
        metavar="MECHANISM",
        help="PLAIN (default), SCRAM-SHA-256 or SCRAM-SHA-512 (ORDERWATCH_SASL_MECHANISM).",
    ),
    click.option("--sasl-username", help="SASL user (ORDERWATCH_SASL_USERNAME)."),
    click.option(
        "--sasl-password",
        help=(
            "SASL password. Prefer ORDERWATCH_SASL_PASSWORD: other users of the machine can "
            "read a flag in the process list."
        ),
    ),
    click.option(
        "--ssl-cafile",
        metavar="FILE",
        help="PEM file of the CAs that sign the brokers' certificates (ORDERWATCH_SSL_CAFILE).",
    ),
    click.option(
        "--ssl-certfile",
        metavar="FILE",
        help="PEM client certificate, if the brokers want one (ORDERWATCH_SSL_CERTFILE).",
    ),
    click.option(
        "--ssl-keyfile",
        metavar="FILE",
        help="PEM private key of the client certificate (ORDERWATCH_SSL_KEYFILE).",
    ),
    click.option(
        "--ssl-key-password",
        help="Password of an encrypted key file; prefer ORDERWATCH_SSL_KEY_PASSWORD.",
    ),
]
_WORKER_FLAGS = _CONNECTION_FLAGS  # the former name


def _connection_flags(command: Any) -> Any:
    for option in reversed(_CONNECTION_FLAGS):
        command = option(command)
    return command


_worker_flags = _connection_flags  # the former name


@main.command()
@_connection_flags
@click.option("--clock", type=click.Choice(["wall", "event"]), help="ORDERWATCH_CLOCK.")
@click.option("--policy", "policy_path", type=click.Path(dir_okay=False), help="ORDERWATCH_POLICY.")
@click.option("--store", help="memory:// or rocksdb:// (ORDERWATCH_STORE).")
@click.option("--web-host", help="ORDERWATCH_WEB_HOST.")
@click.option("--web-port", type=int, help="ORDERWATCH_WEB_PORT.")
@click.option("--data-dir", type=click.Path(file_okay=False), help="ORDERWATCH_DATA_DIR.")
@click.option(
    "--loglevel",
    "-l",
    "log_level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    help="ORDERWATCH_LOG_LEVEL (default info).",
)
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    help="ORDERWATCH_LOG_FORMAT: text (default) or json, one record per line.",
)
def worker(
    clock: str | None,
    policy_path: str | None,
    store: str | None,
    web_host: str | None,
    web_port: int | None,
    data_dir: str | None,
    log_level: str | None,
    log_format: str | None,
    **flags: Any,
) -> None:
    """Run the Faust worker: consume the input topics, emit breaches and recommendations."""
    import asyncio
    import logging

    from streams.kafka.connection import SecretsFilter
    from streams.kafka.topics import ensure_topics
    from streams.ops.logs import configure_logging
    from streams.ops.outage import CoordinatorWait
    from streams.worker import OrderwatchWorker, describe_startup, run
    from streams.worker.admission import refuse_unsupported
    from streams.worker.failures import EXIT_KAFKA_UNAVAILABLE, is_infrastructure
    from streams.worker.faust_fixes.web import check_bind

    settings = _settings(
        clock=clock,
        policy=policy_path,
        store=store,
        web_host=web_host,
        web_port=web_port,
        data_dir=data_dir,
        log_level=log_level,
        log_format=log_format,
        **flags,
    )
    try:
        refuse_unsupported(settings)
        check_bind(settings)
        orderwatch = OrderwatchWorker(settings)
        # aiokafka logs every request at debug, a SASL PLAIN login's with the password in it.
        configure_logging(
            settings.log_level,
            settings.log_format,
            filters=[orderwatch.outage, CoordinatorWait(), SecretsFilter(settings)],
        )
        created = asyncio.run(ensure_topics(settings))
    except ConfigurationError as error:
        raise _refused(error) from None
    except Exception as error:
        if not is_infrastructure(error):
            raise
        # Kafka failing while the topics are checked: transient, as the worker's own stops.
        failed = click.ClickException(f"Kafka failed at start: {type(error).__name__}: {error}")
        failed.exit_code = EXIT_KAFKA_UNAVAILABLE
        raise failed from None
    # Logged once Kafka answered: a start that fails is one line, the reason.
    log = logging.getLogger("orderwatch.worker")
    log.info("%s", describe_startup(orderwatch))
    if created:
        log.info("created topics %s", ", ".join(created))
    run(orderwatch)


@main.command("advance-clock")
@_connection_flags
@click.option("--until", required=True, type=_TimestampType(), help="Move every clock here.")
def advance_clock(until: datetime, **flags: Any) -> None:
    """Move the event-time clock of every partition to --until and fire what is due."""
    import asyncio

    from streams.tools.control import send_advance

    settings = _settings(**flags)
    try:
        sent = asyncio.run(send_advance(settings, until))
    except ConfigurationError as error:
        raise _refused(error) from None
    click.echo(f"orderwatch: asked {sent} partitions to advance to {until.isoformat()}", err=True)


@main.command()
@click.argument("input_path", metavar="FILE", type=click.Path(dir_okay=False, allow_dash=True))
@_worker_flags
@click.option("--quiet", "-q", is_flag=True, help="No progress or summary on stderr.")
def send(input_path: str, quiet: bool, **flags: Any) -> None:
    """Publish JSON Lines input events (FILE, or - for stdin) to their topics, keyed and
    partitioned as the worker reads them."""
    import asyncio

    from aiokafka.errors import KafkaError  # type: ignore[import-untyped]

    from streams.ops.logs import configure_logging
    from streams.tools.send import SendSummary, send_lines

    if input_path != "-" and not Path(input_path).is_file():
        raise click.BadParameter(f"file {input_path!r} does not exist", param_hint="FILE")
    settings = _settings(**flags)
    configure_logging("error", "text")  # aiokafka warns of every retried send
    interactive = sys.stderr.isatty() and not quiet

    def progress(summary: SendSummary) -> None:
        rate = summary.sent / summary.seconds if summary.seconds else 0.0
        click.echo(
            f"\rsend: {summary.lines:,} lines, {summary.sent:,} sent ({rate:,.0f} events/s)",
            err=True,
            nl=False,
        )

    def unroutable(line: int, why: str) -> None:
        if interactive:
            click.echo("\r", err=True, nl=False)
        if not quiet:
            click.echo(f"orderwatch: line {line} not sent: {why}", err=True)

    source = sys.stdin.buffer if input_path == "-" else open(input_path, "rb")  # noqa: SIM115
    try:
        summary = asyncio.run(
            send_lines(
                settings,
                source,
                progress=progress if interactive else None,
                on_unroutable=unroutable,
            )
        )
    except ConfigurationError as error:
        raise _refused(error) from None
    except KafkaError as error:
        raise click.ClickException(f"a send failed: {error}") from None
    finally:
        if source is not sys.stdin.buffer:
            source.close()
    if interactive:
        click.echo("\r", err=True, nl=False)
    if not quiet:
        click.echo(f"orderwatch: {summary.describe()}", err=True)


@main.command()
@click.option(
    "--broker",
    metavar="HOST:PORT",
    help="Use this Kafka (and the ORDERWATCH_ security variables) instead of starting the "
    "embedded broker; the demo's topics get a prefix of their own and are deleted at the end.",
)
@click.option(
    "--orders", type=click.IntRange(1), default=5000, show_default=True, help="Orders to simulate."
)
@click.option("--seed", type=int, default=1, show_default=True, help="Same seed, same stream.")
@click.option(
    "--duration",
    type=click.FloatRange(min=0, min_open=True),
    metavar="SECONDS",
    help="Stop after this long (default: at Ctrl-C).",
)
@click.option(
    "--no-live",
    is_flag=True,
    help="Print decisions as lines instead of the live view (so does a stdout that is no "
    "terminal).",
)
def demo(broker: str | None, orders: int, seed: int, duration: float | None, no_live: bool) -> None:
    """See it work: the embedded broker, a worker and a simulated marketplace, with a live
    view of breaches, recommendations, store health and dead letters. Ctrl-C stops it all."""
    import logging

    from streams.tools.demo import DemoOptions, run_demo

    # Nothing of the clients' logs on the screen (aiokafka logs every failed connection): the
    # demo says what went wrong itself, and the worker's log is its own file.
    logging.getLogger().addHandler(logging.NullHandler())
    status = run_demo(
        DemoOptions(broker=broker, orders=orders, seed=seed, duration=duration, live=not no_live)
    )
    if status:
        sys.exit(status)


@main.command()
@click.argument("topic")
@_connection_flags
@click.option("--follow", "-f", is_flag=True, help="Keep reading past the end (Ctrl-C stops).")
@click.option(
    "--last",
    type=click.IntRange(0),
    metavar="N",
    help="Start N messages before each partition's end (default: from the beginning).",
)
@click.option(
    "--max", "max_messages", type=click.IntRange(1), metavar="N", help="Stop after N messages."
)
@click.option(
    "--meta",
    is_flag=True,
    help="Print each message as a JSON object with its topic, partition, offset, timestamp, "
    "key, headers and value.",
)
@click.option("--quiet", "-q", is_flag=True, help="No summary on stderr.")
def tail(
    topic: str,
    follow: bool,
    last: int | None,
    max_messages: int | None,
    meta: bool,
    quiet: bool,
    **flags: Any,
) -> None:
    """Print the messages of TOPIC to stdout, one value (a JSON line) per line.

    TOPIC is a contract topic (orders, inventory, tracking, complaints, breaches or
    deadline-breaches, recommendations, dead-letter), named with --topic-prefix and the
    configured names, or any other topic's literal name. Reads without a consumer group
    (commits nothing); works on the embedded broker, where kcat does not."""
    import asyncio

    from streams.ops.logs import configure_logging
    from streams.tools.tail import TailOptions, resolve_topic
    from streams.tools.tail import tail as read_topic

    settings = _settings(**flags)
    configure_logging("error", "text")  # aiokafka warns of every retried fetch
    out = sys.stdout.buffer
    count = 0

    def write(line: bytes) -> None:
        nonlocal count
        out.write(line + b"\n")
        if follow:
            out.flush()
        count += 1

    options = TailOptions(follow=follow, last=last, max_messages=max_messages, meta=meta)
    try:
        asyncio.run(read_topic(settings, topic, options, write))
        out.flush()
    except ConfigurationError as error:
        raise _refused(error) from None
    except KeyboardInterrupt:
        pass  # the way a --follow ends
    except BrokenPipeError:
        sys.stderr.close()  # the reader went away: nothing more to say
        return
    if not quiet:
        plural = "" if count == 1 else "s"
        click.echo(
            f"orderwatch: {count:,} message{plural} from {resolve_topic(settings, topic)}",
            err=True,
        )


@main.command()
@click.option("--orders", type=click.IntRange(1), default=1000, show_default=True)
@click.option("--seed", type=int, default=1, show_default=True, help="Same seed, same stream.")
@click.option("--merchants", type=click.IntRange(1), default=20, show_default=True)
@click.option(
    "--orders-per-hour",
    type=click.FloatRange(min=0, min_open=True),
    default=40.0,
    show_default=True,
)
@click.option(
    "--start",
    type=_TimestampType(),
    help="When the first order is placed (default: now, or a week ago with --live).",
)
@click.option(
    "--rate",
    type=click.FloatRange(min=0, min_open=True),
    help="Write at most this many events a second (default: as fast as possible).",
)
@click.option(
    "--live",
    is_flag=True,
    help="Write each event once its occurred_at has come, the past ones at once: a stream "
    "for a wall-clock worker.",
)
def simulate(
    orders: int,
    seed: int,
    merchants: int,
    orders_per_hour: float,
    start: datetime | None,
    rate: float | None,
    live: bool,
) -> None:
    """Write a realistic simulated event stream to stdout as JSON Lines (pipe it to send).

    Without --live, weeks of event time pass in seconds: feed it to a worker with
    ORDERWATCH_CLOCK=event, or to replay."""
    import json
    import time
    from datetime import UTC, timedelta

    from streams.tools.simulator import generate_events

    now = datetime.now(UTC).replace(microsecond=0)
    first = start or (now - timedelta(days=7) if live else now)
    out = sys.stdout.buffer
    began = time.monotonic()
    try:
        for count, event in enumerate(
            generate_events(
                seed=seed,
                orders=orders,
                start=first,
                merchants=merchants,
                orders_per_hour=orders_per_hour,
            )
        ):
            wait = 0.0
            if rate is not None:
                wait = began + count / rate - time.monotonic()
            if live:
                due = datetime.fromisoformat(event["occurred_at"]).timestamp()
                wait = max(wait, due - time.time())
            if wait > 0:
                out.flush()
                time.sleep(wait)
            out.write(json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode() + b"\n")
        out.flush()
    except BrokenPipeError:
        sys.stderr.close()  # the reader went away: nothing more to say


@main.command()
@_connection_flags
@click.option(
    "--alertmanager",
    "--alertmanager-url",
    "alertmanager_url",
    metavar="URL",
    help="The Alertmanager to post to, e.g. http://127.0.0.1:9093 (ORDERWATCH_ALERTMANAGER_URL).",
)
@click.option(
    "--resend-interval",
    "alert_resend_interval",
    type=float,
    help="Seconds between re-sends of the active alerts (ORDERWATCH_ALERT_RESEND_INTERVAL).",
)
@click.option(
    "--runbook-url",
    "alert_runbook_url",
    help="Runbook link of every alert (ORDERWATCH_ALERT_RUNBOOK_URL).",
)
@click.option(
    "--loglevel",
    "-l",
    "log_level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    help="ORDERWATCH_LOG_LEVEL (default info).",
)
def alerts(**flags: Any) -> None:
    """Post breaches and critical recommendations to Alertmanager as alerts, resolved on
    deadline.resolved (reads both output topics from their start, then follows them)."""
    import asyncio
    import signal

    from streams.kafka.connection import SecretsFilter
    from streams.ops.logs import configure_logging
    from streams.tools.alerts import run_bridge

    settings = _settings(**flags)
    if settings.alertmanager_url is None:
        raise _refused(
            ConfigurationError(
                f"setting {settings.source_of('alertmanager_url')}: orderwatch alerts needs "
                "the Alertmanager's URL, e.g. http://127.0.0.1:9093"
            )
        )
    configure_logging(settings.log_level, settings.log_format, filters=[SecretsFilter(settings)])

    async def bridge() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await run_bridge(settings, stop=stop)

    try:
        asyncio.run(bridge())
    except ConfigurationError as error:
        raise _refused(error) from None
