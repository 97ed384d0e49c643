"""Benchmark the bulk enqueue of unique jobs against the same jobs without a unique key.

N jobs (default 10,000), each with its own key, are enqueued with ``perform_all_later`` in
calls of ``--chunk`` builds (default 1,000; 0: one call), once without and once with a unique
key, alternated over ``--rounds`` rounds in one sitting; the tables are emptied before each. It
prints the best rate of each side and their ratio (unique / plain). A last phase enqueues the
same N unique jobs again over the held keys: every one a duplicate, nothing written.

    python bench/unique_enqueue.py --database-url postgres://postgres@127.0.0.1:5432/quebec_bench
    python bench/unique_enqueue.py --database-url mysql://root@127.0.0.1:3306/quebec_bench --rounds 5

A server database must already exist.
"""

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_core import (  # noqa: E402
    add_database_argument,
    database_url_or_sqlite,
    empty_quebec_tables,
    setup_django,
)


def enqueue(job_class, n, chunk):
    """Jobs per second enqueued in bulk; the handles of the last call."""
    import quebec

    chunk = chunk or n
    started = time.perf_counter()
    for first in range(0, n, chunk):
        indexes = range(first, min(first + chunk, n))
        handles = quebec.perform_all_later([job_class.build(f"key-{index}") for index in indexes])
    return n / (time.perf_counter() - started), handles


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_database_argument(parser)
    parser.add_argument("--jobs", type=int, default=10_000, help="jobs per phase (default: 10000)")
    parser.add_argument("--chunk", type=int, default=1000, help="builds per perform_all_later (default: 1000)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of plain then unique (default: 3)")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="quebec_unique_"))
    try:
        setup_django(database_url_or_sqlite(args.database_url, workdir))
        from django.db import connection

        from bench.benchapp.jobs import KeyNoopJob, UniqueNoopJob
        from quebec.models import Job

        rates = {"plain": [], "unique": []}
        for _ in range(args.rounds):
            for phase, job_class in (("plain", KeyNoopJob), ("unique", UniqueNoopJob)):
                empty_quebec_tables()
                rates[phase].append(enqueue(job_class, args.jobs, args.chunk)[0])
                assert Job.objects.count() == args.jobs
        duplicates, handles = enqueue(UniqueNoopJob, args.jobs, args.chunk)
        assert Job.objects.count() == args.jobs and all(handle.duplicate for handle in handles)
        empty_quebec_tables()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    plain, unique = max(rates["plain"]), max(rates["unique"])
    print(
        f"Bulk enqueue of {args.jobs} jobs on {connection.vendor}, calls of {args.chunk or args.jobs}, "
        f"best of {args.rounds}:"
    )
    rounds = {phase: ", ".join(f"{rate:.0f}" for rate in phase_rates) for phase, phase_rates in rates.items()}
    print(f"  without a unique key     {plain:8.0f} jobs/s   (rounds: {rounds['plain']})")
    print(f"  unique, every key free   {unique:8.0f} jobs/s   (rounds: {rounds['unique']})")
    print(f"  unique / plain           {unique / plain:8.2f}x")
    print(f"  all duplicates           {duplicates:8.0f} jobs/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
