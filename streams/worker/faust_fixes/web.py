"""The worker's HTTP server: orderwatch's endpoints only, on the address it is told.

Works around: faust-streaming 0.15.3 serving its own views (tables, the assignment, statistics)
beside the app's. Fails without it:
``tests/unit/worker/faust_fixes/test_web.py::test_the_worker_serves_none_of_fausts_own_views``;
on a broker,
``tests/integration/test_worker.py::test_the_web_server_listens_where_it_is_told_and_serves_only_orderwatch``.

Faust's aiohttp server, but without Faust's own views (``/router/``, ``/table/``, statistics,
graph, index): what a worker serves is ``/health``, ``/ready``, ``/metrics`` and orderwatch's
own read-only state queries (:mod:`streams.worker.queries`), none of Faust's table views. It
listens on ``ORDERWATCH_WEB_HOST`` (Faust's ``web_bind``; Faust's own default is every
interface). :func:`check_bind` tells at start, in one line, that
the address cannot be used, before Faust would fail with a traceback.
"""

from __future__ import annotations

import errno
import logging
import socket

import faust
from faust.web.drivers.aiohttp import Web

from streams.errors import ConfigurationError
from streams.settings import Settings

__all__ = ["OrderwatchWeb", "check_bind", "install_orderwatch_web"]


class OrderwatchWeb(Web):
    """Faust's aiohttp web driver with none of Faust's built-in blueprints."""

    default_blueprints = ()
    production_blueprints = ()
    debug_blueprints = ()
    optional_blueprints = ()


# mode names a service's logger after its class's module: these records are Faust's web server's
# (set after the class, which mode's subclass hook would undo).
OrderwatchWeb.logger = logging.getLogger(Web.__module__)


def install_orderwatch_web(app: faust.App) -> None:
    """Give ``app`` (not started yet) the :class:`OrderwatchWeb` server."""
    app.web = OrderwatchWeb(app)


def check_bind(settings: Settings) -> None:
    """Raise :class:`ConfigurationError` when the web address cannot be listened on."""
    host, port = settings.web_host, settings.web_port
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        raise ConfigurationError(
            f"setting {settings.source_of('web_host')}: cannot resolve {host!r} ({error.strerror})"
        ) from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        # As the server will: a port in TIME_WAIT after a restart is free to use.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise ConfigurationError(
                    f"setting {settings.source_of('web_port')}: port {port} on {host} is already "
                    "in use (another worker?); choose a free port"
                ) from None
            raise ConfigurationError(
                f"setting {settings.source_of('web_host')}: cannot listen on {host}:{port} "
                f"({error.strerror}); use an address of this machine, such as 127.0.0.1"
            ) from None
