"""Security settings and streams.kafka.connection: what each client is given, and failures as one
line naming the setting to fix (the real broker's side is tests/integration/test_secured.py)."""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from aiokafka.errors import (  # type: ignore[import-untyped]
    IllegalSaslStateError,
    KafkaConnectionError,
    SaslAuthenticationFailed,
    UnsupportedSaslMechanismError,
)
from faust.auth import SASLCredentials, SSLCredentials
from faust.types.auth import AuthProtocol, SASLMechanism

from streams.errors import ConfigurationError
from streams.kafka.connection import (
    SecretsFilter,
    check_connection,
    client_options,
    describe_failure,
    faust_options,
    start_client,
)
from streams.settings import Settings, load_settings
from streams.worker import OrderwatchWorker

if TYPE_CHECKING:
    from tests.conftest import TlsFiles

SASL = {"sasl_username": "svc", "sasl_password": "s3cret-pw"}


def sasl_ssl(**more: Any) -> Settings:
    return load_settings(security_protocol="SASL_SSL", **SASL, **more)


def problem(**flags: Any) -> str:
    with pytest.raises(ConfigurationError) as raised:
        load_settings(**flags)
    message = str(raised.value)
    assert "\n" not in message
    assert "s3cret-pw" not in message
    return message


@pytest.fixture(scope="module")
def tls(make_tls: Callable[[str], TlsFiles]) -> TlsFiles:
    return make_tls("unit")


# ---- settings ----------------------------------------------------------------------------------


def test_the_defaults_are_plaintext_without_login() -> None:
    settings = load_settings()
    assert settings.security_protocol == "PLAINTEXT"
    assert settings.sasl_mechanism == "PLAIN"
    assert client_options(settings) == {
        "bootstrap_servers": ["127.0.0.1:9092"],
        "security_protocol": "PLAINTEXT",
    }


def test_every_setting_is_described() -> None:
    for name in (
        "security_protocol",
        "sasl_mechanism",
        "sasl_username",
        "sasl_password",
        "ssl_cafile",
        "ssl_certfile",
        "ssl_keyfile",
        "ssl_key_password",
    ):
        assert Settings.model_fields[name].description, name


