"""Serve the project's own site (and so the Quebec admin) from inside ``quebec_run``.

Waitress serves it: a multi-threaded, pure-Python WSGI server built for production, whose
main thread does the socket I/O so that slow clients do not tie up the threads running Django.
WhiteNoise serves the static files, from the apps' directories (no ``collectstatic`` needed)
and from ``STATIC_ROOT`` when there is one. Django's development server is not used: it is
not meant to face a network.

The dashboard never shows Django's debug pages: serving it turns ``DEBUG`` off in the process
that serves it (with threads, the whole ``quebec_run`` process; with a supervisor, only the
dashboard's own child), unless ``QUEBEC["dashboard_debug"]`` is true.
"""

import logging
import socket
import threading
import warnings

from django.apps import apps
from django.conf import settings
from django.core.servers.basehttp import get_internal_wsgi_application

from quebec import conf

logger = logging.getLogger("quebec.dashboard")

THREADS = 4
STOP_TIMEOUT = 5.0  # seconds to wait for requests under way when the process stops
# The hosts Django accepts when DEBUG is on and ALLOWED_HOSTS is empty, kept when DEBUG goes off.
DEBUG_HOSTS = [".localhost", "127.0.0.1", "[::1]"]


def parse_address(address):
    """``(host, port)`` from ``"HOST:PORT"`` or ``"PORT"``; raises ValueError with the reason."""
    host, _, port = address.rpartition(":")
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"dashboard address must be HOST:PORT, got {address!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


class DashboardServer:
    """A Waitress server running in a daemon thread of this process."""

    def __init__(self, application, host, port):
        import waitress

        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        try:
            listener = socket.create_server((host, port), family=family)
        except OSError as error:
            raise conf.ConfigError(f"dashboard address {host}:{port}: cannot listen there ({error.strerror})") from None
        self.server = waitress.create_server(
            application, sockets=[listener], threads=THREADS, ident="quebec", expose_tracebacks=False
        )
        self.address = (self.server.effective_host, self.server.effective_port)
        self.thread = threading.Thread(target=self.server.run, name="quebec-dashboard", daemon=True)
        self.thread.start()

    def shutdown(self):
        """Stop listening, let requests under way finish (for a few seconds), and return."""
        from waitress import wasyncore

        # The event loop is not thread-safe: close its sockets from inside it, and it ends.
        self.server.trigger.pull_trigger(lambda: wasyncore.close_all(self.server._map))
        self.thread.join(STOP_TIMEOUT)
        self.server.task_dispatcher.shutdown(timeout=STOP_TIMEOUT)


def serve(address):
    """Start serving the project's WSGI app at ``address``; returns the ``DashboardServer``."""
    from quebec import standalone

    host, port = parse_address(address)
    _turn_debug_off()
    standalone.allow_hosts_for(host)
    application = get_internal_wsgi_application()
    if apps.is_installed("django.contrib.staticfiles"):
        application = static_files(application)
    server = DashboardServer(application, host, port)
    bound_host, bound_port = server.address
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    logger.info("Dashboard at http://%s:%s/admin/quebec/", shown, bound_port)
    return server


def _turn_debug_off():
    if not settings.DEBUG or conf.get().dashboard_debug:
        return
    if not settings.ALLOWED_HOSTS:
        settings.ALLOWED_HOSTS = DEBUG_HOSTS
    settings.DEBUG = False
    logger.info("Serving the dashboard with DEBUG off; set QUEBEC['dashboard_debug'] = True to keep it on")


def static_files(application):
    """``application`` behind WhiteNoise, configured by the project's ``WHITENOISE_*`` settings."""
    from whitenoise.base import WhiteNoise
    from whitenoise.middleware import WhiteNoiseMiddleware

    class StaticFiles(WhiteNoiseMiddleware):
        # The middleware's settings and file finders, as WSGI middleware in front of Django.
        __call__ = WhiteNoise.__call__
        serve = staticmethod(WhiteNoise.serve)

    with warnings.catch_warnings():
        # A STATIC_ROOT not collected yet is fine: the finders serve the apps' files.
        warnings.filterwarnings("ignore", message="No directory at", module="whitenoise")
        wrapper = StaticFiles()
    wrapper.application = application
    if not wrapper.use_finders:
        wrapper.use_finders = True
        if not wrapper.autorefresh:
            wrapper.add_files_from_finders()
    return wrapper
