"""Benchmark Quebec's core: how fast no-op jobs are enqueued and worked off.

For N no-op jobs (default 5,000) on one database it prints three rates:

1. single enqueue: ``NoopJob.perform_later()`` in a loop, each job its own autocommit transaction;
2. bulk enqueue: ``quebec.perform_all_later()`` with chunks of 1,000 built jobs;
3. drain: one real ``quebec_run --only worker`` process with 5 threads works off the N ready
   jobs left by step 2. The rate runs from the first job's ``finished_at`` to the last one's,
   so process startup is left out; the wall-clock rate from process start until no job is
   unfinished (startup included) is printed beside it. The process is then stopped with
   SIGTERM and must exit with code 0.

Run it from anywhere with the project's Python:

    python bench/bench_core.py                              # SQLite file in a temp dir
    python bench/bench_core.py --database-url postgres://postgres@127.0.0.1:5432/quebec_bench
    DATABASE_URL=mysql://root@127.0.0.1:3306/quebec_bench python bench/bench_core.py
    python bench/bench_core.py --all                        # SQLite, PostgreSQL, MySQL: a table

A server database must already exist; the script migrates it and empties Quebec's tables
before each phase, so do not point it at a database whose jobs you want to keep.
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON_PATH = [str(ROOT), str(ROOT / "testproject")]
SETTINGS_MODULE = "bench.bench_settings"
CHUNK = 1000
THREADS = 5
DRAIN_TIMEOUT = 600  # seconds
ALL_DATABASES = {
    "sqlite": None,  # a file in a temp dir
    "postgres": "postgres://postgres@127.0.0.1:5432/quebec_bench",
    "mysql": "mysql://root@127.0.0.1:3306/quebec_bench",
}


def setup_django(database_url):
    """Configure Django for ``database_url`` and bring the schema up to date."""
    os.environ["DATABASE_URL"] = database_url
    os.environ["DJANGO_SETTINGS_MODULE"] = SETTINGS_MODULE
    sys.path[:0] = PYTHON_PATH
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def empty_quebec_tables():
    """Delete every job, process and limit row: execution tables first, for their foreign keys.
    (A semaphore left from an interrupted run would count slots that no job holds.)"""
    from quebec.models import EXECUTION_STATES, Batch, Job, Process, RateLimitStart, Semaphore, UniqueKey

    for model in [*EXECUTION_STATES.values(), Job, Batch, Process, Semaphore, RateLimitStart, UniqueKey]:
        model.objects.all().delete()


def bench_single(n):
    """Jobs per second enqueued one by one, each in its own transaction."""
    from bench.benchapp.jobs import NoopJob

    started = time.perf_counter()
    for _ in range(n):
        NoopJob.perform_later()
    return n / (time.perf_counter() - started)


def bench_bulk(n):
    """Jobs per second enqueued with ``perform_all_later`` in chunks of ``CHUNK``."""
    import quebec
    from bench.benchapp.jobs import NoopJob

    started = time.perf_counter()
    for first in range(0, n, CHUNK):
        quebec.perform_all_later([NoopJob.build() for _ in range(min(CHUNK, n - first))])
    return n / (time.perf_counter() - started)


def start_worker(database_url, workdir, root=ROOT, env=None):
    """A ``quebec_run --only worker`` process with ``THREADS`` threads, logging to a file; it runs
    the Quebec of the checkout at ``root`` (this one by default), with ``env`` added to its
    environment (settings as ``QUEBEC_<KEY>``)."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": SETTINGS_MODULE,
        "DATABASE_URL": database_url,
        "PYTHONPATH": os.pathsep.join([str(root), str(root / "testproject")]),
        "QUEBEC_WORKER_THREADS": str(THREADS),
        "QUEBEC_PRESERVE_FINISHED_JOBS": "true",  # finished_at is what the drain rate is read from
        **(env or {}),
    }
    command = [sys.executable, "-m", "django", "quebec_run", "--only", "worker", "-v", "0"]
    with open(workdir / "quebec_run.log", "wb") as log:
        return subprocess.Popen(command, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT)