def test_protocol_and_mechanism_are_read_in_any_case(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDERWATCH_SECURITY_PROTOCOL", "sasl_ssl")
    monkeypatch.setenv("ORDERWATCH_SASL_MECHANISM", "scram-sha-512")
    monkeypatch.setenv("ORDERWATCH_SASL_USERNAME", "svc")
    monkeypatch.setenv("ORDERWATCH_SASL_PASSWORD", "s3cret-pw")
    settings = load_settings()
    assert (settings.security_protocol, settings.sasl_mechanism) == ("SASL_SSL", "SCRAM-SHA-512")


@pytest.mark.parametrize("protocol", ["SASL_SSL", "SASL_PLAINTEXT"])
def test_a_sasl_protocol_needs_a_user_and_a_password(protocol: str) -> None:
    assert problem(security_protocol=protocol, sasl_password="s3cret-pw") == (
        f"setting ORDERWATCH_SASL_USERNAME: is required because --security-protocol is {protocol}"
    )
    assert problem(security_protocol=protocol, sasl_username="svc").startswith(
        "setting ORDERWATCH_SASL_PASSWORD: is required"
    )


def test_a_login_without_a_sasl_protocol_is_refused_rather_than_ignored(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The bug of the issue: both variables set, and no client used them."""
    monkeypatch.setenv("ORDERWATCH_SASL_USERNAME", "svc")
    monkeypatch.setenv("ORDERWATCH_SASL_PASSWORD", "s3cret-pw")
    assert problem().startswith(
        "setting ORDERWATCH_SASL_USERNAME: is set but ORDERWATCH_SECURITY_PROTOCOL is "
        "PLAINTEXT, which logs no user in"
    )


def test_tls_files_without_a_tls_protocol_are_refused(tls: TlsFiles) -> None:
    assert problem(ssl_cafile=str(tls.ca)).startswith(
        "setting --ssl-cafile: is set but ORDERWATCH_SECURITY_PROTOCOL is PLAINTEXT, which uses "
        "no TLS"
    )
    assert problem(security_protocol="SASL_PLAINTEXT", **SASL, ssl_cafile=str(tls.ca))


def test_a_certificate_needs_its_key_and_a_key_its_certificate(tls: TlsFiles) -> None:
    assert problem(security_protocol="SSL", ssl_certfile=str(tls.cert)) == (
        "setting --ssl-certfile: a client certificate needs its private key: set "
        "ORDERWATCH_SSL_KEYFILE (or put the key in the certificate's file)"
    )
    assert problem(security_protocol="SSL", ssl_keyfile=str(tls.key)) == (
        "setting --ssl-keyfile: a key needs its certificate: set ORDERWATCH_SSL_CERTFILE"
    )
    assert problem(security_protocol="SSL", ssl_key_password="x") == (
        "setting --ssl-key-password: is set but ORDERWATCH_SSL_KEYFILE is not"
    )


def test_a_certificate_file_holding_its_key_is_enough(tls: TlsFiles, tmp_path: Path) -> None:
    both = tmp_path / "both.pem"
    both.write_bytes(tls.cert.read_bytes() + tls.key.read_bytes())
    settings = load_settings(security_protocol="SSL", ssl_certfile=str(both))
    assert client_options(settings)["ssl_context"] is not None


def test_tls_files_must_exist_and_be_files(tmp_path: Path) -> None:
    missing = tmp_path / "missing.pem"
    assert problem(security_protocol="SSL", ssl_cafile=str(missing)) == (
        f"setting --ssl-cafile: no such file (given {str(missing)!r})"
    )
    assert problem(security_protocol="SSL", ssl_cafile=str(tmp_path)).startswith(
        "setting --ssl-cafile: is not a file"
    )


def test_tls_files_must_be_readable(
    tls: TlsFiles, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    locked = tmp_path / "locked.pem"
    locked.write_bytes(tls.ca.read_bytes())
    locked.chmod(0)
    if os.geteuid() == 0:
        # Root reads every file: the permission check is then told what another user sees.
        real_access = os.access
        monkeypatch.setattr(
            os, "access", lambda path, mode: Path(path) != locked and real_access(path, mode)
        )
    assert "not readable" in problem(security_protocol="SSL", ssl_cafile=str(locked))


# ---- what each client gets ---------------------------------------------------------------------


def test_client_options_for_ssl(tls: TlsFiles) -> None:
    options = client_options(
        load_settings(
            broker="kafka://a:9093, b:9093",
            security_protocol="SSL",
            ssl_cafile=str(tls.ca),
            ssl_certfile=str(tls.cert),
            ssl_keyfile=str(tls.key),
        )
    )
    assert options["bootstrap_servers"] == ["a:9093", "b:9093"]
    assert options["security_protocol"] == "SSL"
    context = options["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    assert not any(key.startswith("sasl") for key in options)


def test_client_options_for_sasl_plaintext() -> None:
    options = client_options(
        load_settings(security_protocol="SASL_PLAINTEXT", sasl_mechanism="SCRAM-SHA-256", **SASL)
    )
    assert options == {
        "bootstrap_servers": ["127.0.0.1:9092"],
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-256",
        "sasl_plain_username": "svc",
        "sasl_plain_password": "s3cret-pw",
    }


def test_client_options_for_sasl_ssl_use_the_system_cas_without_a_ca_file() -> None:
    options = client_options(sasl_ssl(sasl_mechanism="SCRAM-SHA-512"))
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert options["sasl_plain_password"] == "s3cret-pw"
    assert options["ssl_context"].verify_mode == ssl.CERT_REQUIRED


def test_faust_gets_the_credentials(tls: TlsFiles) -> None:
    """The issue's first symptom: ``app.conf.broker_credentials`` was None with both set."""
    worker = OrderwatchWorker(sasl_ssl(sasl_mechanism="SCRAM-SHA-512", ssl_cafile=str(tls.ca)))
    credentials = worker.app.conf.broker_credentials
    assert isinstance(credentials, SASLCredentials)
    assert credentials.protocol is AuthProtocol.SASL_SSL
    assert credentials.mechanism is SASLMechanism.SCRAM_SHA_512
    assert (credentials.username, credentials.password) == ("svc", "s3cret-pw")
    assert credentials.ssl_context is not None


def test_faust_options_for_each_protocol(tls: TlsFiles) -> None:
    assert faust_options(load_settings()) == {"broker_credentials": None}
    ssl_only = faust_options(load_settings(security_protocol="SSL", ssl_cafile=str(tls.ca)))
    assert isinstance(ssl_only["broker_credentials"], SSLCredentials)
    plain = faust_options(load_settings(security_protocol="SASL_PLAINTEXT", **SASL))
    assert plain["broker_credentials"].protocol is AuthProtocol.SASL_PLAINTEXT
    assert plain["broker_credentials"].ssl_context is None


# ---- bad TLS files -----------------------------------------------------------------------------


def test_a_ca_file_that_is_no_certificate_names_the_ca_setting(tmp_path: Path) -> None:
    junk = tmp_path / "ca.pem"
    junk.write_text("not a certificate\n")
    with pytest.raises(ConfigurationError, match=r"^setting --ssl-cafile='.*ca.pem': not a PEM"):
        client_options(load_settings(security_protocol="SSL", ssl_cafile=str(junk)))


def test_a_key_of_another_certificate_names_the_key_setting(
    tls: TlsFiles, make_tls: Callable[[str], TlsFiles]
) -> None:
    other = make_tls("other-key")
    settings = load_settings(
        security_protocol="SSL", ssl_certfile=str(tls.cert), ssl_keyfile=str(other.key)
    )
    with pytest.raises(ConfigurationError) as raised:
        client_options(settings)
    assert str(raised.value).startswith("setting --ssl-keyfile=")
    assert "does not belong to the certificate of --ssl-certfile=" in str(raised.value)


def test_an_encrypted_key_needs_its_password(tls: TlsFiles, tmp_path: Path) -> None:
    encrypted = tmp_path / "encrypted.key"
    openssl = ["openssl", "pkey", "-aes256", "-passout", "pass:right"]
    subprocess.run(
        [*openssl, "-in", str(tls.key), "-out", str(encrypted)], check=True, capture_output=True
    )
    files = {"ssl_certfile": str(tls.cert), "ssl_keyfile": str(encrypted)}
    good = load_settings(security_protocol="SSL", ssl_key_password="right", **files)
    assert client_options(good)["ssl_context"] is not None
    bad = load_settings(security_protocol="SSL", ssl_key_password="wrong-pw", **files)
    with pytest.raises(ConfigurationError) as raised:
        client_options(bad)
    assert str(raised.value).startswith("setting --ssl-key-password: it does not decrypt")
    assert "wrong-pw" not in str(raised.value)
    none = load_settings(security_protocol="SSL", **files)
    with pytest.raises(ConfigurationError) as raised:
        client_options(none)  # and no prompt on the terminal
    assert str(raised.value).startswith("setting --ssl-keyfile=")
    assert str(raised.value).endswith("the key is encrypted: set ORDERWATCH_SSL_KEY_PASSWORD")


# ---- start failures ------------------------------------------------------------------------------


def test_an_unreachable_broker_names_the_broker_setting(
    monkeypatch: pytest.MonkeyPatch, unused_tcp_port: int
) -> None:
    monkeypatch.setenv("ORDERWATCH_BROKER", f"127.0.0.1:{unused_tcp_port}")
    with pytest.raises(ConfigurationError) as raised:
        asyncio.run(check_connection(load_settings()))
    assert str(raised.value).startswith(
        f"cannot reach the Kafka broker at ORDERWATCH_BROKER='127.0.0.1:{unused_tcp_port}': "
    )


def _verify_error(code: int, text: str) -> ssl.SSLCertVerificationError:
    error = ssl.SSLCertVerificationError(1, f"[SSL: CERTIFICATE_VERIFY_FAILED] {text}")
    error.verify_code = code
    error.verify_message = text
    return error


@pytest.mark.parametrize(
    ("error", "names"),
    [
        (SaslAuthenticationFailed("invalid credentials"), "check --sasl-password"),
        (UnsupportedSaslMechanismError("x"), "does not accept ORDERWATCH_SASL_MECHANISM='PLAIN'"),
        (IllegalSaslStateError(), "check --security-protocol='SASL_SSL'"),
        (_verify_error(19, "self-signed certificate in chain"), "set ORDERWATCH_SSL_CAFILE"),
        (_verify_error(64, "IP address mismatch"), "use a name it has in ORDERWATCH_BROKER"),
        (ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version"), "--security-protocol"),
        (
            ssl.SSLError(1, "[SSL: TLSV13_ALERT_CERTIFICATE_REQUIRED] certificate required"),
            "set ORDERWATCH_SSL_CERTFILE and ORDERWATCH_SSL_KEYFILE",
        ),
        (KafkaConnectionError("Connection at a:1 closed"), "does that listener speak SASL_SSL?"),
    ],
)
def test_each_start_failure_names_the_setting_to_fix(error: BaseException, names: str) -> None:
    line = describe_failure(sasl_ssl(), "a:9093", error)
    assert names in line
    assert "\n" not in line
    assert "s3cret-pw" not in line


def test_an_untrusted_certificate_names_the_ca_file_given(tls: TlsFiles) -> None:
    settings = load_settings(security_protocol="SSL", ssl_cafile=str(tls.ca))
    line = describe_failure(settings, "a:9093", _verify_error(19, "self-signed certificate"))
    assert f"is not signed by a CA in --ssl-cafile={str(tls.ca)!r}" in line


class _Client:
    """Records what start_client does to it."""

    def __init__(self, fail: bool) -> None:
        self.fail = fail
        self.calls: list[str] = []

    async def start(self) -> None:
        self.calls.append("start")
        if self.fail:
            raise KafkaConnectionError("Unable to bootstrap")

    async def stop(self) -> None:
        self.calls.append("stop")


async def test_start_client_stops_a_client_that_cannot_connect(unused_tcp_port: int) -> None:
    client = _Client(fail=False)
    with pytest.raises(ConfigurationError, match="cannot reach the Kafka broker at --broker="):
        await start_client(client, load_settings(broker=f"127.0.0.1:{unused_tcp_port}"))
    assert client.calls == ["stop"]  # never started: the check failed first


# ---- secrets -----------------------------------------------------------------------------------


def test_describe_masks_every_secret(tls: TlsFiles) -> None:
    settings = load_settings(
        security_protocol="SASL_SSL",
        **SASL,
        ssl_certfile=str(tls.cert),
        ssl_keyfile=str(tls.key),
        ssl_key_password="key-pw",
    )
    described = settings.describe()
    assert "s3cret-pw" not in described
    assert "key-pw" not in described
    assert "ssl_key_password=**********" in described
    assert "s3cret-pw" not in repr(settings)


def test_the_secrets_filter_masks_passwords_in_log_records() -> None:
    secrets = SecretsFilter(sasl_ssl())
    record = logging.LogRecord(
        "aiokafka.conn",
        logging.DEBUG,
        __file__,
        1,
        "Request %d: %s",
        (3, b"\x00svc\x00s3cret-pw"),
        None,
    )
    assert secrets.filter(record)
    assert "s3cret-pw" not in record.getMessage()
    assert "**********" in record.getMessage()
    untouched = logging.LogRecord("x", logging.INFO, __file__, 1, "ready: %d", (3,), None)
    assert secrets.filter(untouched)
    assert untouched.getMessage() == "ready: 3"


def test_the_secrets_filter_masks_a_traceback_that_shows_a_password() -> None:
    secrets = SecretsFilter(sasl_ssl())
    try:
        raise ValueError("login s3cret-pw refused")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    assert secrets.filter(record)
    assert record.exc_info is None
    line = logging.Formatter().format(record)
    assert "s3cret-pw" not in line
    assert "ValueError: login ********** refused" in line
