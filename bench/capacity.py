"""The database's own CPU time per job, and what it says about how far workers scale out.

On PostgreSQL or MariaDB (a local server: CPU time is read from /proc, see ``server_cpu.py``),
for no-op jobs:

1. single enqueue: ``NoopJob.perform_later()`` in a loop; the CPU of this process's server
   connection, per job; beside it, that of a bare one-row autocommit ``INSERT``
   (``commit_rate.py``), the floor of a commit;
2. bulk enqueue: ``quebec.perform_all_later()`` in chunks of 1,000; the same;
3. drain: one real ``quebec_run --only worker`` process (5 threads) works off the bulk-enqueued
   jobs; the CPU of every server connection of that process from its start (claim, start and
   finish: on PostgreSQL the finish of a batch and the next claim are one statement; its
   registration too, a few milliseconds), per job, with the worker process's own CPU per job
   from its first finish (its startup left out), and how many connections the worker opened.

Each figure is the median of ``--rounds`` rounds (3), printed with its lowest and highest: on
a shared machine the CPU a statement takes moves with the load (caches, spinning locks). From
those it prints the capacity model: jobs/s one database core sustains (enqueue plus
drain), and how many fully busy worker cores it takes to keep one database core busy.

    python bench/capacity.py --database-url postgres://postgres@127.0.0.1:5432/quebec_bench
    python bench/capacity.py --database-url mysql://root@127.0.0.1:3306/quebec_bench --jobs 20000

The database must exist; the script migrates it and empties Quebec's tables.
"""

import argparse
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_core import (  # noqa: E402
    THREADS,
    bench_bulk,
    bench_single,
    check_drained,
    empty_quebec_tables,
    setup_django,
    start_worker,
)
from bench.commit_rate import bare_insert_rate  # noqa: E402
from bench.server_cpu import Meter, cpu_seconds, other_server_ids, own_server_id  # noqa: E402

DRAIN_TIMEOUT = 600  # seconds
SAMPLE_EVERY = 0.1  # seconds between reads of the worker's server connections


def enqueue_cost(enqueue, n):
    """Server and client CPU milliseconds per job of ``enqueue(n)`` on this process's connection."""
    from django.db import connection

    server_id = own_server_id(connection)
    server, client = cpu_seconds(server_id), time.process_time()
    started = time.perf_counter()
    enqueue(n)
    wall = time.perf_counter() - started
    return {
        "server_ms": (cpu_seconds(server_id) - server) * 1000 / n,
        "client_ms": (time.process_time() - client) * 1000 / n,
        "rate": n / wall,
    }


def drain_cost(n, database_url, workdir):
    """Drain ``n`` ready jobs with one worker process; server CPU of its connections per job."""
    from django.db import connection

    from quebec.models import Job

    meter = Meter(lambda: other_server_ids(connection)).start()
    started = time.monotonic()
    process = start_worker(database_url, workdir)
    worker = psutil.Process(process.pid)
    worker_base = None  # (CPU seconds, jobs finished) once the first job finished: startup left out
    try:
        while (unfinished := Job.objects.filter(finished_at__isnull=True).count()) > 0:
            meter.sample()
            if worker_base is None and unfinished < n:
                worker_base = (sum(worker.cpu_times()[:2]), n - unfinished)
            if process.poll() is not None or time.monotonic() - started > DRAIN_TIMEOUT:
                raise RuntimeError("the worker exited or the drain timed out")
            time.sleep(SAMPLE_EVERY)
        meter.sample()
        worker_cpu = sum(worker.cpu_times()[:2]) - worker_base[0]
        wall = time.monotonic() - started
        process.send_signal(signal.SIGTERM)
        exit_code = process.wait(timeout=60)
    except BaseException:
        process.kill()
        process.wait()
        raise
    return {
        "server_ms": meter.seconds() * 1000 / n,
        "worker_ms": worker_cpu * 1000 / (n - worker_base[1]),
        "rate": n / wall,
        "connections": meter.connections_seen(),
        "exit_code": exit_code,
    }


