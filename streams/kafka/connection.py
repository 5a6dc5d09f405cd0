"""Connections to Kafka: every client's configuration from :class:`Settings`, and start failures
as one line naming the setting to fix.

Every Kafka client orderwatch creates (Faust's, the admin client, each producer and consumer a
command starts) is configured here, so all of them connect alike (bootstrap servers, security
protocol, SASL login, TLS)::

    from aiokafka import AIOKafkaProducer
    from streams.kafka.connection import client_options, connected, start_client

    # as a context manager: started (or ConfigurationError), stopped on the way out
    async with connected(AIOKafkaProducer(**client_options(settings)), settings) as producer:
        await producer.send_and_wait(topic, value)

    # or by hand
    producer = AIOKafkaProducer(**client_options(settings), linger_ms=5)
    await start_client(producer, settings)   # ConfigurationError: one line naming the setting
    try:
        ...
    finally:
        await producer.stop()

    # Faust
    app = faust.App(app_id, broker=settings.broker_urls(), **faust_options(settings))

``client_options`` gives keyword arguments for any aiokafka client (``AIOKafkaProducer``,
``AIOKafkaConsumer``, ``AIOKafkaAdminClient``); add the client's own (``group_id``, ``linger_ms``)
next to it. ``start_client`` first opens one connection of its own to the bootstrap servers with
the same settings (TCP, TLS handshake, SASL login), because aiokafka's own start reports any of
those failures as "Unable to bootstrap"; a failure becomes a :class:`ConfigurationError` such as

- ``cannot reach the Kafka broker at ORDERWATCH_BROKER='kafka-1:9092': ...`` (unreachable),
- ``the broker at kafka-1:9093 refused the SASL login of ORDERWATCH_SASL_USERNAME='svc' with
  SCRAM-SHA-512: check ORDERWATCH_SASL_PASSWORD (and the user name)``,
- ``the TLS certificate of the broker at kafka-1:9093 is not signed by a CA in
  ORDERWATCH_SSL_CAFILE='ca.pem': ...``,

each naming the flag instead (``--broker``) when the value came from one
(:meth:`Settings.source_of`). Secrets never appear in these messages. A bad TLS file (not PEM,
a key that does not match its certificate, a wrong key password) is a ``ConfigurationError``
from ``client_options`` and ``faust_options`` already.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, TypeVar

from aiokafka.conn import AIOKafkaConnection  # type: ignore[import-untyped]
from aiokafka.errors import (  # type: ignore[import-untyped]
    AuthenticationFailedError,
    IllegalSaslStateError,
    KafkaError,
    SaslAuthenticationFailed,
    UnsupportedSaslMechanismError,
)
from aiokafka.protocol.metadata import MetadataRequest  # type: ignore[import-untyped]

from streams.errors import BrokerUnreachable, ConfigurationError
from streams.settings import Settings

__all__ = [
    "PROBE_TIMEOUT",
    "SecretsFilter",
    "bootstrap_servers",
    "check_connection",
    "client_options",
    "connected",
    "describe_failure",
    "faust_credentials",
    "faust_options",
    "security_options",
    "ssl_context",
    "start_client",
]

#: Seconds the start check waits for a TCP connection, and then for the broker's answers.
PROBE_TIMEOUT = 10.0

C = TypeVar("C")

_TLS = ("SSL", "SASL_SSL")
_SASL = ("SASL_PLAINTEXT", "SASL_SSL")
# OpenSSL's verify codes for a certificate that does not name the host (X509_V_ERR_*_MISMATCH).
_NAME_MISMATCH = {62, 63, 64}


# ---- configuration -------------------------------------------------------------------------------


def bootstrap_servers(settings: Settings) -> list[str]:
    """The bootstrap servers as ``host:port`` strings (``kafka://`` dropped)."""
    return [url.split("://", 1)[1] for url in settings.broker_urls()]


def _hosts(settings: Settings) -> list[tuple[str, int]]:
    hosts = []
    for server in bootstrap_servers(settings):
        host, sep, port = server.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ConfigurationError(
                f"setting {settings.given('broker')}: {server!r} is not host:port"
            )
        hosts.append((host.strip("[]"), int(port)))
    if not hosts:
        raise ConfigurationError(f"setting {settings.given('broker')}: no host:port in it")
    return hosts


def ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """The TLS context of the SSL and SASL_SSL protocols (None for the others): the brokers'
    certificates are checked against ``ssl_cafile`` (default: the system's CAs) and must name
    the host; ``ssl_certfile``/``ssl_keyfile`` is the client's certificate, if any."""
    if settings.security_protocol not in _TLS:
        return None
    try:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    except ssl.SSLError as error:  # pragma: no cover - a broken OpenSSL installation
        raise ConfigurationError(f"cannot set up TLS: {error}") from None
    if settings.ssl_cafile is not None:
        try:
            context.load_verify_locations(cafile=settings.ssl_cafile)
        except (ssl.SSLError, OSError, ValueError) as error:
            raise ConfigurationError(
                f"setting {settings.given('ssl_cafile')}: not a PEM file of CA certificates "
                f"({_reason(error)})"
            ) from None
    if settings.ssl_certfile is not None:
        secret = settings.ssl_key_password
        asked: list[bool] = []

        def password() -> str:
            # Called only for an encrypted key. Without it OpenSSL would prompt on the terminal.
            asked.append(True)
            if secret is None:
                raise _NoKeyPassword
            return secret.get_secret_value()

        try:
            context.load_cert_chain(settings.ssl_certfile, settings.ssl_keyfile, password=password)
        except _NoKeyPassword:
            key = "ssl_keyfile" if settings.ssl_keyfile else "ssl_certfile"
            raise ConfigurationError(
                f"setting {settings.given(key)}: the key is encrypted: set "
                f"{settings.source_of('ssl_key_password')}"
            ) from None
        except (ssl.SSLError, OSError, ValueError) as error:
            raise ConfigurationError(_cert_chain_problem(settings, error, bool(asked))) from None
    return context


class _NoKeyPassword(Exception):
    """The key file is encrypted and no password is set."""


def _cert_chain_problem(settings: Settings, error: BaseException, encrypted: bool) -> str:
    """Which of the certificate, the key and its password ``load_cert_chain`` choked on."""
    reason = _reason(error)
    certfile = settings.ssl_certfile
    keyfile = settings.ssl_keyfile or certfile
    assert certfile is not None
    assert keyfile is not None
    key = "ssl_keyfile" if settings.ssl_keyfile else "ssl_certfile"
    if b"-----BEGIN CERTIFICATE-----" not in _read(certfile):
        return f"setting {settings.given('ssl_certfile')}: no PEM certificate in it ({reason})"
    if b"PRIVATE KEY-----" not in _read(keyfile):
        return f"setting {settings.given(key)}: no PEM private key in it ({reason})"
    if encrypted and "mismatch" not in reason.lower():
        return (
            f"setting {settings.source_of('ssl_key_password')}: it does not decrypt "
            f"{settings.given(key)} ({reason})"
        )
    if "mismatch" in reason.lower():
        return (
            f"setting {settings.given(key)}: the key does not belong to the certificate of "
            f"{settings.given('ssl_certfile')}"
        )
    return (
        f"setting {settings.given('ssl_certfile')}: cannot load it with the key of "
        f"{settings.given(key)} ({reason})"
    )


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""


def security_options(settings: Settings) -> dict[str, Any]:
    """The security keyword arguments of an aiokafka client (no ``bootstrap_servers``)."""
    options: dict[str, Any] = {"security_protocol": settings.security_protocol}
    if settings.security_protocol in _SASL:
        username, password = _login(settings)
        options.update(
            sasl_mechanism=settings.sasl_mechanism,
            sasl_plain_username=username,
            sasl_plain_password=password,
        )
    context = ssl_context(settings)
    if context is not None:
        options["ssl_context"] = context
    return options


def client_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for any aiokafka client: ``bootstrap_servers`` and the security ones
    (``security_protocol``, ``sasl_mechanism``, ``sasl_plain_username``, ``sasl_plain_password``,
    ``ssl_context``). ``AIOKafkaProducer(**client_options(settings), linger_ms=5)``."""
    return {"bootstrap_servers": bootstrap_servers(settings), **security_options(settings)}


def faust_credentials(settings: Settings) -> Any:
    """Faust's ``broker_credentials``: ``SASLCredentials`` (with the TLS context for
    SASL_SSL), ``SSLCredentials``, or None for PLAINTEXT."""
    from faust.auth import SASLCredentials, SSLCredentials

    protocol = settings.security_protocol
    if protocol == "PLAINTEXT":
        return None
    context = ssl_context(settings)
    if protocol == "SSL":
        return SSLCredentials(context)
    username, password = _login(settings)
    return SASLCredentials(
        username=username, password=password, ssl_context=context, mechanism=settings.sasl_mechanism
    )


def _login(settings: Settings) -> tuple[str, str]:
    """The SASL user and password (Settings makes sure a SASL protocol has both)."""
    if settings.sasl_username is None or settings.sasl_password is None:
        raise ConfigurationError(  # pragma: no cover - Settings refuses this
            f"setting {settings.source_of('sasl_username')}: a SASL login needs a user and a "
            "password"
        )
    return settings.sasl_username, settings.sasl_password.get_secret_value()


def faust_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for ``faust.App``: ``broker_credentials``, which Faust hands to every
    client it creates (consumers, producers, the topic-creating client)."""
    return {"broker_credentials": faust_credentials(settings)}


