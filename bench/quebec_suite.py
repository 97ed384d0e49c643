"""Quebec's half of bench/run.py: every measurement on one database, printed as it goes.

bench/run.py starts this script once per database, with the project's Python, and reads the
``RESULT {...}`` lines it prints (one JSON object each) among the human-readable ones. Run on
its own, it is a quick way to measure one database:

    python bench/quebec_suite.py --database-url postgres://postgres@127.0.0.1:5432/quebec_bench

The phases, in order (each starts from empty tables unless said otherwise):

1. single enqueue: ``NoopJob.perform_later()`` in a loop, one autocommit transaction each;
2. latency: one idle ``quebec_run --only worker`` process (5 threads): its RSS once it is
   registered and idle, then ``--latency-jobs`` ``StampJob``s enqueued one at a time with gaps
   of 20-50 ms; each job writes the time it starts, compared with the time ``perform_later``
   returned (the commit);
3. bulk enqueue: ``perform_all_later`` with chunks of 1,000, ``--jobs`` jobs;
4. drain, 1 process x 5 threads: a fresh worker process works off those jobs; the rate runs
   from the first job's ``finished_at`` to the last one's (process startup left out). Its RSS
   is read once they are all done. This is also the claim rate with no finished jobs;
5. drain, 2 processes x 5 threads: ``QUEBEC_SUPERVISOR=1`` with a queue.yml of
   ``processes: 2``, over ``--jobs`` freshly bulk-enqueued jobs;
6. claim rate with ``--finished`` finished jobs kept in the jobs table: the rows are added
   with one bulk ``INSERT ... SELECT`` (a template row crossed with a number series), then
   phase 4 runs again on top of them.

A server database must already exist; it is migrated and emptied, so use a throwaway one.
"""

import argparse
import json
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

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_core import (
    PYTHON_PATH,
    SETTINGS_MODULE,
    add_database_argument,
    bench_bulk,
    bench_single,
    database_url_or_sqlite,
    empty_quebec_tables,
    setup_django,
)
from server_cpu import DrainCpu, other_server_ids

THREADS = 5
FORK_PROCESSES = 2
DRAIN_TIMEOUT = 1800  # seconds
STARTUP_TIMEOUT = 60  # seconds for a worker to register
POLL = 0.2  # seconds between looks at the jobs table (the rates come from finished_at, not from this)


def report(key, value, text):
    """Print one figure for people and one ``RESULT`` line for run.py."""
    print(text, flush=True)
    print("RESULT " + json.dumps({key: value}), flush=True)


class QuebecRun:
    """A ``quebec_run --only worker`` process (a fork-mode supervisor when ``processes`` > 1)."""

    def __init__(self, database_url, workdir, name, processes=1):
        self.processes = processes
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": SETTINGS_MODULE,
            "DATABASE_URL": database_url,
            "PYTHONPATH": os.pathsep.join(PYTHON_PATH),
            "QUEBEC_PRESERVE_FINISHED_JOBS": "true",  # finished_at is what the rates are read from
            "QUEBEC_BENCH_STAMPS": str(workdir / "stamps.txt"),
        }
        if processes > 1:
            config = workdir / f"{name}.yml"
            config.write_text(f'workers:\n  - queues: "*"\n    threads: {THREADS}\n    processes: {processes}\n')
            env.update(QUEBEC_SUPERVISOR="1", QUEBEC_CONFIG=str(config))
        else:
            env["QUEBEC_WORKER_THREADS"] = str(THREADS)
        command = [sys.executable, "-m", "django", "quebec_run", "--only", "worker", "-v", "0"]
        self.log_path = workdir / f"{name}.log"
        with open(self.log_path, "wb") as log:
            self.popen = subprocess.Popen(command, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT)

    def check_alive(self):
        if self.popen.poll() is not None:
            raise RuntimeError(
                f"quebec_run exited early with code {self.popen.returncode}:\n{self.log_path.read_text()[-3000:]}"
            )

    def wait_until_registered(self):
        """Return once all its worker processes have registered (and so are polling)."""
        from quebec.models import Process

        deadline = time.monotonic() + STARTUP_TIMEOUT
        while Process.objects.filter(kind="Worker").count() < self.processes:
            self.check_alive()
            if time.monotonic() > deadline:
                raise RuntimeError(f"quebec_run did not register its workers within {STARTUP_TIMEOUT}s")
            time.sleep(POLL)

    def rss(self):
        """Resident memory of the worker process, in MiB."""
        return psutil.Process(self.popen.pid).memory_info().rss / 2**20

    def stop(self):
        """SIGTERM, then the exit code; a process that will not stop is killed."""
        self.popen.send_signal(signal.SIGTERM)
        try:
            return self.popen.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()
            raise RuntimeError("quebec_run did not stop within 60s of SIGTERM") from None

    def kill(self):
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait()


