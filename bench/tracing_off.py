"""What OpenTelemetry's hooks (``quebec/tracing.py``) cost an enqueue and a run when it is not set
up, measured against the same work with the hooks cut out, alternated in one sitting.

Three modes per round: ``cut`` (``tracing.enqueueing`` and ``tracing.running`` return at once,
as if Quebec had no tracing), ``absent`` (the check as it runs without the ``[otel]`` extra) and
``no provider`` (the API installed, no tracer provider set: the usual case). Each mode
bulk-enqueues N no-op jobs (chunks of 1,000), enqueues 1,000 one at a time and runs 5,000 with
``perform_now``; it prints this process's CPU time per job (steadier than wall time on a busy
machine) and the medians of the ratios to ``cut``. Each round starts with another mode.

    python bench/tracing_off.py --database-url postgres://postgres@127.0.0.1:5432/quebec_bench
    python bench/tracing_off.py --database-url mysql://root@127.0.0.1:3306/quebec_bench --rounds 5

On a busy machine, count instructions instead: the difference between two counts of one mode
(say --runs 2000 and --runs 4000) is the cost of the extra jobs, startup left out.

    valgrind --tool=callgrind --callgrind-out-file=/dev/null python bench/tracing_off.py --only cut \
        --jobs 1000 --single 200 --runs 2000

A server database must already exist; the script empties Quebec's tables between phases. The
worker's side of a drain is measured against a checkout without the hooks by bench/drain_ab.py.
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

MODES = ("cut", "absent", "no provider")


def cpu_per_job(work, count):
    started = time.process_time()
    work()
    return (time.process_time() - started) / count * 1e6


def measure(mode, jobs, single_jobs, runs):
    """CPU microseconds per job: bulk enqueue, single enqueue, perform_now."""
    import quebec
    from bench.benchapp.jobs import NoopJob
    from quebec import tracing

    real = tracing.enqueueing, tracing.running, tracing.trace
    if mode == "cut":
        tracing.enqueueing = tracing.running = lambda *args, **kwargs: tracing.NOT_TRACED
    elif mode == "absent":
        tracing.trace = None
    try:
        empty_quebec_tables()

        def bulk():
            for first in range(0, jobs, CHUNK):
                quebec.perform_all_later([NoopJob.build() for _ in range(min(CHUNK, jobs - first))])

        def single():
            for _ in range(single_jobs):
                NoopJob.perform_later()

        def run():
            for _ in range(runs):
                NoopJob.perform_now()

        return cpu_per_job(bulk, jobs), cpu_per_job(single, single_jobs), cpu_per_job(run, runs)
    finally:
        tracing.enqueueing, tracing.running, tracing.trace = real


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_database_argument(parser)
    parser.add_argument("--jobs", type=int, default=10000, help="jobs per bulk enqueue (default: 10000)")
    parser.add_argument("--single", type=int, default=1000, help="jobs enqueued one by one (default: 1000)")
    parser.add_argument("--runs", type=int, default=5000, help="perform_now calls (default: 5000)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the three modes (default: 3)")
    parser.add_argument("--only", choices=MODES, help="one mode once (to count instructions under callgrind)")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="quebec_bench_"))
    try:
        setup_django(database_url_or_sqlite(args.database_url, workdir))
        from django.db import connection

        print(f"== {connection.vendor}: {args.jobs} in bulk, {args.single} one by one, {args.runs} perform_now")
        if args.only:
            print(args.only, measure(args.only, args.jobs, args.single, args.runs), flush=True)
            return
        ratios = {mode: [] for mode in MODES[1:]}
        for round_number in range(1, args.rounds + 1):
            shift = round_number % len(MODES)  # each mode goes first in turn: drift favours none
            order = MODES[shift:] + MODES[:shift]
            figures = {mode: measure(mode, args.jobs, args.single, args.runs) for mode in order}
            for mode in MODES[1:]:
                ratios[mode].append([on / off for on, off in zip(figures[mode], figures["cut"], strict=True)])
            print(
                f"round {round_number}: "
                + "; ".join(f"{mode} " + " / ".join(f"{us:.1f}" for us in figures[mode]) for mode in MODES)
                + " us CPU/job (bulk / single / perform_now)",
                flush=True,
            )
        empty_quebec_tables()
        for mode in MODES[1:]:
            medians = [statistics.median(column) for column in zip(*ratios[mode], strict=True)]
            print(
                f"median CPU per job, {mode} / cut: bulk x{medians[0]:.3f}, single x{medians[1]:.3f}, "
                f"perform_now x{medians[2]:.3f}",
                flush=True,
            )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
