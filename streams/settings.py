"""Worker settings: one frozen object, from ``ORDERWATCH_`` environment variables and flags.

Faust reads its own un-prefixed environment variables (``BROKER_URL``, ``WEB_PORT``…) and lets
them override what an app is given; orderwatch passes every setting to Faust explicitly from
this object, so only ``ORDERWATCH_`` variables (and command-line flags, which win) configure it.
A bad value fails at start with one line naming the setting: the flag (``--broker``) when the
value came from one, else the variable (``ORDERWATCH_BROKER``); see :meth:`Settings.source_of`.

An ``ORDERWATCH_`` variable that is no setting (a typo such as ``ORDERWATCH_BROKERS``) stops
:func:`load_settings` too, naming the nearest setting, except the variables of the project's own
tooling (:data:`TOOL_VARIABLE_PREFIXES`).
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable, Iterable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal, Self
from urllib.parse import urlsplit

from pydantic import (
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from streams.errors import ConfigurationError
from streams.ops.logs import LogFormat, LogLevel

__all__ = [
    "ENV_PREFIX",
    "SASL_MECHANISMS",
    "SECURITY_PROTOCOLS",
    "TOOL_VARIABLE_PREFIXES",
    "TOPIC_ROLES",
    "Compression",
    "Settings",
    "codec_available",
    "load_settings",
    "unknown_variables",
]

ENV_PREFIX = "ORDERWATCH_"

#: ``ORDERWATCH_`` variables that belong to the project's tooling, not to orderwatch: the test
#: suite's broker (``ORDERWATCH_TEST_BROKER``, ``ORDERWATCH_TEST_LOGLEVEL``), CI's
#: ``ORDERWATCH_REQUIRE_BROKER``, the knobs of ``scripts/kafka.sh`` (``ORDERWATCH_KAFKA_HOME``,
#: ``ORDERWATCH_KAFKA_HEAP``, ``ORDERWATCH_KAFKA_SECURED``, ...), and reserved ones for the
#: benchmarks and CI. Worker processes started by those tools inherit them, so the check for
#: unknown variables ignores every name starting with one of these.
TOOL_VARIABLE_PREFIXES: tuple[str, ...] = (
    "ORDERWATCH_TEST_",
    "ORDERWATCH_REQUIRE_BROKER",
    "ORDERWATCH_KAFKA_",
    "ORDERWATCH_BENCH_",
    "ORDERWATCH_CI_",
)

Compression = Literal["none", "gzip", "snappy", "lz4", "zstd"]
SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
SECURITY_PROTOCOLS: tuple[str, ...] = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS: tuple[str, ...] = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
_TLS = ("SSL", "SASL_SSL")
_SASL = ("SASL_PLAINTEXT", "SASL_SSL")


class _Conflict(ValueError):
    """Setting ``field`` does not go with the others. ``problem`` names them as ``{0}``, ``{1}``…
    (filled in with each one's source: its flag or its variable)."""

    def __init__(self, field: str, problem: str, *others: str) -> None:
        self.field = field
        self.problem = problem
        self.others = others
        super().__init__(f"{_variable(field)}: {self.words(_variable)}")

    def words(self, source: Callable[[str], str]) -> str:
        return self.problem.format(*(source(name) for name in self.others))


def _variable(name: str) -> str:
    return f"{ENV_PREFIX}{name.upper()}"


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


#: The contract's topics (section 1) by role, with their default names.
TOPIC_ROLES: dict[str, str] = {
    "orders": "orders",
    "inventory": "inventory",
    "tracking": "tracking",
    "complaints": "complaints",
    "breaches": "deadline-breaches",
    "recommendations": "dispute-recommendations",
    "dead_letter": "dead-letter",
}


class Settings(BaseSettings):
    """Everything a worker needs to know, printed with secrets masked."""

    model_config = SettingsConfigDict(
        env_prefix="ORDERWATCH_", frozen=True, extra="forbid", env_ignore_empty=True
    )

    app_id: Annotated[str, Field(min_length=1)] = Field(
        default="orderwatch", description="Faust application id: the Kafka consumer group."
    )
    broker: Annotated[str, Field(min_length=1)] = Field(
        default="127.0.0.1:9092",
        description="Kafka bootstrap servers, comma-separated (host:port or kafka://host:port).",
    )
    security_protocol: SecurityProtocol = Field(
        default="PLAINTEXT",
        description=(
            "How clients talk to Kafka: PLAINTEXT, SSL (TLS), SASL_PLAINTEXT (a login, no TLS) "
            "or SASL_SSL (a login over TLS)."
        ),
    )
    sasl_mechanism: SaslMechanism = Field(
        default="PLAIN",
        description="SASL mechanism (SASL_* protocols): PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.",
    )
    sasl_username: Annotated[str, Field(min_length=1)] | None = Field(
        default=None, description="SASL user name (SASL_* protocols)."
    )
    sasl_password: SecretStr | None = Field(
        default=None,
        description="SASL password (SASL_* protocols); masked whenever settings are printed.",
    )
    ssl_cafile: Path | None = Field(
        default=None,
        description=(
            "PEM file of the certificate authorities that sign the brokers' certificates "
            "(SSL, SASL_SSL; default: the system's)."
        ),
    )
    ssl_certfile: Path | None = Field(
        default=None,
        description="PEM client certificate, for brokers that require one (SSL, SASL_SSL).",
    )
    ssl_keyfile: Path | None = Field(
        default=None, description="PEM private key of the client certificate."
    )
    ssl_key_password: SecretStr | None = Field(
        default=None, description="Password of an encrypted ssl_keyfile; masked when printed."
    )
    topic_prefix: str = Field(default="", description="Prepended to every topic name.")
    topic_orders: str = TOPIC_ROLES["orders"]
    topic_inventory: str = TOPIC_ROLES["inventory"]
    topic_tracking: str = TOPIC_ROLES["tracking"]
    topic_complaints: str = TOPIC_ROLES["complaints"]
    topic_breaches: str = TOPIC_ROLES["breaches"]
    topic_recommendations: str = TOPIC_ROLES["recommendations"]
    topic_dead_letter: str = TOPIC_ROLES["dead_letter"]
    partitions: Annotated[int, Field(ge=1, le=10_000)] = Field(
        default=8, description="Partitions of every topic orderwatch creates (co-partitioned)."
    )
    replication_factor: Annotated[int, Field(ge=1, le=32)] = 1
    input_retention: Annotated[timedelta, Field(ge=timedelta(minutes=1))] = Field(
        default=timedelta(days=14),
        description=(
            "How long Kafka keeps the messages of the input and internal topics orderwatch "
            "creates (retention.ms; seconds or ISO 8601, e.g. P14D): the longest a worker may "
            "be down, or behind, without input expiring unread."
        ),
    )
    output_retention: Annotated[timedelta, Field(ge=timedelta(minutes=1))] = Field(
        default=timedelta(days=30),
        description=(
            "How long Kafka keeps the breaches, recommendations and dead letters of the output "
            "topics orderwatch creates (retention.ms)."
        ),
    )
    store: str = Field(
        default="rocksdb://",
        description=(
            "Table store: rocksdb:// (on disk under the data dir; a restart reads only the "
            "changelog records written since) or memory:// (read from the changelogs' start "
            "at every start)."
        ),
    )
    data_dir: Path = Field(
        default=Path("orderwatch-data"),
        description="Local state (rocksdb://), one directory per app id under it.",
    )
    web_host: str = "127.0.0.1"
    web_port: Annotated[int, Field(ge=1, le=65535)] = 6066
    clock: Literal["wall", "event"] = Field(
        default="wall", description="wall: system time; event: per-partition watermark."
    )
    idle_slack: Annotated[timedelta, Field(ge=timedelta(0))] = Field(
        default=timedelta(days=1),
        description=(
            "Event time: how far behind the leading input an input with nothing unread may hold "
            "a partition's clock (seconds or ISO 8601, e.g. PT6H). It must exceed how far apart "
            "in event time the producers of different topics run."
        ),
    )
    arrival_grace: Annotated[float, Field(ge=0, le=600)] = Field(
        default=5.0,
        description=(
            "Wall clock: seconds after an order's event is read during which the order is "
            "decided in event time (a burst or backlog being written is read first); past "
            "them, once every input had nothing unread, it follows the wall clock again."
        ),
    )
    quiet_after: Annotated[float, Field(gt=0, le=86_400)] = Field(
        default=60.0,
        description=(
            "Wall clock: seconds a partition must go without reading an event (its inputs "
            "read to the end) before it tells the aggregates the time itself rather than its "
            "events' time."
        ),
    )
    policy: Path | None = Field(default=None, description="A policy TOML merged over Wish.")
    tick_interval: Annotated[float, Field(gt=0, le=60)] = Field(
        default=0.5, description="Seconds between deadline checks in wall-clock mode."
    )
    processing_guarantee: Literal["at_least_once", "exactly_once"] = "at_least_once"
    batch_size: Annotated[int, Field(ge=1, le=100_000)] = Field(
        default=1000, description="Most messages an agent takes in one batch."
    )
    batch_wait: Annotated[float, Field(gt=0, le=10)] = Field(
        default=0.05,
        description="Seconds an agent waits for a batch to fill before it handles what it has.",
    )
    producer_linger: Annotated[float, Field(ge=0, le=1)] = Field(
        default=0.005,
        description="Seconds the producer waits to fill a request with more messages "
        "(whole milliseconds: 0, or at least 0.001).",
    )
    producer_compression: Compression = Field(
        default="none",
        description=(
            "Codec of the messages the worker and orderwatch send produce: none, gzip, snappy, "
            "lz4 or zstd (input in any of these is read whatever this says)."
        ),
    )
    session_timeout: Annotated[float, Field(gt=0)] = 6.0
    heartbeat_interval: Annotated[float, Field(gt=0)] = 1.0
    standby_replicas: Annotated[int, Field(ge=0)] = Field(
        default=1,
        description=(
            "Workers that keep a copy of each partition's tables besides its owner (Faust's "
            "table_standby_replicas): with rocksdb://, one that takes over a killed worker's "
            "partitions already holds them."
        ),
    )
    alertmanager_url: str | None = Field(
        default=None,
        description=(
            "orderwatch alerts: the Alertmanager to post alerts to, http:// or https:// with "
            "its host and port (and path prefix, if it has one), e.g. http://127.0.0.1:9093."
        ),
    )
    alert_resend_interval: Annotated[float, Field(ge=1, le=3600)] = Field(
        default=60.0,
        description=(
            "orderwatch alerts: seconds between re-sends of the active alerts; each is sent "
            "to end 4 intervals later, so the alerts of a bridge that died expire."
        ),
    )
    alert_runbook_url: Annotated[str, Field(min_length=1)] = Field(
        default="docs/operations.md#order-alerts",
        description="orderwatch alerts: the runbook link of every alert (runbook_url).",
    )
    log_level: LogLevel = Field(
        default="info",
        description="orderwatch's log level; the libraries under it log below warning only "
        "at debug.",
    )
    log_format: LogFormat = Field(
        default="text", description="text (for people) or json (one object per line)."
    )

    #: Fields whose value came from a command-line flag (see :meth:`source_of`).
    _flags: frozenset[str] = PrivateAttr(default=frozenset())

    @field_validator("store")
    @classmethod
    def _known_store(cls, value: str) -> str:
        if not value.startswith(("memory://", "rocksdb://")):
            raise ValueError("must be memory:// or rocksdb://")
        return value

    @field_validator("alertmanager_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                "must be an http:// or https:// URL with a host, such as http://127.0.0.1:9093"
            )
        try:
            parts.port  # noqa: B018 (raises for a port that is not a number)
        except ValueError:
            raise ValueError("its port is not a number from 0 to 65535") from None
        if parts.query or parts.fragment:
            raise ValueError("must have no ?query or #fragment")
        return value.strip().rstrip("/")

    @field_validator("producer_linger")
    @classmethod
    def _whole_milliseconds(cls, value: float) -> float:
        if value and value < 0.001:
            raise ValueError("must be 0 or at least 0.001 (the producer counts milliseconds)")
        return value

    @field_validator("idle_slack", "input_retention", "output_retention", mode="before")
    @classmethod
    def _seconds(cls, value: object) -> object:
        """A duration given as a number of seconds in a string (an environment variable's)."""
        if isinstance(value, str):
            try:
                return timedelta(seconds=float(value))
            except (ValueError, OverflowError):
                return value
        return value

    @field_validator("producer_compression", mode="before")
    @classmethod
    def _lower_case(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("producer_compression")
    @classmethod
    def _codec_installed(cls, value: Compression) -> Compression:
        if not codec_available(value):
            raise ValueError(
                f"the {value} codec's library is not installed (aiokafka needs cramjam for it)"
            )
        return value

    @field_validator("security_protocol", "sasl_mechanism", mode="before")
    @classmethod
    def _upper_case(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("ssl_cafile", "ssl_certfile", "ssl_keyfile")
    @classmethod
    def _readable_file(cls, value: Path | None) -> Path | None:
        if value is None:
            return None
        if not value.exists():
            raise ValueError("no such file")
        if not value.is_file():
            raise ValueError("is not a file")
        if not os.access(value, os.R_OK):
            raise ValueError("the file is not readable (permissions)")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        """Settings that only make sense together (each problem names the one to fix)."""
        protocol = self.security_protocol
        for name in ("sasl_username", "sasl_password"):
            if protocol in _SASL and getattr(self, name) is None:
                raise _Conflict(
                    name, f"is required because {{0}} is {protocol}", "security_protocol"
                )
            if protocol not in _SASL and getattr(self, name) is not None:
                raise _Conflict(
                    name,
                    f"is set but {{0}} is {protocol}, which logs no user in: "
                    "set it to SASL_SSL (or SASL_PLAINTEXT)",
                    "security_protocol",
                )
        if protocol not in _TLS:
            for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile", "ssl_key_password"):
                if getattr(self, name) is not None:
                    raise _Conflict(
                        name,
                        f"is set but {{0}} is {protocol}, which uses no TLS: "
                        "set it to SSL or SASL_SSL",
                        "security_protocol",
                    )
        if self.ssl_keyfile is not None and self.ssl_certfile is None:
            raise _Conflict("ssl_keyfile", "a key needs its certificate: set {0}", "ssl_certfile")
        if (
            self.ssl_certfile is not None
            and self.ssl_keyfile is None
            and not _holds_private_key(self.ssl_certfile)
        ):
            raise _Conflict(
                "ssl_certfile",
                "a client certificate needs its private key: set {0} (or put the key in the "
                "certificate's file)",
                "ssl_keyfile",
            )
        if self.ssl_key_password is not None and self.ssl_keyfile is None:
            raise _Conflict("ssl_key_password", "is set but {0} is not", "ssl_keyfile")
        return self

    def source_of(self, name: str) -> str:
        """Where ``name``'s value is set: its flag (``--broker``) when a flag gave it, else its
        environment variable (``ORDERWATCH_BROKER``, also for a default: that is where to set
        it). Errors name settings through this."""
        return _source(name, self._flags)

    def given(self, name: str) -> str:
        """``source=value`` for a message, e.g. ``--broker='kafka-1:9092'`` (never a secret's
        value: secrets are printed masked)."""
        value = getattr(self, name)
        shown = str(value) if isinstance(value, SecretStr | Path) else value
        return f"{self.source_of(name)}={shown!r}"

    def topic(self, role: str) -> str:
        """The configured name of a contract topic, with the prefix."""
        return f"{self.topic_prefix}{getattr(self, f'topic_{role}')}"

    def internal_topic(self, name: str) -> str:
        """Name of an internal topic (repartition, checks), under the app id."""
        return f"{self.topic_prefix}{self.app_id}-{name}"

    def broker_urls(self) -> list[str]:
        """Bootstrap servers as Faust wants them (``kafka://host:port``)."""
        urls = []
        for part in self.broker.split(","):
            part = part.strip()
            if part:
                urls.append(part if "://" in part else f"kafka://{part}")
        return urls

    def compression_type(self) -> str | None:
        """The producers' ``compression_type`` (aiokafka's and Faust's): None for none."""
        return None if self.producer_compression == "none" else self.producer_compression

    def describe(self) -> str:
        """One line per setting, secrets masked (pydantic prints SecretStr as **********)."""
        return "\n".join(f"{name}={value!s}" for name, value in self)


def _source(name: str, flags: Iterable[str]) -> str:
    return _flag(name) if name in flags else _variable(name)


def codec_available(codec: str) -> bool:
    """Can aiokafka compress and decompress ``codec`` here (``none`` always)?"""
    from aiokafka import codec as codecs  # type: ignore[import-untyped]

    checks: dict[str, Callable[[], bool]] = {
        "gzip": codecs.has_gzip,
        "snappy": codecs.has_snappy,
        "lz4": codecs.has_lz4,
        "zstd": codecs.has_zstd,
    }
    check = checks.get(codec)
    return check is None or bool(check())


def _holds_private_key(path: Path) -> bool:
    try:
        return b"PRIVATE KEY-----" in path.read_bytes()
    except OSError:
        return False


def unknown_variables(environ: Mapping[str, str] | None = None) -> list[tuple[str, str | None]]:
    """``ORDERWATCH_`` variables (set, not empty) that are neither a setting nor a tool's
    (:data:`TOOL_VARIABLE_PREFIXES`), each with the nearest setting's variable or None."""
    environ = os.environ if environ is None else environ
    known = {_variable(name) for name in Settings.model_fields}
    unknown = []
    for key, value in sorted(environ.items()):
        name = key.upper()
        if not name.startswith(ENV_PREFIX) or not value or name in known:
            continue
        if name.startswith(TOOL_VARIABLE_PREFIXES):
            continue
        # Compared without the prefix, which every name shares.
        stem = name.removeprefix(ENV_PREFIX)
        stems = sorted(known_name.removeprefix(ENV_PREFIX) for known_name in known)
        nearest = difflib.get_close_matches(stem, stems, n=1, cutoff=0.6)
        unknown.append((key, ENV_PREFIX + nearest[0] if nearest else None))
    return unknown


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment, with ``overrides`` (command-line flags) winning.

    ``None`` overrides are flags not given. Raises :class:`ConfigurationError` with one line
    naming the first bad setting (by its flag when it came from one, else its variable), or an
    ``ORDERWATCH_`` variable that is no setting.
    """
    for variable, nearest in unknown_variables():
        hint = f"did you mean {nearest}?" if nearest else "orderwatch has no such setting"
        raise ConfigurationError(f"unknown setting {variable}: {hint}")
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        settings = Settings(**given)  # type: ignore[arg-type]
    except ValidationError as error:
        raise ConfigurationError(_first_problem(error, given)) from None
    settings._flags = frozenset(given)
    return settings


def _first_problem(error: ValidationError, flags: Iterable[str]) -> str:
    first = error.errors(include_url=False)[0]
    name = ".".join(str(part) for part in first["loc"])
    cause = first.get("ctx", {}).get("error")
    if isinstance(cause, _Conflict):
        name = cause.field
        problem = cause.words(lambda other: _source(other, flags))
        return f"setting {_source(name, flags)}: {problem}"
    if first["type"] == "extra_forbidden":
        return f"setting {_source(name, flags)}: is not a known setting"
    given = first.get("input")
    if isinstance(given, SecretStr) or "password" in name:
        given = "**********"
    elif isinstance(given, timedelta):  # a duration given in seconds (see Settings._seconds)
        given = f"{given.total_seconds():g}"
    problem = first["msg"].removeprefix("Value error, ")
    return f"setting {_source(name, flags)}: {problem} (given {given!r})"