def wait_until_finished(worker, jobs, cpu=None):
    """Return once every one of ``jobs`` (a Job queryset) is finished; fail if the worker dies.
    ``cpu`` (a ``DrainCpu``) is shown the jobs finished at each look."""
    deadline = time.monotonic() + DRAIN_TIMEOUT
    total = jobs.count()
    while (done := jobs.filter(finished_at__isnull=False).count()) < total:
        if cpu is not None:
            cpu.look(done)
        worker.check_alive()
        if time.monotonic() > deadline:
            raise RuntimeError(f"jobs still unfinished after {DRAIN_TIMEOUT}s")
        time.sleep(POLL)
    if cpu is not None:
        cpu.look(done)


def bench_latency(database_url, workdir, count):
    """Latency from commit to start for ``count`` jobs sent one at a time to an idle worker."""
    from bench.benchapp.jobs import StampJob

    stamps = workdir / "stamps.txt"
    stamps.write_text("")
    worker = QuebecRun(database_url, workdir, "latency")
    try:
        worker.wait_until_registered()
        time.sleep(2)  # let startup settle: the first polls, imports on first use
        idle_rss = worker.rss()
        report("rss_idle", idle_rss, f"RSS idle worker      {idle_rss:8.1f} MiB (registered, no job run yet)")
        committed = {}
        for token in range(count):
            StampJob.perform_later(token)
            committed[token] = time.time()
            time.sleep(random.uniform(0.02, 0.05))
        deadline = time.monotonic() + 60
        while len(stamps.read_text().splitlines()) < count:
            worker.check_alive()
            if time.monotonic() > deadline:
                raise RuntimeError("latency jobs did not all start within 60s")
            time.sleep(POLL)
        worker.stop()
    finally:
        worker.kill()
    started = dict(line.split() for line in stamps.read_text().splitlines())
    latencies = sorted((float(started[str(token)]) - at) * 1000 for token, at in committed.items())
    figures = {
        "p50": statistics.median(latencies),
        "p95": latencies[max(0, round(len(latencies) * 0.95) - 1)],
        "max": latencies[-1],
    }
    report(
        "latency",
        figures,
        f"latency commit->start p50 {figures['p50']:.1f} ms, p95 {figures['p95']:.1f} ms, "
        f"max {figures['max']:.1f} ms ({count} jobs, one at a time)",
    )


def bench_drain(database_url, workdir, name, jobs, processes=1):
    """Work off ``jobs`` (ready, enqueued just before) with a fresh worker; returns jobs/s, RSS and
    the CPU per job of the worker and of its server connections (see ``DrainCpu``)."""
    from django.db import connection
    from django.db.models import Max, Min

    worker = QuebecRun(database_url, workdir, name, processes)
    servers = None if connection.vendor == "sqlite" else (lambda: other_server_ids(connection))
    cpu = DrainCpu(worker.popen.pid, servers)
    try:
        wait_until_finished(worker, jobs, cpu)
        rss = worker.rss()
        exit_code = worker.stop()
    finally:
        worker.kill()
    if exit_code != 0:
        raise RuntimeError(f"quebec_run exited with code {exit_code} after SIGTERM")
    span = jobs.aggregate(first=Min("finished_at"), last=Max("finished_at"))
    count = jobs.count()
    return (count - 1) / (span["last"] - span["first"]).total_seconds(), rss, cpu.per_job()


def report_drain_cpu(cpu):
    if not cpu:
        return
    server = "" if cpu["server_us"] is None else f", its server connections {cpu['server_us']:.0f} us"
    report("drain_cpu", cpu, f"drain CPU per job    worker {cpu['worker_us']:.0f} us{server}")


def enqueue_ready(count):
    """Bulk-enqueue ``count`` no-op jobs; returns them as a queryset, and the jobs/s."""
    from quebec.models import Job

    first_id = (Job.objects.order_by("-id").values_list("id", flat=True).first() or 0) + 1
    rate = bench_bulk(count)
    return Job.objects.filter(id__gte=first_id), rate


