"""Drain rate of this checkout against another one, alternated in one sitting.

A change to the worker's loop is judged by the ratio of two drains measured side by side, on a
machine whose speed drifts from minute to minute: each round enqueues N no-op jobs and drains
them with a worker of the baseline checkout, and the same with this checkout's, and prints both
rates, the worker's CPU time per job, and their ratios; the median of the rounds' ratios is the
figure to quote, with the range beside it. The checkout that drains first alternates from round
to round (odd rounds the baseline, even rounds this one), so that whatever the first or second
drain of a pair gains or loses (the database's state after the other's, the machine's rhythm)
falls on both; use an even number of rounds.

Calibrate before trusting a ratio: two identical checkouts, run against each other on a shared
2-core machine, gave round ratios from 0.79 to 1.31 and medians of four rounds from 0.92 to
1.25. A change smaller than that needs more rounds, or a profile of the worker's CPU.

Jobs are enqueued with this checkout's code, so both checkouts must share the schema and the
way rows name job classes.

    git worktree add /tmp/baseline <commit>
    python bench/drain_ab.py --baseline /tmp/baseline --database-url postgres://postgres@127.0.0.1:5432/quebec_bench
    python bench/drain_ab.py --baseline /tmp/baseline --database-url mysql://root@127.0.0.1:3306/quebec_bench --rounds 6

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
    ROOT,
    add_database_argument,
    bench_bulk,
    bench_drain,
    check_drained,
    database_url_or_sqlite,
    empty_quebec_tables,
    setup_django,
)


def drain(jobs, database_url, workdir, root):
    empty_quebec_tables()
    bench_bulk(jobs)
    result = bench_drain(jobs, database_url, workdir, root)
    check_drained(jobs, result)
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_database_argument(parser)
    parser.add_argument("--baseline", type=Path, required=True, help="the checkout to compare with")
    parser.add_argument("--jobs", type=int, default=10000, help="no-op jobs per drain (default: 10000)")
    parser.add_argument("--rounds", type=int, default=4, help="baseline/this pairs, first in turn (default: 4)")
    args = parser.parse_args()
    if not (args.baseline / "quebec").is_dir():
        parser.error(f"--baseline {args.baseline} is not a Quebec checkout (it has no quebec/ directory)")
    workdir = Path(tempfile.mkdtemp(prefix="quebec_bench_"))
    try:
        database_url = database_url_or_sqlite(args.database_url, workdir)
        setup_django(database_url)
        from django.db import connection

        print(
            f"== {connection.vendor}: {args.jobs} no-op jobs per drain, 1 worker x 5 threads, baseline {args.baseline}",
            flush=True,
        )
        rate_ratios, cpu_ratios = [], []
        for round_number in range(1, args.rounds + 1):
            if round_number % 2:
                before = drain(args.jobs, database_url, workdir, args.baseline.resolve())
                after = drain(args.jobs, database_url, workdir, ROOT)
            else:
                after = drain(args.jobs, database_url, workdir, ROOT)
                before = drain(args.jobs, database_url, workdir, args.baseline.resolve())
            rate_ratios.append(after["drain"] / before["drain"])
            cpu_ratios.append(after["cpu_ms_per_job"] / before["cpu_ms_per_job"])
            first = "baseline first" if round_number % 2 else "this first"
            print(
                f"round {round_number} ({first}): baseline {before['drain']:7.0f} jobs/s {before['cpu_ms_per_job']:.3f} ms CPU/job"
                f" | this {after['drain']:7.0f} jobs/s {after['cpu_ms_per_job']:.3f} ms CPU/job"
                f" | rate x{rate_ratios[-1]:.3f}, CPU x{cpu_ratios[-1]:.3f}",
                flush=True,
            )
        empty_quebec_tables()
        print(
            f"median of {args.rounds} rounds: drain rate x{statistics.median(rate_ratios):.3f} "
            f"({min(rate_ratios):.2f}-{max(rate_ratios):.2f}), worker CPU per job "
            f"x{statistics.median(cpu_ratios):.3f} ({min(cpu_ratios):.2f}-{max(cpu_ratios):.2f}) (this / baseline)",
            flush=True,
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
