"""Wake-ups: an idle worker starts a new job the moment it is committed.

Whatever makes jobs ready sends one wake-up per transaction (``Operations.notify_ready``). On
PostgreSQL that is a NOTIFY, and each worker keeps a connection of its own listening; on SQLite,
MySQL and MariaDB it is a datagram to each worker of the same host (``quebec.db.wakeup``), which
waits on a socket of its own. Either way the worker's loop wakes when one arrives. Polling
carries on underneath at the worker's ``polling_interval``, so a wake-up missed (a reconnecting
listener, a job enqueued on another host) costs at most one interval. ``use_listen_notify:
false`` turns both off. A pooler that lends a session per transaction (PgBouncer in
transaction mode) cannot carry a LISTEN: there a worker listens on the alias
``listen_databases`` names for its own (a direct connection to the same database), and polls
when it names none.
"""

import logging
import threading

from django.db import connections

from quebec.db import READY_CHANNEL, wakeup
from quebec.db.connection import transaction_pooled
from quebec.routing import check_alias

logger = logging.getLogger("quebec.worker")

RECONNECT_DELAY = 1.0  # seconds, doubling while the database stays away
MAX_RECONNECT_DELAY = 30.0
STOP_CHECK_INTERVAL = 1.0  # seconds a wait for notifications lasts before looking at stop()


def available(using):
    """Whether LISTEN works here: PostgreSQL through psycopg 3."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        return False
    from django.db.backends.postgresql.psycopg_any import is_psycopg3

    return is_psycopg3


def listening_alias(settings, using):
    """The alias a worker of ``using`` listens on, or None when it can only poll."""
    if not settings.use_listen_notify:
        return None
    alias = settings.listen_databases.get(using, using)
    check_alias(alias, "QUEBEC['listen_databases']")
    if not available(alias) or transaction_pooled(connections[alias]):
        return None
    return alias


def listener_for(settings, using, on_notify, name):
    """The listener of a worker of ``using``, not yet started: LISTEN on PostgreSQL (on the
    alias ``listening_alias`` gives), a same-host wake-up socket elsewhere; None when the worker
    can only poll."""
    if not settings.use_listen_notify:
        return None
    if connections[using].vendor != "postgresql":
        return LocalListener(using, on_notify, name)
    alias = listening_alias(settings, using)
    return Listener(alias, on_notify, name) if alias else None


class Listener:
    """A thread that calls ``on_notify()`` for every NOTIFY on the ready channel."""

    def __init__(self, using, on_notify, name):
        self.using = using
        self._on_notify = on_notify
        self._stopping = threading.Event()
        self._listening = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"{name}-listener", daemon=True)

    def start(self, timeout=5.0):
        """Start listening; waits up to ``timeout`` seconds for LISTEN to be in force."""
        self._thread.start()
        self._listening.wait(timeout)

    def stop(self):
        self._stopping.set()

    def _run(self):
        delay = RECONNECT_DELAY
        while not self._stopping.is_set():
            try:
                self._listen()
                delay = RECONNECT_DELAY
            except Exception:
                logger.warning("LISTEN connection lost; reconnecting in %.0fs (polling goes on)", delay, exc_info=True)
                self._stopping.wait(delay)
                delay = min(delay * 2, MAX_RECONNECT_DELAY)

    def _listen(self):
        wrapper = connections[self.using]
        connection = wrapper.get_new_connection(wrapper.get_connection_params())
        try:
            connection.autocommit = True
            connection.execute(f"LISTEN {READY_CHANNEL}")
            self._listening.set()
            # Jobs may have become ready while there was no listener: look once.
            self._on_notify()
            while not self._stopping.is_set():
                for _ in connection.notifies(timeout=STOP_CHECK_INTERVAL, stop_after=1):
                    self._on_notify()
        finally:
            connection.close()


class LocalListener:
    """A thread that calls ``on_notify()`` when a process of this host wakes this worker
    (``quebec.db.wakeup``): a burst of wake-ups that came while the loop was busy counts once."""

    def __init__(self, using, on_notify, name):
        self.using = using
        self._name = name
        self._on_notify = on_notify
        self._stopping = threading.Event()
        self._inbox = None
        self._thread = threading.Thread(target=self._run, name=f"{name}-listener", daemon=True)

    def start(self):
        """Bind the socket, then start the thread; without a socket the worker only polls."""
        try:
            self._inbox = wakeup.Inbox(self.using, self._name)
        except OSError:
            logger.warning("No same-host wake-up socket; the worker polls only", exc_info=True)
            return
        self._thread.start()

    def stop(self):
        self._stopping.set()
        if self._inbox is not None:
            self._inbox.address.unlink(missing_ok=True)  # wake-ups stop now, not once the thread ends

    def _run(self):
        try:
            while not self._stopping.is_set():
                if self._inbox.wait(STOP_CHECK_INTERVAL):
                    self._on_notify()
        except OSError:
            logger.warning("Same-host wake-up socket failed; the worker polls only", exc_info=True)
        finally:
            self._inbox.close()
