"""Benchmark jobs with a concurrency key against the same jobs without one, in one sitting.

N no-op jobs (default 10,000) are enqueued in bulk, then drained by one real ``quebec_run
--only worker`` process with 5 threads; then N no-op jobs spread over K concurrency keys
(default 1,000, limit 1 each: one ready and the rest blocked per key) are enqueued and drained
the same way. It prints both drain rates and their ratio (keyed / plain).

    python bench/keyed_drain.py --database-url postgres://postgres@127.0.0.1:5432/quebec_bench
    python bench/keyed_drain.py --database-url mysql://root@127.0.0.1:3306/quebec_bench --jobs 10000 --keys 1000

A server database must already exist; the script empties Quebec's tables before each phase.
"""

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_core import (  # noqa: E402
    CHUNK,
    add_database_argument,
    bench_drain,
    check_drained,
    database_url_or_sqlite,
    empty_quebec_tables,
    setup_django,
)


def enqueue(n, keys):
    import quebec
    from bench.benchapp.jobs import KeyedNoopJob, NoopJob

    for first in range(0, n, CHUNK):
        indexes = range(first, min(first + CHUNK, n))
        if keys:
            quebec.perform_all_later([KeyedNoopJob.build(f"key-{index % keys}") for index in indexes])
        else:
            quebec.perform_all_later([NoopJob.build() for _ in indexes])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_database_argument(parser)
    parser.add_argument("--jobs", type=int, default=10_000, help="jobs per phase (default: 10000)")
    parser.add_argument("--keys", type=int, default=1000, help="concurrency keys of the keyed phase (default: 1000)")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="quebec_keyed_"))
    try:
        database_url = database_url_or_sqlite(args.database_url, workdir)
        setup_django(database_url)
        from django.db import connection

        rates = {}
        for phase, keys in (("plain", 0), ("keyed", args.keys)):
            empty_quebec_tables()
            enqueue(args.jobs, keys)
            result = bench_drain(args.jobs, database_url, workdir)
            check_drained(args.jobs, result)
            rates[phase] = result["drain"]
        empty_quebec_tables()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"Drain of {args.jobs} no-op jobs on {connection.vendor}, 1 process x 5 threads:")
    print(f"  without a concurrency key   {rates['plain']:8.0f} jobs/s")
    print(f"  over {args.keys} keys (limit 1)  {rates['keyed']:8.0f} jobs/s")
    print(f"  keyed / plain               {rates['keyed'] / rates['plain']:8.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
