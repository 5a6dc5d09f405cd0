"""Worker settings: one frozen object, from ``ORDERWATCH_`` environment variables and flags.

Faust reads its own un-prefixed environment variables (``BROKER_URL``, ``WEB_PORT``…) and lets
them override what an app is given; orderwatch passes every setting to Faust explicitly from
this object, so only ``ORDERWATCH_`` variables (and command-line flags, which win) configure it.
A bad value fails at start with one line naming the setting.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from streams.errors import ConfigurationError
from streams.logs import LogFormat, LogLevel

__all__ = ["TOPIC_ROLES", "Settings", "load_settings"]

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
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
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
    store: str = Field(
        default="memory://",
        description="Table store: memory:// (rebuilt from the changelog at start) or rocksdb://.",
    )
    data_dir: Path = Field(default=Path("orderwatch-data"), description="Faust's data dir.")
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
    policy: Path | None = Field(default=None, description="A policy TOML merged over Wish.")
    tick_interval: Annotated[float, Field(gt=0, le=60)] = Field(
        default=0.5, description="Seconds between deadline checks in wall-clock mode."
    )
    processing_guarantee: Literal["at_least_once", "exactly_once"] = "at_least_once"
    session_timeout: Annotated[float, Field(gt=0)] = 6.0
    heartbeat_interval: Annotated[float, Field(gt=0)] = 1.0
    log_level: LogLevel = Field(
        default="info",
        description="orderwatch's log level; the libraries under it log below warning only "
        "at debug.",
    )
    log_format: LogFormat = Field(
        default="text", description="text (for people) or json (one object per line)."
    )

    @field_validator("store")
    @classmethod
    def _known_store(cls, value: str) -> str:
        if not value.startswith(("memory://", "rocksdb://")):
            raise ValueError("must be memory:// or rocksdb://")
        return value

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

    def describe(self) -> str:
        """One line per setting, secrets masked (pydantic prints SecretStr as ********)."""
        return "\n".join(f"{name}={value!s}" for name, value in self)


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment, with ``overrides`` (command-line flags) winning.

    Raises :class:`ConfigurationError` with one line naming the first bad setting.
    """
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})  # type: ignore[arg-type]
    except ValidationError as error:
        first = error.errors(include_url=False)[0]
        name = ".".join(str(part) for part in first["loc"]) or "settings"
        given = first.get("input")
        problem = first["msg"].removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            problem = "is not a known setting"
            return_line = f"setting ORDERWATCH_{name.upper()}: {problem}"
        else:
            return_line = f"setting ORDERWATCH_{name.upper()}: {problem} (given {given!r})"
        raise ConfigurationError(return_line) from None
