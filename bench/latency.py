"""Latency from enqueue to start, and what an idle worker costs the database, for one checkout.

One ``quebec_run --only worker`` process (5 threads) of the checkout at ``--root`` (this one by
default) runs against the database. Once it has registered and settled:

1. idle load: for ``--idle-seconds`` the worker has nothing to do; the round trips it sends
   (statements, commits, rollbacks, autocommit switches, counted inside the worker process by
   ``latency_settings.py``) are divided by the time. On MariaDB the server's ``Questions``
   counter is read as well, over the same window and over one as long before the worker
   started: it counts every client of the server, so it is only a cross-check on a quiet one;
2. latency: ``--jobs`` ``StampJob``s enqueued one at a time from this process, 20-50 ms apart;
   each writes the time it starts, compared with the time ``perform_later`` returned (its
   commit): p50, p95 and max.

    python bench/latency.py                                  # SQLite file in a temp dir
    python bench/latency.py --database-url mysql://root@127.0.0.1:3306/quebec_bench
    python bench/latency.py --database-url mysql://root@127.0.0.1:3306/quebec_bench --root /tmp/baseline

A server database must already exist; it is migrated and emptied.
"""

import argparse
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_core import (  # noqa: E402
    ROOT,
    THREADS,
    add_database_argument,
    database_url_or_sqlite,
    empty_quebec_tables,
    setup_django,
)

BENCH = Path(__file__).resolve().parent
STARTUP_TIMEOUT = 60  # seconds for the worker to register
SETTLE = 2.0  # seconds after registering: first polls, imports on first use


def start_worker(database_url, workdir, root):
    env = {
        **os.environ,
        # latency_settings is found in this checkout's bench/; the rest comes from ``root``.
        "DJANGO_SETTINGS_MODULE": "latency_settings",
        "DATABASE_URL": database_url,
        "PYTHONPATH": os.pathsep.join([str(root), str(root / "testproject"), str(BENCH)]),
        "QUEBEC_WORKER_THREADS": str(THREADS),
        "QUEBEC_BENCH_STAMPS": str(workdir / "stamps.txt"),
        "QUEBEC_BENCH_ROUND_TRIPS": str(workdir / "round_trips"),
    }
    command = [sys.executable, "-m", "django", "quebec_run", "--only", "worker", "-v", "0"]
    with open(workdir / "worker.log", "wb") as log:
        return subprocess.Popen(command, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT)


def check_alive(worker, workdir):
    if worker.poll() is not None:
        log = (workdir / "worker.log").read_text()[-3000:]
        raise RuntimeError(f"quebec_run exited early with code {worker.returncode}:\n{log}")


def wait_until_registered(worker, workdir):
    from quebec.models import Process

    deadline = time.monotonic() + STARTUP_TIMEOUT
    while not Process.objects.filter(kind="Worker").exists() or not (workdir / "round_trips").exists():
        check_alive(worker, workdir)
        if time.monotonic() > deadline:
            raise RuntimeError(f"the worker did not register within {STARTUP_TIMEOUT}s")
        time.sleep(0.1)


def round_trips(workdir):
    return int((workdir / "round_trips").read_text())


def server_questions():
    """MariaDB's count of statements from every client, or None elsewhere."""
    from django.db import connection

    if connection.vendor != "mysql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SHOW GLOBAL STATUS LIKE 'Questions'")
        return int(cursor.fetchone()[1])


def questions_per_second(seconds):
    before = server_questions()
    if before is None:
        return None
    time.sleep(seconds)
    return (server_questions() - before - 1) / seconds  # less the first SHOW's own count


def idle_load(workdir, seconds):
    """The worker's round trips per second while idle, and the server's Questions/s."""
    before_count, before_questions, started = round_trips(workdir), server_questions(), time.monotonic()
    time.sleep(seconds)
    elapsed = time.monotonic() - started
    count = round_trips(workdir) - before_count
    questions = None if before_questions is None else (server_questions() - before_questions - 1) / elapsed
    return count / elapsed, questions


def latencies(workdir, worker, count):
    from bench.benchapp.jobs import StampJob

    stamps = workdir / "stamps.txt"
    committed = {}
    for token in range(count):
        StampJob.perform_later(token)
        committed[token] = time.time()
        time.sleep(random.uniform(0.02, 0.05))
    deadline = time.monotonic() + 60
    while len(stamps.read_text().splitlines()) < count:
        check_alive(worker, workdir)
        if time.monotonic() > deadline:
            raise RuntimeError("the jobs did not all start within 60s")
        time.sleep(0.1)
    started = dict(line.split() for line in stamps.read_text().splitlines())
    return sorted((float(started[str(token)]) - at) * 1000 for token, at in committed.items())


def measure(database_url, workdir, root, jobs, idle_seconds):
    empty_quebec_tables()
    (workdir / "stamps.txt").write_text("")
    (workdir / "round_trips").unlink(missing_ok=True)
    background = questions_per_second(idle_seconds)
    worker = start_worker(database_url, workdir, root)
    try:
        wait_until_registered(worker, workdir)
        time.sleep(SETTLE)
        per_second, questions = idle_load(workdir, idle_seconds)
        found = latencies(workdir, worker, jobs)
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=60)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    return {
        "idle_round_trips": per_second,
        "questions": questions,
        "background_questions": background,
        "p50": statistics.median(found),
        "p95": found[max(0, round(len(found) * 0.95) - 1)],
        "max": found[-1],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_database_argument(parser)
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout whose worker runs (default: this one)")
    parser.add_argument("--jobs", type=int, default=200, help="jobs enqueued one at a time (default: 200)")
    parser.add_argument("--idle-seconds", type=float, default=10.0, help="idle window (default: 10)")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="quebec_latency_"))
    try:
        database_url = database_url_or_sqlite(args.database_url, workdir)
        setup_django(database_url)
        from django.db import connection

        figures = measure(database_url, workdir, args.root.resolve(), args.jobs, args.idle_seconds)
        print(f"== {connection.vendor}, worker of {args.root.resolve()}, 1 process x {THREADS} threads")
        print(f"idle worker: {figures['idle_round_trips']:.1f} round trips/s (counted in the worker)")
        if figures["questions"] is not None:
            print(
                f"server Questions/s: {figures['questions']:.1f} with the idle worker, "
                f"{figures['background_questions']:.1f} before it started (every client of the server)"
            )
        print(
            f"latency commit->start: p50 {figures['p50']:.1f} ms, p95 {figures['p95']:.1f} ms, "
            f"max {figures['max']:.1f} ms ({args.jobs} jobs, one at a time)"
        )
        empty_quebec_tables()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