def measure(database_url, n, single):
    workdir = Path(tempfile.mkdtemp(prefix="quebec_capacity_"))
    try:
        setup_django(database_url)
        from django.db import connection

        empty_quebec_tables()
        bench_single(100)  # warm up: imports, the connection, cached statements
        empty_quebec_tables()
        results = {"database": connection.vendor, "jobs": n, "bare": enqueue_cost(bare_insert_rate, single)}
        results["single"] = enqueue_cost(bench_single, single)
        empty_quebec_tables()
        results["bulk"] = enqueue_cost(bench_bulk, n)
        results["drain"] = drain_cost(n, database_url, workdir)
        check_drained(n, results["drain"])
        empty_quebec_tables()
        return results
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def median_round(rounds):
    """Each figure's median over the rounds, with its lowest and highest as ``(low, high)``."""
    merged = {"database": rounds[0]["database"], "jobs": rounds[0]["jobs"], "rounds": len(rounds)}
    for phase in ("bare", "single", "bulk", "drain"):
        merged[phase] = {
            key: statistics.median(row[phase][key] for row in rounds) for key in rounds[0][phase] if key != "exit_code"
        }
        merged[phase]["range"] = {
            key: (min(row[phase][key] for row in rounds), max(row[phase][key] for row in rounds))
            for key in ("server_ms", "rate")
        }
    return merged


def capacity(results):
    """The model: jobs/s per database core, and worker cores per database core."""
    drain = results["drain"]
    per_job = {kind: results[kind]["server_ms"] + drain["server_ms"] for kind in ("single", "bulk")}
    return {
        "jobs_per_core_single": 1000 / per_job["single"],
        "jobs_per_core_bulk": 1000 / per_job["bulk"],
        "drain_jobs_per_core": 1000 / drain["server_ms"],
        # A worker core that does nothing but no-op jobs keeps this much of a database core busy.
        "db_cores_per_worker_core": drain["server_ms"] / drain["worker_ms"],
    }


def spread(phase):
    low, high = phase["range"]["server_ms"]
    return f"server {phase['server_ms']:.3f} ms/job ({low:.3f}-{high:.3f})"


def report(results):
    bare, single, bulk, drain = results["bare"], results["single"], results["bulk"], results["drain"]
    model = capacity(results)
    print(
        f"Quebec capacity: {results['jobs']} no-op jobs on {results['database']}, "
        f"median of {results['rounds']} rounds (lowest-highest); server CPU from /proc"
    )
    print(f"  bare INSERT      {spread(bare)}   (one-row autocommit INSERT with the driver: the floor)")
    print(f"  single enqueue   {spread(single)}   client {single['client_ms']:.3f} ms/job")
    print(f"  bulk enqueue     {spread(bulk)}   client {bulk['client_ms']:.3f} ms/job")
    print(
        f"  drain (claim, start, finish; 1 process x {THREADS} threads)   {spread(drain)}   "
        f"worker {drain['worker_ms']:.3f} ms/job   {drain['rate']:.0f} jobs/s (wall, startup included)   "
        f"{drain['connections']:.0f} server connections"
    )
    print(
        f"  one database core: {model['jobs_per_core_single']:.0f} jobs/s enqueued one by one and drained, "
        f"{model['jobs_per_core_bulk']:.0f} jobs/s bulk-enqueued and drained, "
        f"{model['drain_jobs_per_core']:.0f} jobs/s drained alone"
    )
    print(f"  a fully busy worker core keeps {model['db_cores_per_worker_core']:.2f} database cores busy")
    print(f"  load average at the end {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True, help="a PostgreSQL or MariaDB database on this machine")
    parser.add_argument("--jobs", type=int, default=10_000, help="jobs bulk-enqueued and drained (10,000)")
    parser.add_argument("--single", type=int, default=2_000, help="jobs enqueued one by one (2,000)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; each figure is their median (3)")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON line")
    args = parser.parse_args()
    if args.database_url.startswith("sqlite"):
        parser.error("SQLite runs inside the client process: there is no server CPU to read")
    results = median_round([measure(args.database_url, args.jobs, args.single) for _ in range(args.rounds)])
    if args.json:
        print(json.dumps({**results, "model": capacity(results)}))
    else:
        report(results)


if __name__ == "__main__":
    main()
