"""The loop shared by workers and dispatchers: register, poll, heartbeat, deregister."""

import logging
import socket
import threading
import time
import uuid

from django.db import DatabaseError, InterfaceError, OperationalError, connections

from quebec.db import close_broken_connections
from quebec.lifecycle import processes

logger = logging.getLogger("quebec.processes")

DEREGISTER_PATIENCE = 20.0  # seconds to keep trying to hand claims back at shutdown
MAX_ERROR_BACKOFF = 10.0


class Poller:
    """Runs ``poll()`` in its own thread until stopped.

    ``poll()`` returns True when it did a full batch of work, and the loop polls again at once;
    otherwise it sleeps ``polling_interval`` or until ``wake()``. Subclasses set ``kind`` and
    implement ``poll()``, and may extend ``metadata()`` and ``shutdown()``.
    """

    kind = "Poller"

    def __init__(self, *, polling_interval, settings, quebec, supervisor=None):
        self.polling_interval = polling_interval
        self.supervisor = supervisor  # the Process row of the runner or supervisor that started us
        self.pruned = False
        self.settings = settings
        self.quebec = quebec
        self.using = quebec.using
        self.name = f"{self.kind.lower()}-{socket.gethostname()}-{uuid.uuid4().hex[:8]}"
        self.process = None
        self.stopping = threading.Event()
        self._wake = threading.Event()
        self._thread = None
        self._next_heartbeat = 0.0
        self._errors_in_a_row = 0
        self.shutdown_timeout = settings.shutdown_timeout

    def __repr__(self):
        return f"<{type(self).__name__} {self.name}>"

    def start(self):
        self._thread = threading.Thread(target=self.run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout=None):
        """Ask the loop to end; work in flight gets ``timeout`` seconds (default: shutdown_timeout)."""
        self.shutdown_timeout = self.settings.shutdown_timeout if timeout is None else timeout
        self.stopping.set()
        self.wake()

    def wake(self):
        self._wake.set()

    def join(self, timeout=None):
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.is_alive()

    def is_alive(self):
        return self._thread is not None and self._thread.is_alive()

    def metadata(self):
        return {"polling_interval": self.polling_interval}

    def title(self):
        """What this component adds to the process title (``quebec/processes/title.py``)."""
        return self.kind.lower()

    def run(self):
        try:
            self.register()
            while not self.stopping.is_set():
                # Cleared before polling, not after waiting: a wake() that comes while the poll
                # runs is kept, and the wait below returns at once.
                self._wake.clear()
                busy = self._poll_safely()
                self._heartbeat_if_due()
                if not busy:
                    self._wake.wait(self.polling_interval)
        finally:
            try:
                self.shutdown()
            finally:
                connections.close_all()

    def register(self):
        self.process = processes.register(self.kind, self.name, self.using, self.metadata(), self.supervisor)
        self._next_heartbeat = time.monotonic() + self.settings.process_heartbeat_interval
        logger.info("%s %s started (pid %s)", self.kind, self.name, self.process.pid)

    def shutdown(self):
        """Deregister: claims still held go back to ready."""
        if self.process is None or self.pruned:
            return
        released = self._retrying(lambda: processes.deregister(self.process), patience=DEREGISTER_PATIENCE)
        if released:
            logger.warning("%s %s released %d unfinished job(s) back to ready", self.kind, self.name, released)
        logger.info("%s %s stopped", self.kind, self.name)

    def _poll_safely(self):
        try:
            busy = self.poll()
        except DatabaseError:
            # A lost connection or a deadlock victim: log, reconnect, and try again after a
            # pause that grows while the database stays away.
            self._errors_in_a_row += 1
            pause = min(self.polling_interval * 2**self._errors_in_a_row, MAX_ERROR_BACKOFF)
            logger.exception("%s %s: database error while polling; retrying in %.1fs", self.kind, self.name, pause)
            close_broken_connections()
            self.stopping.wait(pause)
            return False
        self._errors_in_a_row = 0
        return busy

    def _heartbeat_if_due(self):
        if time.monotonic() < self._next_heartbeat:
            return
        self._next_heartbeat = time.monotonic() + self.settings.process_heartbeat_interval
        try:
            alive = self.process.heartbeat(**self.metadata())
        except DatabaseError:
            logger.exception("%s %s: heartbeat failed", self.kind, self.name)
            close_broken_connections()
            return
        if not alive:
            # Another process presumed us dead and handled our jobs: carrying on would run them
            # twice. Stop; the runner exits and whoever supervises it starts a fresh one.
            logger.error("%s %s was pruned for missing heartbeats; stopping", self.kind, self.name)
            self.pruned = True
            self.stopping.set()

    def _retrying(self, operation, patience):
        """Run a database write, reconnecting and retrying for up to ``patience`` seconds.

        Only connection-level errors are retried: a lost session or a failover heals, bad data
        does not.
        """
        deadline = time.monotonic() + patience
        delay = 0.1
        while True:
            try:
                return operation()
            except (OperationalError, InterfaceError):
                if time.monotonic() + delay > deadline:
                    raise
                logger.warning("%s %s: database error; retrying in %.1fs", self.kind, self.name, delay, exc_info=True)
                close_broken_connections()
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
