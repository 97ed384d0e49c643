"""Connections: write transactions, SQLite tuning, and closing what a job left broken."""

import contextlib
import functools
import logging

from django.db import connections, transaction
from django.db.backends.signals import connection_created
from django.dispatch import receiver

logger = logging.getLogger(__name__)

# Long enough that a burst of writers queues up instead of failing with "database is locked".
SQLITE_BUSY_TIMEOUT_MS = 30_000
# The PostgreSQL channel that tells listening workers jobs became ready.
READY_CHANNEL = "quebec_ready"


def in_transaction_by_hand(using):
    """Whether the caller opened a transaction on ``using`` by hand: autocommit off, no atomic
    block (``transaction.set_autocommit(False)``, ended by ``commit()`` or ``rollback()``)."""
    connection = connections[using]
    return not connection.in_atomic_block and connection.connection is not None and not connection.get_autocommit()


def after_commit(hook, using, robust=False):
    """Call ``hook`` once the transaction in progress on ``using`` commits, at once outside one.

    ``transaction.on_commit`` with one more case: a transaction the caller opened by hand,
    where Django refuses a hook. There the hook is registered inside an atomic block without a
    savepoint (no statement sent), which Django keeps until the caller turns autocommit back on
    after committing; a rollback before that drops it, even one of later work. The workers'
    wake-up (they poll as well) and events may be lost that way; a job that enqueues after
    commit may not, and is written into such a transaction instead (``quebec.enqueue``).

    Outside a transaction, and without a connection open, the hook runs without opening one."""
    connection = connections[using]
    if connection.in_atomic_block:
        transaction.on_commit(hook, using=using, robust=robust)
    elif in_transaction_by_hand(using):
        with transaction.atomic(using=using, savepoint=False):
            transaction.on_commit(hook, using=using, robust=robust)
    elif not robust:
        hook()
    else:
        try:
            hook()
        except Exception:
            logger.exception("A hook run after commit failed: %r", hook)


@contextlib.contextmanager
def write_transaction(using):
    """An atomic block that takes the database's write lock up front.

    PostgreSQL and MySQL lock rows as statements touch them, so a plain ``atomic()`` is enough.
    SQLite has one writer at a time: a transaction that reads and then writes can fail at once
    with "database is locked" when another writer got in between, busy timeout or not. Starting
    with ``BEGIN IMMEDIATE`` makes it wait its turn instead.

    Inside a transaction the caller opened by hand (autocommit off), the block is a savepoint of
    it. SQLite needs that transaction begun first: Python's driver begins one only before a
    data-changing statement, and a SAVEPOINT outside a transaction starts one of its own, which
    its RELEASE would commit, the caller's uncommitted work with it.
    """
    connection = connections[using]
    immediate = connection.vendor == "sqlite" and not connection.in_atomic_block
    if immediate and in_transaction_by_hand(using):
        if not connection.connection.in_transaction:
            send(connection, "BEGIN IMMEDIATE", [], returning=False)
        immediate = False
    if not immediate:
        with transaction.atomic(using=using):
            yield
        return
    connection.ensure_connection()  # the backend sets transaction_mode when it connects
    previous = connection.transaction_mode
    connection.transaction_mode = "IMMEDIATE"
    try:
        with transaction.atomic(using=using):
            connection.transaction_mode = previous
            yield
    finally:
        connection.transaction_mode = previous


def transaction_pooled(connection):
    """Whether ``connection`` goes through a pooler that lends a server session per transaction.

    Django's own marker for one, ``DISABLE_SERVER_SIDE_CURSORS``, which PgBouncer's transaction
    mode needs anyway: a cursor outlives its transaction. Behind such a pooler the session (its
    ``SET`` values, advisory locks, temporary tables, ``LISTEN``) is shared with other clients
    between our transactions, so Quebec leaves it alone.
    """
    return connection.vendor == "postgresql" and bool(connection.settings_dict.get("DISABLE_SERVER_SIDE_CURSORS"))


def send(connection, sql, params, *, returning=True, prepare=False):
    """Execute one of the enqueue's statements (written with ``%s`` placeholders); returns its rows,
    or without ``returning`` the id of the row it inserted.

    On the driver's own cursor, with Django's translation of errors: Django's cursor wrappers
    cost more Python per statement than the driver itself. Through them whenever they do
    something: when queries are logged (DEBUG, ``CaptureQueriesContext``), an execute wrapper is
    installed, or the transaction is broken (Django raises there). ``prepare``: PostgreSQL
    plans the statement once per connection (server-side binding, psycopg's prepared statements).
    """
    if connection.queries_logged or connection.execute_wrappers or connection.needs_rollback:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall() if returning else getattr(cursor, "lastrowid", None)
    connection.close_if_health_check_failed()  # what Django's cursor does first (CONN_HEALTH_CHECKS)
    connection.ensure_connection()
    with connection.wrap_database_errors:
        if connection.vendor == "sqlite":
            cursor = connection.connection.cursor()
            sql = _qmark(sql)
        elif prepare:
            cursor = _server_binding_cursor(connection.connection)
        else:
            cursor = connection.connection.cursor()
        try:
            if prepare:
                cursor.execute(sql, params, prepare=True)
            else:
                cursor.execute(sql, params)
            return cursor.fetchall() if returning else getattr(cursor, "lastrowid", None)
        finally:
            cursor.close()


@functools.lru_cache(maxsize=64)
def _qmark(sql):
    """SQLite's driver takes ``?`` placeholders (Django's cursor converts them the same way)."""
    return sql.replace("%s", "?")


def _server_binding_cursor(driver_connection):
    import psycopg

    if driver_connection.prepare_threshold is None:
        # Django opens connections with psycopg's preparing off (None), which would ignore
        # prepare=True too. A threshold no query reaches lets the statements asked for be
        # prepared, and leaves every other query as it was: never prepared.
        driver_connection.prepare_threshold = NEVER_PREPARED_ALONE
    return psycopg.Cursor(driver_connection)


NEVER_PREPARED_ALONE = 2**62


@receiver(connection_created)
def tune_sqlite(sender, connection, **kwargs):
    """Let readers and writers overlap (WAL) and make writers wait rather than fail."""
    if connection.vendor != "sqlite" or connection.settings_dict["NAME"] in ("", ":memory:"):
        return
    if "mode=memory" in str(connection.settings_dict["NAME"]):
        return
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA busy_timeout")
        if cursor.fetchone()[0] < SQLITE_BUSY_TIMEOUT_MS:
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode")
        if cursor.fetchone()[0] != "wal":
            cursor.execute("PRAGMA journal_mode = WAL")


def close_broken_connections(ping=False):
    """Close this thread's connections that a job or a lost server left unusable.

    Like Django's ``close_old_connections`` but without ``CONN_MAX_AGE``: a worker thread keeps
    its connection for its whole life instead of reconnecting around every job. With ``ping``,
    each open connection is checked with a round trip (as ``CONN_HEALTH_CHECKS`` does per
    request), so that a session the server dropped while the thread waited does not fail the
    next job.
    """
    for connection in connections.all(initialized_only=True):
        if connection.connection is None:
            continue
        if connection.get_autocommit() != connection.settings_dict["AUTOCOMMIT"]:
            connection.close()  # a job left autocommit off: closing rolls its work back
        elif connection.errors_occurred or ping:
            if connection.is_usable():
                connection.errors_occurred = False
            else:
                connection.close()
