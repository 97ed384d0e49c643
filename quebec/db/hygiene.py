"""Undo what a job left on its thread's database connections before the thread's next job.

A worker thread keeps its connections from job to job, so what a job leaves on them reaches the
jobs after it: a transaction opened with a raw ``BEGIN`` (its writes, and those of every later
job on the thread, never committed), autocommit turned off, a PostgreSQL advisory lock, ``SET``
value or temporary table, a MariaDB ``GET_LOCK``. ``reset_after_job`` rolls back a transaction
left open (the worker fails the job for it), resets the session state each database lets us
reset within the one round trip per job, and closes a connection whose state it cannot tell;
Django opens a fresh one on next use. Behind a transaction pooler (``transaction_pooled``) the
session is not the job's: the server connection goes to other clients between transactions, and
resetting it would undo their settings or drop their locks, so only a transaction left open is
rolled back there.
"""

import logging
import threading
import time

from django.db import connections

from quebec.db.connection import close_broken_connections, transaction_pooled

logger = logging.getLogger("quebec.worker")

# libpq's (and so psycopg's) transaction status: idle, command running, in a transaction, in a
# failed transaction, connection bad.
PG_IDLE, PG_ACTIVE, PG_INTRANS, PG_INERROR = 0, 1, 2, 3
# One round trip, sent as a simple query (no parameters): session advisory locks, every SET
# value (back to the server's, user's and connection's defaults, which keep Django's startup
# options) and temporary tables; then Django's time zone again, which RESET ALL undid. Not
# DISCARD ALL: it also drops prepared statements under psycopg's feet. RESET ALL leaves ROLE
# alone, and with it Django's ``assume_role``.
PG_RESET = "SELECT pg_advisory_unlock_all(); RESET ALL; DISCARD TEMP"
_pg_reset_sql = {}  # time zone name -> PG_RESET followed by the SET TIME ZONE for it
# MariaDB tells whether a transaction is open and gives back every GET_LOCK in one statement.
# MySQL has no @@in_transaction: there, only a transaction left by turning autocommit off is seen.
MARIADB_CHECK = "SELECT @@in_transaction, RELEASE_ALL_LOCKS()"
MYSQL_CHECK = "SELECT 0, RELEASE_ALL_LOCKS()"
# How long after a reset, itself a round trip, a thread's connections count as alive without a
# ping before the next job. In a drain a thread takes its next job at once, so the reset is the
# one round trip per job the ping used to be; a thread that waited longer pings, so that a
# session the server dropped meanwhile (a restart) is replaced before the job, not during it.
FRESH_FOR = 0.05

_checked = threading.local()


def ping_before_job():
    """Close this thread's connections the server dropped while it waited, unless the reset
    after the previous job talked to the database less than FRESH_FOR seconds ago."""
    if time.monotonic() >= getattr(_checked, "until", 0.0):
        close_broken_connections(ping=True)


def reset_after_job():
    """Clean this thread's open connections; returns the aliases of those the job left in a
    transaction (rolled back now, with whatever the job wrote in it)."""
    left_open = []
    for connection in connections.all(initialized_only=True):
        if connection.connection is None:
            continue
        try:
            if _clean(connection):
                left_open.append(connection.alias)
        except Exception:
            logger.warning(
                "Closing database connection %r: its state after a job is unknown", connection.alias, exc_info=True
            )
            discard(connection)
    _checked.until = time.monotonic() + FRESH_FOR
    return left_open


def discard(connection):
    """Close ``connection`` whatever its state; Django opens a fresh one when it is next used."""
    # A job that entered atomic() without leaving it: close() would keep the dead connection
    # for a rollback that never comes, so forget the block first.
    connection.in_atomic_block = False
    connection.atomic_blocks, connection.savepoint_ids = [], []
    connection.needs_rollback = connection.closed_in_transaction = False
    try:
        connection.close()
    except Exception:
        connection.connection = None


def _clean(connection):
    if connection.in_atomic_block or connection.get_autocommit() != connection.settings_dict["AUTOCOMMIT"]:
        # Left inside atomic() or with set_autocommit(False): closing rolls the transaction back.
        discard(connection)
        return True
    vendor = connection.vendor
    if vendor == "postgresql":
        return _clean_postgresql(connection)
    if vendor == "mysql":
        return _clean_mysql(connection)
    if vendor == "sqlite":
        return _rollback_if(connection, connection.connection.in_transaction)
    return False


def _rollback_if(connection, left_open):
    if left_open:
        connection.connection.rollback()
    return left_open


def _clean_postgresql(connection):
    raw = connection.connection
    status = raw.info.transaction_status if hasattr(raw, "info") else raw.get_transaction_status()
    if status not in (PG_IDLE, PG_INTRANS, PG_INERROR):
        discard(connection)  # a command still running, or a lost connection
        return False
    left_open = _rollback_if(connection, status != PG_IDLE)
    if transaction_pooled(connection):
        return left_open
    cursor = raw.cursor()  # the driver's: Django's cursor may bind parameters server-side
    try:
        cursor.execute(_pg_reset(connection))
    finally:
        cursor.close()
    return left_open


def _pg_reset(connection):
    zone = connection.timezone_name
    if zone not in _pg_reset_sql:
        set_zone = connection.ops.compose_sql(connection.ops.set_time_zone_sql(), [zone]) if zone else ""
        _pg_reset_sql[zone] = f"{PG_RESET}; {set_zone}" if zone else PG_RESET
    return _pg_reset_sql[zone]


def _clean_mysql(connection):
    raw = connection.connection
    with connection.cursor() as cursor:
        cursor.execute(MARIADB_CHECK if connection.mysql_is_mariadb else MYSQL_CHECK)
        in_transaction = bool(cursor.fetchone()[0])
    if not raw.get_autocommit():  # SET autocommit = 0: every later statement would be in a transaction
        discard(connection)
        return True
    return _rollback_if(connection, in_transaction)
