"""CPU time the database server spends on given connections, read from /proc (Linux, local server).

PostgreSQL serves each connection with a backend process (its pid is ``pg_backend_pid()``), and
MariaDB with a thread of ``mariadbd`` (its id is ``information_schema.PROCESSLIST.TID``); both
show up as ``/proc/<id>/stat`` with their user and system CPU time. Counting only the
connections to the benchmark's own database leaves out whatever else the shared server does, and
also the server's own background work (PostgreSQL's WAL writer, checkpointer and autovacuum,
InnoDB's purge and flush threads): the figures are a floor of what a job costs the server.
"""

import os
from pathlib import Path

import psutil

TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


def cpu_seconds(server_id):
    """User plus system CPU seconds of a server process or thread; None once it is gone."""
    try:
        stat = _stat_path(server_id).read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (name) ": state is fields[0]
    return (int(fields[11]) + int(fields[12])) / TICKS_PER_SECOND


def _stat_path(server_id):
    """/proc/<id>/stat sums every thread of a process, even for a thread's id: a thread's own
    figures are under its process's task/ directory."""
    status = Path(f"/proc/{server_id}/status").read_text()
    process_id = int(status.split("\nTgid:", 1)[1].split()[0])
    if process_id == server_id:
        return Path(f"/proc/{server_id}/stat")
    return Path(f"/proc/{process_id}/task/{server_id}/stat")


def own_server_id(connection):
    """The backend pid (PostgreSQL) or server thread id (MariaDB) serving ``connection``."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT pg_backend_pid()")
        else:
            cursor.execute("SELECT TID FROM information_schema.PROCESSLIST WHERE ID = CONNECTION_ID()")
        return cursor.fetchone()[0]


def other_server_ids(connection, vendor=None):
    """Server ids of every other client connection to ``connection``'s database: a Django
    connection, or a bare driver's with its ``vendor`` ("postgresql" or "mysql") given."""
    with connection.cursor() as cursor:
        if (vendor or connection.vendor) == "postgresql":
            cursor.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
            )
        else:
            cursor.execute(
                "SELECT TID FROM information_schema.PROCESSLIST WHERE DB = DATABASE() AND ID <> CONNECTION_ID()"
            )
        return [row[0] for row in cursor.fetchall()]


class Meter:
    """CPU time of a changing set of server connections over a window.

    ``start`` reads the connections there now; a connection first seen by a later ``sample``
    counts from its birth (its connection setup included). A connection that closes keeps the
    last figure read for it, so sample often enough and once more at the end.
    """

    def __init__(self, list_ids):
        self._list_ids = list_ids  # () -> the server ids to watch now
        self.base = {}
        self.last = {}
        self.most_at_once = 0

    def start(self):
        self.base = {server_id: cpu for server_id in self._list_ids() if (cpu := cpu_seconds(server_id)) is not None}
        self.last = dict(self.base)
        return self

    def sample(self):
        ids = self._list_ids()
        self.most_at_once = max(self.most_at_once, len(ids))
        for server_id in ids:
            if (cpu := cpu_seconds(server_id)) is not None:
                self.last[server_id] = cpu

    def seconds(self):
        return sum(cpu - self.base.get(server_id, 0.0) for server_id, cpu in self.last.items())

    def connections_seen(self):
        return len(set(self.last) - set(self.base))


class DrainCpu:
    """CPU time per job of a drain: the worker process's (its children included) and its
    database connections' on the server, over the jobs finished between the first ``look``
    that saw a job finished (startup left out) and the last ``look``.

    ``list_server_ids()`` gives the server ids to count (see ``Meter``); without it only the
    worker is counted (SQLite runs inside the worker).
    """

    def __init__(self, worker_pid, list_server_ids=None):
        self._worker = psutil.Process(worker_pid)
        self._meter = Meter(list_server_ids) if list_server_ids else None
        self._first = None  # (jobs done, worker CPU seconds) at the first look past a finish
        self._last = None

    def look(self, done):
        """Called between polls with the jobs finished so far."""
        if done <= 0:
            return
        worker = self._worker_seconds()
        if self._first is None:
            self._first = (done, worker)
            if self._meter:
                self._meter.start()
        elif self._meter:
            self._meter.sample()
        self._last = (done, worker)

    def per_job(self):
        """{"worker_us": ..., "server_us": ...} per job (server_us None without a server), or {}
        when too few jobs finished between two looks."""
        if self._first is None or self._last[0] - self._first[0] < 100:
            return {}
        jobs = self._last[0] - self._first[0]
        return {
            "worker_us": (self._last[1] - self._first[1]) * 1e6 / jobs,
            "server_us": self._meter.seconds() * 1e6 / jobs if self._meter else None,
        }

    def _worker_seconds(self):
        total = 0.0
        for process in (self._worker, *self._worker.children(recursive=True)):
            try:
                times = process.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += times.user + times.system
        return total
