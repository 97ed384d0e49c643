"""Enqueue speed per database: single enqueues against the bare commit rate, bulk jobs/s, and
the memory of one large ``perform_all_later``.

Each round runs, in a fresh process per database: one-row autocommit INSERTs with the bare
driver (``commit_rate.py``), ``NoopJob.perform_later()`` one by one, and ``perform_all_later``
of 1,000 built jobs per call. It prints the rates, this process's CPU time per job (steadier
than wall time on a busy machine), on PostgreSQL the server backend's CPU time per job too (read
from /proc: a local server), and the single / bare ratio; the end gives the medians.
With ``--against CHECKOUT`` every round runs that checkout's Quebec too, alternating, so that
before and after are measured in one sitting (which goes first alternates too: use an even
number of rounds):

    python bench/enqueue_rate.py                                   # SQLite, PostgreSQL, MariaDB
    python bench/enqueue_rate.py --databases postgres --rounds 4 --against ../main
    python bench/enqueue_rate.py --memory 100000                   # peak memory of one call

``--memory N`` enqueues N jobs with a single ``perform_all_later`` (built by a generator) and N/10
the same way, each in a process of its own, and prints the peak resident memory each added: the
built jobs and their handles, and whatever the write keeps besides.

It uses the databases ``quebec_bench`` on the local PostgreSQL and MariaDB (``--postgres``,
``--mariadb``), which must exist; they are migrated and Quebec's tables emptied.
"""

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SINGLE, BULK, CHUNK = 1000, 10000, 1000


def measure(single, bulk):
    """Rates and CPU microseconds per job of this process, for the database it is set up on."""
    import quebec
    from bench.benchapp.jobs import NoopJob
    from bench.commit_rate import bare_insert_rate
    from bench_core import empty_quebec_tables

    empty_quebec_tables()
    for _ in range(100):  # warm up: imports, the connection, cached statements
        NoopJob.perform_later()
    quebec.perform_all_later([NoopJob.build() for _ in range(CHUNK)])
    empty_quebec_tables()
    server = server_cpu()
    bare = bare_insert_rate(single)
    bare_server = server_cpu() - server
    cpu, wall, server = time.process_time(), time.perf_counter(), server_cpu()
    for _ in range(single):
        NoopJob.perform_later()
    single_wall, single_cpu = time.perf_counter() - wall, time.process_time() - cpu
    single_server = server_cpu() - server
    empty_quebec_tables()
    cpu, wall, server = time.process_time(), time.perf_counter(), server_cpu()
    for first in range(0, bulk, CHUNK):
        quebec.perform_all_later([NoopJob.build() for _ in range(min(CHUNK, bulk - first))])
    bulk_wall, bulk_cpu = time.perf_counter() - wall, time.process_time() - cpu
    bulk_server = server_cpu() - server
    empty_quebec_tables()
    return {
        "bare": bare,
        "bare_server_us": bare_server / single * 1e6,
        "single": single / single_wall,
        "single_cpu_us": single_cpu / single * 1e6,
        "single_server_us": single_server / single * 1e6,
        "bulk": bulk / bulk_wall,
        "bulk_cpu_us": bulk_cpu / bulk * 1e6,
        "bulk_server_us": bulk_server / bulk * 1e6,
    }


