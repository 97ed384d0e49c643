"""How close single enqueues come to the database's own commit rate.

Each ``perform_later`` outside a transaction is one commit, so no single enqueue can beat a
one-row autocommit ``INSERT`` sent with the bare driver. This measures both in one run, on one
connection, and prints their ratio:

    python bench/commit_rate.py --database-url postgres://postgres@127.0.0.1:5432/quebec_bench
    python bench/commit_rate.py                     # SQLite file in a temp dir

A server database must already exist; it is migrated and Quebec's tables are emptied. The
script creates and drops a table of its own, ``quebec_bench_commit_rate``.
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
        enqueue = bench_single(args.count)
        empty_quebec_tables()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"{connection.vendor}: bare one-row autocommit INSERT {bare:8.0f} rows/s")
    print(f"{connection.vendor}: perform_later                  {enqueue:8.0f} jobs/s ({enqueue / bare:.2f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
