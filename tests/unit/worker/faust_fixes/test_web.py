"""The worker's HTTP server: only orderwatch's views, and one line when it cannot listen."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from streams.errors import ConfigurationError
from streams.settings import load_settings
from streams.worker import OrderwatchWorker
from streams.worker.faust_fixes.web import check_bind


def test_the_worker_serves_none_of_fausts_own_views(tmp_path: Path) -> None:
    worker = OrderwatchWorker(load_settings(web_host="127.0.0.1", data_dir=tmp_path))

    async def served() -> list[str]:
        # What the server serves once set up (Faust's entry point for an outside server).
        web_app = await worker.app.web.wsgi()
        return sorted(resource.canonical for resource in web_app.router.resources())

    # The console (streams.worker.console) is orderwatch's own: "/" is its page, not Faust's index.
    assert asyncio.run(served()) == [
        "/",
        "/console/{name}",
        "/events",
        "/health",
        "/merchants/{merchant_id}",
        "/merchants/{merchant_id}/orders",
        "/metrics",
        "/orders/{order_id}",
        "/ready",
    ]
    assert worker.app.conf.web_bind == "127.0.0.1"


def test_a_free_port_passes() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        port = holder.getsockname()[1]
    check_bind(load_settings(web_host="127.0.0.1", web_port=port))


def test_a_port_in_use_is_one_line_naming_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        monkeypatch.setenv("ORDERWATCH_WEB_PORT", str(port))
        with pytest.raises(ConfigurationError) as raised:
            check_bind(load_settings(web_host="127.0.0.1"))
    message = str(raised.value)
    assert message == (
        f"setting ORDERWATCH_WEB_PORT: port {port} on 127.0.0.1 is already in use "
        "(another worker?); choose a free port"
    )


def test_an_address_of_another_machine_is_one_line_naming_the_host_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ORDERWATCH_WEB_HOST", "192.0.2.1")  # TEST-NET-1
    with pytest.raises(ConfigurationError) as raised:
        check_bind(load_settings())
    assert str(raised.value).startswith("setting ORDERWATCH_WEB_HOST: cannot listen on 192.0.2.1")


def test_a_port_given_as_a_flag_is_named_as_the_flag() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(ConfigurationError) as raised:
            check_bind(load_settings(web_host="127.0.0.1", web_port=port))
    assert str(raised.value).startswith(f"setting --web-port: port {port} on 127.0.0.1")