def server_cpu():
    """CPU seconds of this connection's PostgreSQL backend (a local server); 0 elsewhere."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return 0.0
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        [(pid,)] = cursor.fetchall()
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:  # not on this machine
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def memory(jobs):
    """Peak RSS (MiB) this process gained by one ``perform_all_later`` of ``jobs`` no-op jobs."""
    import quebec
    from bench.benchapp.jobs import NoopJob
    from bench_core import empty_quebec_tables

    empty_quebec_tables()
    quebec.perform_all_later([NoopJob.build() for _ in range(CHUNK)])  # warm up
    empty_quebec_tables()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    handles = quebec.perform_all_later(NoopJob.build() for _ in range(jobs))
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert len(handles) == jobs and all(handle.id for handle in handles)
    empty_quebec_tables()
    return {"jobs": jobs, "peak_mib": (after - before) / 1024}


def child(args):
    """The measuring process: Django set up on one database, with the Quebec of ``args.root``."""
    root = Path(args.root).resolve()
    sys.path[:0] = [str(root), str(root / "bench")]
    from bench_core import setup_django

    workdir = Path(tempfile.mkdtemp(prefix="quebec_enqueue_"))
    try:
        setup_django(args.url or f"sqlite:///{workdir / 'bench.sqlite3'}")
        if args.memory:
            result = memory(args.memory)
        else:
            result = measure(args.single, args.bulk)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps(result))


def run_child(root, url, options):
    env = {**os.environ, "PYTHONPATH": str(Path(root).resolve())}
    command = [sys.executable, __file__, "--child", "--root", str(root), "--url", url or "", *options]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{root} on {url or 'sqlite'} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--databases", default="sqlite,postgres,mariadb")
    parser.add_argument("--postgres", default="postgres://postgres@127.0.0.1:5432/quebec_bench")
    parser.add_argument("--mariadb", default="mysql://root@127.0.0.1:3306/quebec_bench")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--single", type=int, default=SINGLE, help=f"jobs enqueued one by one (default {SINGLE})")
    parser.add_argument("--bulk", type=int, default=BULK, help=f"jobs enqueued in bulk (default {BULK})")
    parser.add_argument("--against", help="another checkout whose Quebec runs in alternate rounds")
    parser.add_argument("--memory", type=int, help="measure the memory of one perform_all_later of N jobs instead")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--root", default=str(ROOT), help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)
    urls = {"sqlite": None, "postgres": args.postgres, "mariadb": args.mariadb}
    checkouts = {"this": ROOT, **({"against": Path(args.against)} if args.against else {})}
    for database in args.databases.split(","):
        url = urls[database]
        if args.memory:
            for jobs in (args.memory // 10, args.memory):
                for name, root in checkouts.items():
                    result = run_child(root, url, ["--memory", str(jobs)])
                    print(
                        f"{database} {name}: perform_all_later of {jobs:,} jobs: peak RSS +{result['peak_mib']:.1f} MiB"
                    )
            continue
        results = {name: [] for name in checkouts}
        for round_number in range(1, args.rounds + 1):
            # The checkout measured first alternates, so that an order effect falls on both.
            order = list(checkouts.items())
            for name, root in order if round_number % 2 else order[::-1]:
                result = run_child(root, url, ["--single", str(args.single), "--bulk", str(args.bulk)])
                results[name].append(result)
                print(
                    f"{database} round {round_number} {name}: bare {result['bare']:6.0f}/s, "
                    f"single {result['single']:6.0f}/s ({result['single'] / result['bare']:.2f}x bare, "
                    f"{result['single_cpu_us']:5.0f} us CPU/job), bulk {result['bulk']:6.0f}/s "
                    f"({result['bulk_cpu_us']:4.1f} us CPU/job)"
                    + (
                        f"; server CPU/job: bare {result['bare_server_us']:.0f} us, single "
                        f"{result['single_server_us']:.0f} us, bulk {result['bulk_server_us']:.1f} us"
                        if result["single_server_us"]
                        else ""
                    ),
                    flush=True,
                )
        for name, rounds in results.items():
            ratio = statistics.median(result["single"] / result["bare"] for result in rounds)
            print(
                f"== {database} {name}: single/bare {ratio:.2f}x, single CPU "
                f"{statistics.median(r['single_cpu_us'] for r in rounds):.0f} us/job, bulk "
                f"{statistics.median(r['bulk'] for r in rounds):,.0f} jobs/s, bulk CPU "
                f"{statistics.median(r['bulk_cpu_us'] for r in rounds):.1f} us/job, server CPU single "
                f"{statistics.median(r['single_server_us'] for r in rounds):.0f} us/job and bulk "
                f"{statistics.median(r['bulk_server_us'] for r in rounds):.1f} us/job (medians of {len(rounds)})",
                flush=True,
            )


if __name__ == "__main__":
    sys.exit(main())
