"""Serve the project's own site (and so the Quebec admin) from inside ``quebec_run``."""

import logging
import threading

from django.apps import apps
from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler, get_internal_wsgi_application

logger = logging.getLogger("quebec.dashboard")


def parse_address(address):
    """``(host, port)`` from ``"HOST:PORT"`` or ``"PORT"``; raises ValueError with the reason."""
    host, _, port = address.rpartition(":")
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"dashboard address must be HOST:PORT, got {address!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def serve(address):
    """Start a threaded HTTP server for the project's WSGI app; returns the server."""
    host, port = parse_address(address)
    application = get_internal_wsgi_application()
    if apps.is_installed("django.contrib.staticfiles"):
        from django.contrib.staticfiles.handlers import StaticFilesHandler

        application = StaticFilesHandler(application)
    server = ThreadedWSGIServer((host, port), WSGIRequestHandler, ipv6=":" in host)
    server.set_app(application)
    threading.Thread(target=server.serve_forever, name="quebec-dashboard", daemon=True).start()
    bound_host, bound_port = server.server_address[:2]
    logger.info("Dashboard at http://%s:%s/admin/quebec/", bound_host, bound_port)
    return server