def wait_until_drained(process, on_first_finish=None):
    """Return once every job is finished; fail if the worker dies or time runs out.
    ``on_first_finish()`` is called once the first job has finished (the worker is working)."""
    from quebec.models import Job

    deadline = time.monotonic() + DRAIN_TIMEOUT
    while Job.objects.filter(finished_at__isnull=True).exists():
        if on_first_finish is not None and Job.objects.filter(finished_at__isnull=False).exists():
            on_first_finish()
            on_first_finish = None
        if process.poll() is not None:
            raise RuntimeError(f"quebec_run exited early with code {process.returncode}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"jobs still unfinished after {DRAIN_TIMEOUT}s")
        time.sleep(0.05)


def bench_drain(n, database_url, workdir, root=ROOT, env=None, server_cpu=None):
    """Run one worker process (of the checkout at ``root``) over the ``n`` ready jobs; returns
    the drain figures, with the worker's CPU time per job from its first finish to its last.
    ``server_cpu()``, if given, returns {server process id: CPU seconds}: its growth over the
    same span is ``server_cpu_ms_per_job``."""
    import psutil
    from django.db.models import Max, Min

    from quebec.models import Job

    started = time.monotonic()
    process = start_worker(database_url, workdir, root, env)
    worker = psutil.Process(process.pid)
    cpu_at_start = []
    server_at_start = []

    def first_finish():
        cpu_at_start.append(_cpu_seconds(worker))
        if server_cpu is not None:
            server_at_start.append(server_cpu())

    try:
        wait_until_drained(process, first_finish)
        cpu = _cpu_seconds(worker) - (cpu_at_start or [0.0])[0]
        if server_cpu is not None:
            before = (server_at_start or [{}])[0]
            server = sum(seconds - before.get(pid, 0.0) for pid, seconds in server_cpu().items())
        wall = time.monotonic() - started
        process.send_signal(signal.SIGTERM)
        exit_code = process.wait(timeout=60)
    except BaseException:
        process.kill()
        process.wait()
        raise
    span = Job.objects.aggregate(first=Min("finished_at"), last=Max("finished_at"))
    busy = (span["last"] - span["first"]).total_seconds()
    return {
        "drain": (n - 1) / busy,
        "drain_seconds": busy,
        "drain_wall": n / wall,
        "wall_seconds": wall,
        "cpu_ms_per_job": cpu * 1000 / n,
        "server_cpu_ms_per_job": server * 1000 / n if server_cpu is not None else None,
        "exit_code": exit_code,
    }


def _cpu_seconds(process):
    times = process.cpu_times()
    return times.user + times.system


def check_drained(n, result):
    """Raise unless all ``n`` jobs finished without failure and quebec_run exited cleanly."""
    from quebec.models import FailedExecution, Job

    problems = []
    if (finished := Job.objects.finished().count()) != n:
        problems.append(f"{finished} of {n} jobs finished")
    if failed := FailedExecution.objects.count():
        problems.append(f"{failed} jobs failed")
    if result["exit_code"] != 0:
        problems.append(f"quebec_run exited with code {result['exit_code']}")
    if problems:
        raise RuntimeError("; ".join(problems))


def add_database_argument(parser):
    """``--database-url``, as every Quebec bench script takes it (see ``database_url_or_sqlite``)."""
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL"),
        help="database to use (default: DATABASE_URL, else a SQLite file in a temp dir)",
    )


def database_url_or_sqlite(database_url, workdir):
    """``database_url``, or when it is None a SQLite file in ``workdir``."""
    return database_url or f"sqlite:///{workdir / 'bench.sqlite3'}"


def run_benchmark(n, database_url):
    """All three phases on ``database_url`` (a SQLite file in a temp dir when None)."""
    workdir = Path(tempfile.mkdtemp(prefix="quebec_bench_"))
    try:
        database_url = database_url_or_sqlite(database_url, workdir)
        setup_django(database_url)
        from django.db import connection

        empty_quebec_tables()
        results = {"database": connection.vendor, "jobs": n, "single": bench_single(n)}
        empty_quebec_tables()
        results["bulk"] = bench_bulk(n)
        results.update(bench_drain(n, database_url, workdir))
        check_drained(n, results)
        empty_quebec_tables()
        return results
    except Exception:
        log = workdir / "quebec_run.log"
        if log.exists():
            print(f"--- quebec_run output ---\n{log.read_text()[-4000:]}", file=sys.stderr)
        raise
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def run_all(n):
    """Run the benchmark for each of ``ALL_DATABASES`` in a fresh process; returns their results."""
    env = {name: value for name, value in os.environ.items() if name != "DATABASE_URL"}
    rows = []
    for name, url in ALL_DATABASES.items():
        command = [sys.executable, __file__, "--jobs", str(n), "--json"]
        if url:
            command += ["--database-url", url]
        print(f"running {name} ...", file=sys.stderr, flush=True)
        done = subprocess.run(command, env=env, stdout=subprocess.PIPE, text=True)
        lines = done.stdout.strip().splitlines()
        rows.append({**(json.loads(lines[-1]) if done.returncode == 0 else {}), "database": name})
    return rows


def print_results(results):
    print(f"Quebec core benchmark: {results['jobs']} no-op jobs on {results['database']}")
    print(f"  single enqueue  {results['single']:8.0f} jobs/s  (perform_later, one transaction each)")
    print(f"  bulk enqueue    {results['bulk']:8.0f} jobs/s  (perform_all_later, chunks of {CHUNK})")
    print(
        f"  drain           {results['drain']:8.0f} jobs/s  (first to last finish: "
        f"{results['drain_seconds']:.2f} s, 1 process x {THREADS} threads)"
    )
    print(
        f"  drain wall      {results['drain_wall']:8.0f} jobs/s  (process start to last finish: "
        f"{results['wall_seconds']:.2f} s)"
    )
    print(f"  quebec_run exit code after SIGTERM: {results['exit_code']}")


def print_table(rows):
    header = ("database", "single/s", "bulk/s", "drain/s", "drain wall/s", "wall s")
    keys = ("single", "bulk", "drain", "drain_wall", "wall_seconds")
    print(f"{header[0]:<10}" + "".join(f"{title:>14}" for title in header[1:]))
    for row in rows:
        if "single" not in row:
            print(f"{row['database']:<10}{'FAILED (see output above)':>28}")
            continue
        cells = [f"{row[key]:14.2f}" if key == "wall_seconds" else f"{row[key]:14.0f}" for key in keys]
        print(f"{row['database']:<10}" + "".join(cells))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_database_argument(parser)
    parser.add_argument("--all", action="store_true", help="run on SQLite, PostgreSQL and MySQL in turn")
    parser.add_argument("--jobs", type=int, default=5000, help="number of jobs (default: 5000)")
    parser.add_argument("--json", action="store_true", help="print the results as one JSON line")
    args = parser.parse_args()
    if args.jobs < 2:
        parser.error("--jobs must be at least 2 (the drain rate runs from the first finish to the last)")
    if args.all:
        rows = run_all(args.jobs)
        print_table(rows)
        return 0 if all("single" in row for row in rows) else 1
    results = run_benchmark(args.jobs, args.database_url)
    if args.json:
        print(json.dumps(results))
    else:
        print_results(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