def add_finished_jobs(count):
    """Insert ``count`` finished jobs with one bulk statement, the way a busy queue keeps them."""
    from django.db import connection
    from django.utils import timezone

    from quebec.models import Job

    template = Job.objects.create(
        queue_name="default", class_name="bench.benchapp.jobs.NoopJob", executions=1, finished_at=timezone.now()
    )
    columns = [field.column for field in Job._meta.concrete_fields if not field.primary_key]
    vendor = connection.vendor
    if vendor == "postgresql":
        new_uuid, series = "gen_random_uuid()", "generate_series(1, %s) AS series(n)"
    elif vendor == "mysql":
        uuid_expression = "UUID()" if connection.features.has_native_uuid_field else "REPLACE(UUID(), '-', '')"
        new_uuid, series = uuid_expression, f"seq_1_to_{count}"  # MariaDB's Sequence engine
    else:
        new_uuid, series = "lower(hex(randomblob(16)))", "series"
    select = ", ".join(new_uuid if column == "active_job_id" else f"t.{column}" for column in columns)
    sql = f"INSERT INTO quebec_jobs ({', '.join(columns)}) SELECT {select} FROM quebec_jobs t, {series} WHERE t.id = %s"
    params = [count, template.pk] if vendor == "postgresql" else [template.pk]
    if vendor == "sqlite":
        sql = f"WITH RECURSIVE series(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM series WHERE n < {count}) {sql}"
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        template.delete()
        cursor.execute(
            {"postgresql": "VACUUM ANALYZE quebec_jobs", "mysql": "ANALYZE TABLE quebec_jobs", "sqlite": "ANALYZE"}[
                vendor
            ]
        )
        if vendor == "mysql":
            cursor.fetchall()
    print(f"inserted {count:,} finished jobs in {time.perf_counter() - started:.1f} s", flush=True)


def run_suite(args, database_url, workdir):
    setup_django(database_url)
    from django.db import connection

    print(
        f"== Quebec on {connection.vendor}: {args.single} single enqueues, {args.jobs} jobs per drain, "
        f"{args.finished:,} finished rows",
        flush=True,
    )
    empty_quebec_tables()
    rate = bench_single(args.single)
    report("single", rate, f"single enqueue       {rate:8.0f} jobs/s (perform_later, one transaction each)")
    empty_quebec_tables()
    bench_latency(database_url, workdir, args.latency_jobs)
    empty_quebec_tables()

    jobs, rate = enqueue_ready(args.jobs)
    report("bulk", rate, f"bulk enqueue         {rate:8.0f} jobs/s (perform_all_later, chunks of 1,000)")
    rate, rss, cpu = bench_drain(database_url, workdir, "drain", jobs)
    report("drain", rate, f"drain 1 process      {rate:8.0f} jobs/s (1 x {THREADS} threads, first to last finish)")
    report_drain_cpu(cpu)
    report("rss_drained", rss, f"RSS after drain      {rss:8.1f} MiB (after {args.jobs} jobs)")

    empty_quebec_tables()
    jobs, _ = enqueue_ready(args.jobs)
    rate, _, _ = bench_drain(database_url, workdir, "fork", jobs, processes=FORK_PROCESSES)
    report(
        "drain_fork", rate, f"drain 2 processes    {rate:8.0f} jobs/s (fork mode, {FORK_PROCESSES} x {THREADS} threads)"
    )

    empty_quebec_tables()
    add_finished_jobs(args.finished)
    jobs, _ = enqueue_ready(args.jobs)
    rate, _, _ = bench_drain(database_url, workdir, "claim", jobs)
    report("drain_big", rate, f"drain 1 process      {rate:8.0f} jobs/s (with {args.finished:,} finished jobs kept)")
    empty_quebec_tables()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_database_argument(parser)
    parser.add_argument("--single", type=int, default=5000, help="jobs enqueued one by one (default: 5000)")
    parser.add_argument("--jobs", type=int, default=20000, help="jobs per bulk enqueue and drain (default: 20000)")
    parser.add_argument("--latency-jobs", type=int, default=200, help="jobs for the latency (default: 200)")
    parser.add_argument(
        "--finished",
        type=int,
        default=1_000_000,
        help="finished jobs kept in the table for the last drain (default: 1000000)",
    )
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="quebec_bench_"))
    try:
        run_suite(args, database_url_or_sqlite(args.database_url, workdir), workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
