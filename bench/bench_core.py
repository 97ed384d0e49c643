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
    """Delete every job and process row: execution tables first, for their foreign keys."""
    from quebec.models import EXECUTION_STATES, Job, Process

    for model in [*EXECUTION_STATES.values(), Job, Process]:
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


def start_worker(database_url, workdir):
    """A ``quebec_run --only worker`` process with ``THREADS`` threads, logging to a file."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": SETTINGS_MODULE,
        "DATABASE_URL": database_url,
        "PYTHONPATH": os.pathsep.join(PYTHON_PATH),
        "QUEBEC_WORKER_THREADS": str(THREADS),
        "QUEBEC_PRESERVE_FINISHED_JOBS": "true",  # finished_at is what the drain rate is read from
    }
    command = [sys.executable, "-m", "django", "quebec_run", "--only", "worker", "-v", "0"]
    with open(workdir / "quebec_run.log", "wb") as log:
        return subprocess.Popen(command, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT)


def wait_until_drained(process):
    """Return once every job is finished; fail if the worker dies or time runs out."""
    from quebec.models import Job

    deadline = time.monotonic() + DRAIN_TIMEOUT
    while Job.objects.filter(finished_at__isnull=True).exists():
        if process.poll() is not None:
            raise RuntimeError(f"quebec_run exited early with code {process.returncode}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"jobs still unfinished after {DRAIN_TIMEOUT}s")
        time.sleep(0.05)


def bench_drain(n, database_url, workdir):
    """Run one worker process over the ``n`` ready jobs; returns the drain figures."""
    from django.db.models import Max, Min

    from quebec.models import Job

    started = time.monotonic()
    process = start_worker(database_url, workdir)
    try:
        wait_until_drained(process)
        wall = time.monotonic() - started
        process.send_signal(signal.SIGTERM)
        exit_code = process.wait(timeout=60)
    except BaseException:
        process.kill()
        process.wait()
        raise
    span = Job.objects.aggregate(first=Min("finished_at"), last=Max("finished_at"))
    busy = (span["last"] - span["first"]).total_seconds()
    return {"drain": (n - 1) / busy, "drain_seconds": busy, "drain_wall": n / wall, "wall_seconds": wall,
            "exit_code": exit_code}


def check_drained(n, result, workdir):
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
