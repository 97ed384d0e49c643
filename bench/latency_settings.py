"""Settings for bench/latency.py's worker: the bench's settings, and a count of its round trips.

Every statement, commit, rollback and autocommit switch the process sends is counted (all of
them are round trips on MariaDB, statements on SQLite), and the count is written to the file
named by ``QUEBEC_BENCH_ROUND_TRIPS`` a few times a second. Found by name on PYTHONPATH, so a
baseline checkout's worker is counted the same way.
"""

import os
import threading

from django.db.backends.signals import connection_created

from bench.bench_settings import *  # noqa: F403

_lock = threading.Lock()
_count = [0]


def _counted(function):
    def call(*args, **kwargs):
        with _lock:
            _count[0] += 1
        return function(*args, **kwargs)

    return call


def _count_statement(execute, sql, params, many, context):
    with _lock:
        _count[0] += 1
    return execute(sql, params, many, context)


def _count_connection(sender, connection, **kwargs):
    if not getattr(connection, "_bench_counted", False):
        connection._bench_counted = True
        connection.execute_wrappers.append(_count_statement)
        for name in ("_commit", "_rollback", "_set_autocommit"):
            setattr(connection, name, _counted(getattr(connection, name)))


def _write_count(path):
    stop = threading.Event()
    while not stop.wait(0.1):
        with _lock:
            count = _count[0]
        with open(path + ".tmp", "w") as file:
            file.write(str(count))
        os.replace(path + ".tmp", path)


connection_created.connect(_count_connection, weak=False)
if os.environ.get("QUEBEC_BENCH_ROUND_TRIPS"):
    threading.Thread(target=_write_count, args=(os.environ["QUEBEC_BENCH_ROUND_TRIPS"],), daemon=True).start()