# ---- starting a client ---------------------------------------------------------------------------


async def start_client(client: C, settings: Settings, *, timeout: float = PROBE_TIMEOUT) -> C:
    """Start an aiokafka client made with :func:`client_options`; returns it, started.

    Checks the connection first (:func:`check_connection`), so that a broker that cannot be
    reached, a refused login or an untrusted certificate is a :class:`ConfigurationError` of one
    line naming the setting to fix. On failure the client is stopped (or closed) before raising.
    """
    try:
        await check_connection(settings, timeout=timeout)
        try:
            await client.start()  # type: ignore[attr-defined]
        except (KafkaError, OSError, TimeoutError) as error:
            raise ConfigurationError(
                f"cannot connect to the Kafka broker at {settings.given('broker')}: "
                f"{_reason(error)}"
            ) from None
    except BaseException:
        with contextlib.suppress(Exception):
            await _stop(client)
        raise
    return client


@contextlib.asynccontextmanager
async def connected(client: C, settings: Settings) -> AsyncIterator[C]:
    """``async with connected(AIOKafkaConsumer(..., **client_options(s)), s) as consumer:``:
    :func:`start_client` on the way in, stopped (or closed) on the way out."""
    await start_client(client, settings)
    try:
        yield client
    finally:
        await _stop(client)


