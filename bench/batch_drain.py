"""Benchmark no-op jobs in one batch against the same jobs without a batch, in one sitting.

Each round enqueues N no-op jobs (default 10,000) in bulk and drains them with one real
``quebec_run --only worker`` process with 5 threads, then the same N jobs enqueued inside one
``quebec.batch()`` (whose members are counted as they end, one UPDATE of the batch's row per
recorded batch of ends), alternating; it prints both drain rates, the worker's CPU time per job
and their ratios per round, and the median ratio (batched / plain), the figure to quote.

    python bench/batch_drain.py --database-url postgres://postgres@127.0.0.1:5432/quebec_bench
    python bench/batch_drain.py --database-url mysql://root@127.0.0.1:3306/quebec_bench --rounds 5

A server database must already exist; the script empties Quebec's tables before each drain.
"""

import argparse
import shutil
import statistics
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


def enqueue(n, batched):
    """N no-op jobs in bulk, inside one batch or not; returns the batch (or None)."""
    import contextlib

    import quebec
    from bench.benchapp.jobs import NoopJob

    with quebec.batch(description="bench") if batched else contextlib.nullcontext() as batch:
        for first in range(0, n, CHUNK):
            quebec.perform_all_later([NoopJob.build() for _ in range(first, min(first + CHUNK, n))])
    return batch


def drain(n, batched, database_url, workdir):
    empty_quebec_tables()
    batch = enqueue(n, batched)
    result = bench_drain(n, database_url, workdir)
    check_drained(n, result)
    if batch is not None:
        batch.refresh()
        if (batch.status, batch.completed_jobs, batch.pending_jobs) != ("succeeded", n, 0):
            raise RuntimeError(
                f"the batch did not count its {n} members: {batch.status}, {batch.completed_jobs} completed"
            )
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_database_argument(parser)
    parser.add_argument("--jobs", type=int, default=10_000, help="jobs per drain (default: 10000)")
    parser.add_argument("--rounds", type=int, default=3, help="plain/batched pairs (default: 3)")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="quebec_batch_"))
    try:
        database_url = database_url_or_sqlite(args.database_url, workdir)
        setup_django(database_url)
        from django.db import connection

        print(f"== {connection.vendor}: {args.jobs} no-op jobs per drain, 1 worker x 5 threads", flush=True)
        rate_ratios, cpu_ratios = [], []
        for round_number in range(1, args.rounds + 1):
            plain = drain(args.jobs, False, database_url, workdir)
            batched = drain(args.jobs, True, database_url, workdir)
            rate_ratios.append(batched["drain"] / plain["drain"])
            cpu_ratios.append(batched["cpu_ms_per_job"] / plain["cpu_ms_per_job"])
            print(
                f"round {round_number}: plain {plain['drain']:7.0f} jobs/s {plain['cpu_ms_per_job']:.3f} ms CPU/job"
                f" | batch {batched['drain']:7.0f} jobs/s {batched['cpu_ms_per_job']:.3f} ms CPU/job"
                f" | rate x{rate_ratios[-1]:.3f}, CPU x{cpu_ratios[-1]:.3f}",
                flush=True,
            )
        empty_quebec_tables()
        print(
            f"median of {args.rounds} rounds: drain rate x{statistics.median(rate_ratios):.3f}, "
            f"worker CPU per job x{statistics.median(cpu_ratios):.3f} (batched / plain)",
            flush=True,
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
