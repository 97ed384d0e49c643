"""The workload for the original ``quebec`` library (PyPI), run inside its own virtualenv.

    python quebec_pypi.py enqueue --database-url URL --single N --jobs N
    python quebec_pypi.py worker --database-url URL --threads 5

``enqueue`` creates the tables, empties them, times ``perform_later`` one job at a time and
``perform_all_later`` in chunks of 1,000, and leaves the bulk-enqueued jobs ready. ``worker``
works them off until SIGTERM. bench/run.py watches the jobs table to time the drain.
"""

import argparse
import json
import os
import sys
import time

os.environ.setdefault("RUST_LOG", "warn")  # its engine logs every start and registration at INFO
import quebec  # noqa: E402

CHUNK = 1000
TABLES = (
    "ready_executions",
    "claimed_executions",
    "failed_executions",
    "scheduled_executions",
    "blocked_executions",
    "processes",
    "jobs",
)


class NoopJob(quebec.BaseClass):
    def perform(self):
        pass


def report(key, value, text):
    print(text, flush=True)
    print("RESULT " + json.dumps({key: value}), flush=True)


def engine_url(database_url):
    """The URL for the engine, which creates a SQLite file only when told to (``mode=rwc``)."""
    if database_url.startswith("sqlite") and "mode=" not in database_url:
        return f"{database_url}?mode=rwc"
    return database_url


def empty_tables(database_url):
    """Delete every row the previous phase left, through a plain DB-API connection."""
    if database_url.startswith("sqlite"):
        import sqlite3

        connection = sqlite3.connect(database_url.removeprefix("sqlite:///").split("?")[0])  # sqlite:///<absolute path>
    else:
        import psycopg

        connection = psycopg.connect(database_url)
    with connection:
        for table in TABLES:
            connection.execute(f"DELETE FROM solid_queue_{table}")
    connection.close()


def enqueue(args):
    qc = quebec.Quebec(engine_url(args.database_url))
    qc.create_tables()
    qc.register_job_class(NoopJob)
    empty_tables(args.database_url)
    started = time.perf_counter()
    for _ in range(args.single):
        NoopJob.perform_later()
    rate = args.single / (time.perf_counter() - started)
    report("single", rate, f"single enqueue {rate:8.0f} jobs/s ({args.single} perform_later calls)")
    empty_tables(args.database_url)
    started = time.perf_counter()
    for first in range(0, args.jobs, CHUNK):
        qc.perform_all_later([NoopJob.build() for _ in range(min(CHUNK, args.jobs - first))])
    rate = args.jobs / (time.perf_counter() - started)
    report("bulk", rate, f"bulk enqueue   {rate:8.0f} jobs/s (perform_all_later, chunks of {CHUNK})")


def worker(args):
    qc = quebec.Quebec(engine_url(args.database_url), worker_threads=args.threads)
    qc.register_job_class(NoopJob)
    qc.run(spawn=["worker"])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["enqueue", "worker"])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--single", type=int, default=1000)
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--threads", type=int, default=5)
    args = parser.parse_args()
    {"enqueue": enqueue, "worker": worker}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