async def _stop(client: Any) -> None:
    stop = getattr(client, "stop", None) or client.close  # the admin client has close()
    await stop()


async def check_connection(settings: Settings, *, timeout: float = PROBE_TIMEOUT) -> None:
    """Connect once to the bootstrap servers as a client would (TCP, TLS, SASL login).

    Returns when one of them accepts; else raises :class:`ConfigurationError` with one line
    naming the setting to fix (the most telling failure: a refused login before a host that
    does not answer), :class:`BrokerUnreachable` (exit 75) if none answered at all.
    """
    options = security_options(settings)
    failures: list[str] = []
    unreachable: list[str] = []
    for host, port in _hosts(settings):
        try:
            await _connect_once(host, port, options, timeout)
            return
        except _Unreachable as error:
            unreachable.append(
                f"cannot reach the Kafka broker at {settings.given('broker')}: "
                f"{_reason(error.__cause__ or error)}"
            )
        except Exception as error:  # whatever it is, a line naming the setting to look at
            failures.append(describe_failure(settings, f"{host}:{port}", error))
    if failures:
        raise ConfigurationError(failures[0])
    raise BrokerUnreachable(unreachable[0])


class _Unreachable(Exception):
    """No TCP connection to the host."""


async def _connect_once(host: str, port: int, options: dict[str, Any], timeout: float) -> None:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except (OSError, TimeoutError) as error:
        raise _Unreachable(str(error)) from error
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    connection = AIOKafkaConnection(
        host,
        port,
        client_id="orderwatch-connection-check",
        request_timeout_ms=int(timeout * 1000),
        **options,
    )
    try:
        await connection.connect()
        # What aiokafka's bootstrap asks next; a listener that wants a login answers only this.
        await connection.send(MetadataRequest([]))
    finally:
        connection.close()


