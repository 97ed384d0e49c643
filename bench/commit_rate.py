"""How close single enqueues come to the database's own commit rate.

Each ``perform_later`` outside a transaction is one commit, so no single enqueue can beat a
one-row autocommit ``INSERT`` sent with the bare driver. This measures both in one run, on one
connection, and prints their ratio:

    python bench/commit_rate.py --database-url postgres://postgres@127.0.0.1:5432/quebec_bench
    python bench/commit_rate.py                     # SQLite file in a temp dir

A server database must already exist; it is migrated and Quebec's tables are emptied. The
script creates and drops a table of its own, ``quebec_bench_commit_rate``.

Between the two it replays the statements one ``perform_later`` sent (its job row, its ready
row, the wake-up and the transaction around them, as the database received them) with the bare
driver: the rate no Python around the enqueue could beat. Its ratio to the bare INSERT is what
the enqueue's writes themselves cost against a one-row commit.
"""

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_core import add_database_argument, bench_single, database_url_or_sqlite, empty_quebec_tables, setup_django

TABLE = "quebec_bench_commit_rate"


def bare_insert_rate(count):
    """One-row autocommit INSERTs on the driver's own connection, without Django; rows/s."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {TABLE}")
        cursor.execute(f"CREATE TABLE {TABLE} (id integer PRIMARY KEY, label varchar(50))")
    placeholder = "?" if connection.vendor == "sqlite" else "%s"
    sql = f"INSERT INTO {TABLE} (id, label) VALUES ({placeholder}, {placeholder})"
    driver_cursor = connection.connection.cursor()  # Django keeps the connection in autocommit
    try:
        started = time.perf_counter()
        for index in range(count):
            driver_cursor.execute(sql, (index, "row"))
        return count / (time.perf_counter() - started)
    finally:
        driver_cursor.close()
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE {TABLE}")


def replayed_enqueue_rate(count):
    """The statements of one ``perform_later``, as logged by Django (values inlined), sent again
    ``count`` times with the bare driver, each enqueue one transaction as Quebec makes it;
    enqueues/s. A ready row names its job by the id the replay's own INSERT got."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from bench.benchapp.jobs import NoopJob

    with CaptureQueriesContext(connection) as captured:
        handle = NoopJob.perform_later()
    statements = [query["sql"] for query in captured]
    if connection.vendor == "sqlite":  # BEGIN IMMEDIATE, the job, its ready row, COMMIT
        statements = [sql.replace(f"({handle.id}, ", "(last_insert_rowid(), ") for sql in statements]
    cursor = connection.connection.cursor()
    try:
        started = time.perf_counter()
        for _ in range(count):
            for sql in statements:
                cursor.execute(sql)
                while True:  # MySQL's statements sent together: each one's result is read
                    if cursor.description:
                        cursor.fetchall()
                    if connection.vendor != "mysql" or not cursor.nextset():
                        break
        return count / (time.perf_counter() - started)
    finally:
        cursor.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_database_argument(parser)
    parser.add_argument("--count", type=int, default=2000, help="rows and jobs (default: 2000)")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="quebec_commit_"))
    try:
        setup_django(database_url_or_sqlite(args.database_url, workdir))
        from django.db import connection

        empty_quebec_tables()
        bench_single(min(200, args.count))  # warm up: imports, the connection, cached statements
        empty_quebec_tables()
        bare = bare_insert_rate(args.count)
        replayed = replayed_enqueue_rate(args.count)
        empty_quebec_tables()
        enqueue = bench_single(args.count)
        empty_quebec_tables()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"{connection.vendor}: bare one-row autocommit INSERT {bare:8.0f} rows/s")
    print(f"{connection.vendor}: an enqueue's statements alone  {replayed:8.0f} jobs/s ({replayed / bare:.2f}x)")
    print(f"{connection.vendor}: perform_later                  {enqueue:8.0f} jobs/s ({enqueue / bare:.2f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
