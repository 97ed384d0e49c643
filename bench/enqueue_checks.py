"""What the checks of ``quebec/storable.py`` cost an enqueue, measured against the same enqueue
with them switched off, alternated in one sitting.

Each round bulk-enqueues N no-op jobs with arguments (``perform_all_later``, chunks of 1,000)
and enqueues 1,000 one at a time, once with the checks and once without; it prints this
process's CPU time per job for each (the checks cost CPU, not round trips, and CPU time is
steadier than wall time on a busy machine) and the medians of their ratios.

    python bench/enqueue_checks.py --database-url postgres://postgres@127.0.0.1:5432/quebec_bench
    python bench/enqueue_checks.py --database-url mysql://root@127.0.0.1:3306/quebec_bench --rounds 5

A server database must already exist; the script empties Quebec's tables between phases.
"""

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_core import (  # noqa: E402
    CHUNK,
    add_database_argument,
    database_url_or_sqlite,
    empty_quebec_tables,
    setup_django,
)

SINGLE = 1000


def enqueue(jobs, checked):
    """CPU microseconds per job for a bulk enqueue of ``jobs`` and for ``SINGLE`` single ones."""
    import quebec
    from bench.benchapp.jobs import NoopJob
    from quebec import enqueue as enqueueing, storable

    enqueueing.check_jobs = storable.check_jobs if checked else (lambda pending_jobs, using: None)
    try:
        empty_quebec_tables()
        started = time.process_time()
        for first in range(0, jobs, CHUNK):
            count = min(CHUNK, jobs - first)
            quebec.perform_all_later([NoopJob.build(first + i, note="an ordinary argument") for i in range(count)])
        bulk = (time.process_time() - started) / jobs * 1e6
        started = time.process_time()
        for index in range(SINGLE):
            NoopJob.perform_later(index, note="an ordinary argument")
        single = (time.process_time() - started) / SINGLE * 1e6
    finally:
        enqueueing.check_jobs = storable.check_jobs
    return bulk, single


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_database_argument(parser)
    parser.add_argument("--jobs", type=int, default=10000, help="jobs per bulk enqueue (default: 10000)")
    parser.add_argument("--rounds", type=int, default=3, help="unchecked/checked pairs (default: 3)")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="quebec_bench_"))
    try:
        setup_django(database_url_or_sqlite(args.database_url, workdir))
        from django.db import connection

        print(f"== {connection.vendor}: {args.jobs} jobs in bulk, {SINGLE} one by one, per round", flush=True)
        bulk_ratios, single_ratios = [], []
        for round_number in range(1, args.rounds + 1):
            bulk_off, single_off = enqueue(args.jobs, checked=False)
            bulk_on, single_on = enqueue(args.jobs, checked=True)
            bulk_ratios.append(bulk_on / bulk_off)
            single_ratios.append(single_on / single_off)
            print(
                f"round {round_number}: bulk {bulk_off:6.1f} -> {bulk_on:6.1f} us CPU/job (x{bulk_ratios[-1]:.3f}), "
                f"single {single_off:6.1f} -> {single_on:6.1f} us CPU/job (x{single_ratios[-1]:.3f})",
                flush=True,
            )
        empty_quebec_tables()
        print(
            f"median CPU per job with the checks / without: bulk x{statistics.median(bulk_ratios):.3f}, "
            f"single x{statistics.median(single_ratios):.3f}",
            flush=True,
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