def describe_failure(settings: Settings, where: str, error: BaseException) -> str:
    """One line naming the setting to fix for ``error``, met connecting to ``where``
    (``host:port``) once the TCP connection was made."""
    protocol = settings.security_protocol
    reason = _reason(error)
    if isinstance(error, ssl.SSLCertVerificationError):
        if error.verify_code in _NAME_MISMATCH:
            return (
                f"the TLS certificate of the broker at {where} is not valid for that host "
                f"({reason}): use a name it has in {settings.source_of('broker')}"
            )
        if settings.ssl_cafile is not None:
            return (
                f"the TLS certificate of the broker at {where} is not signed by a CA in "
                f"{settings.given('ssl_cafile')} ({reason})"
            )
        return (
            f"the TLS certificate of the broker at {where} is not signed by a CA this system "
            f"trusts ({reason}): set {settings.source_of('ssl_cafile')} to the CA that signed it"
        )
    if isinstance(error, SaslAuthenticationFailed | AuthenticationFailedError):
        return (
            f"the broker at {where} refused the SASL login of {settings.given('sasl_username')} "
            f"with {settings.sasl_mechanism}: check {settings.source_of('sasl_password')} (and "
            "the user name)"
        )
    if isinstance(error, UnsupportedSaslMechanismError):
        offered = reason.partition("Enabled mechanisms are: ")[2]
        return f"the broker at {where} does not accept {settings.given('sasl_mechanism')}" + (
            f" (it offers {offered})" if offered else " on that listener"
        )
    if isinstance(error, IllegalSaslStateError):
        return (
            f"the broker at {where} expects no SASL login there: check "
            f"{settings.given('security_protocol')}"
        )
    lowered = reason.lower()
    if isinstance(error, ssl.SSLError) and "certificate" in lowered:
        # The broker's alert: it wants a client certificate, or does not trust ours.
        if settings.ssl_certfile is None:
            return (
                f"the broker at {where} asks for a client certificate ({reason}): set "
                f"{settings.source_of('ssl_certfile')} and {settings.source_of('ssl_keyfile')}"
            )
        return (
            f"the broker at {where} refused the client certificate "
            f"{settings.given('ssl_certfile')} ({reason})"
        )
    if isinstance(error, ssl.SSLError):
        return (
            f"the broker at {where} does not speak TLS there ({reason}): check "
            f"{settings.given('security_protocol')}"
        )
    if isinstance(error, KafkaError | ConnectionError | TimeoutError | EOFError):
        return (
            f"the broker at {where} closed the connection or did not answer ({reason}): does "
            f"that listener speak {protocol}? check {settings.given('security_protocol')}"
        )
    return f"cannot connect to the Kafka broker at {settings.given('broker')}: {reason}"


class SecretsFilter(logging.Filter):
    """A logging filter that masks the settings' secrets in every record it sees.

    aiokafka logs each request at DEBUG, and a SASL PLAIN login request carries the password:
    the worker puts this filter on its log handlers.
    """

    MASK = "**********"

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        values = [
            secret.get_secret_value()
            for secret in (settings.sasl_password, settings.ssl_key_password, settings.web_token)
            if secret is not None
        ]
        # As written, and as it shows inside the repr of bytes.
        forms = {form for value in values for form in (value, repr(value.encode())[2:-1])}
        self._secrets = sorted((form for form in forms if form), key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._secrets:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a broken record: logging reports it itself
            return True
        masked = self.mask(message)
        if masked != message:
            record.msg, record.args = masked, ()
        if record.exc_info:
            # Formatters may format exc_info again (ignoring exc_text): a traceback that shows
            # a secret becomes part of the message, masked, and the record carries none.
            trace = record.exc_text or logging.Formatter().formatException(record.exc_info)
            if self.mask(trace) != trace:
                record.msg, record.args = f"{masked}\n{self.mask(trace)}", ()
                record.exc_info, record.exc_text = None, None
        return True

    def mask(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, self.MASK)
        return text


def _reason(error: BaseException) -> str:
    """One line: the error's text, else its type."""
    text = " ".join(str(error).split())
    return text or type(error).__name__
