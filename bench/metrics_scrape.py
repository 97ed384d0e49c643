"""Benchmark a Prometheus scrape of ``metrics/`` on a big database: 1,000,000 finished jobs and
14 days of rollups (one row per minute for each of 18 queue and class groups: 362,880 rows).

The rows are written by the database itself in a few ``INSERT ... SELECT`` statements
(PostgreSQL's ``generate_series``, MariaDB's ``seq_0_to_N`` tables), beside a hundred ready
jobs in ten queues, a paused queue and live processes. Each scrape goes through Django's test
client with the monitoring token (the whole view: access check, queries, text); the median and
slowest of ``--repeat`` scrapes and the query count are printed, first after the dispatcher has
folded the minutes into their totals (how a running deployment is), then with nothing folded
(the worst case: a dispatcher that has not run since the rollups began).

    python bench/metrics_scrape.py --database-url postgres://postgres@127.0.0.1:5432/quebec_metrics_bench
    python bench/metrics_scrape.py --database-url mysql://root@127.0.0.1:3306/quebec_metrics_bench

The database must exist; its Quebec tables are emptied and refilled (use a throwaway database),
unless they hold exactly these rows from a previous run.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_core import setup_django  # noqa: E402

TOKEN = "bench-token"
DAYS = 14
QUEUES = ("default", "mail", "reports")
CLASSES = (
    "app.jobs.EmailJob",
    "app.jobs.ReportJob",
    "app.jobs.NoopJob",
    "app.jobs.SyncJob",
    "app.jobs.A",
    "app.jobs.B",
)
ROLLUP_ROWS = DAYS * 1440 * len(QUEUES) * len(CLASSES)
JOB_COLUMNS = (
    "queue_name, class_name, arguments, priority, active_job_id, executions, exception_executions, attempts, "
    "scheduled_at, finished_at, discarded_at, created_at, updated_at, cancel_requested_by"
)


def series(vendor, first, last):
    """A FROM item yielding ``i`` from ``first`` to ``last``."""
    if vendor == "postgresql":
        return f"generate_series({first}, {last}) AS s(i)"
    return f"(SELECT seq AS i FROM seq_{first}_to_{last}) AS s"


def fill(jobs):
    from django.db import connection

    from quebec.models import EXECUTION_STATES, Job, JobStat, JobStatTotal, Pause, Process

    vendor = connection.vendor
    if Job.objects.filter(finished_at__isnull=False).count() == jobs and JobStat.objects.count() == ROLLUP_ROWS:
        print(f"Reusing the {jobs:,} finished jobs and {ROLLUP_ROWS:,} rollup rows already there.", flush=True)
        return
    started = time.monotonic()
    for model in [*EXECUTION_STATES.values(), JobStat, JobStatTotal, Pause, Process]:
        model.objects.all().delete()
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE quebec_jobs CASCADE" if vendor == "postgresql" else "DELETE FROM quebec_jobs")
        cursor.execute(jobs_sql(vendor, int(jobs)))
        cursor.execute(rollups_sql(vendor))
        if vendor == "postgresql":
            cursor.execute("VACUUM ANALYZE quebec_jobs")
            cursor.execute("VACUUM ANALYZE quebec_job_stats")
        else:
            cursor.execute("ANALYZE TABLE quebec_jobs, quebec_job_stats")
    waiting = Job.objects.bulk_create(
        Job(queue_name=f"queue-{index % 10}", class_name=CLASSES[0]) for index in range(100)
    )
    from quebec.models import ReadyExecution

    ReadyExecution.objects.bulk_create(ReadyExecution(job=job, queue_name=job.queue_name) for job in waiting)
    Pause.objects.create(queue_name="queue-3")
    for kind in ("Worker", "Worker", "Dispatcher", "Scheduler", "Supervisor"):
        Process.objects.register(kind, f"bench-{kind}-{time.monotonic_ns()}")
    print(
        f"Inserted {jobs:,} finished jobs and {JobStat.objects.count():,} rollup rows in {time.monotonic() - started:.1f}s.",
        flush=True,
    )


def jobs_sql(vendor, jobs):
    """``jobs`` finished jobs spread over the last 14 days, across three queues and six classes."""
    if vendor == "postgresql":
        uuid, now, empty, attempts = "gen_random_uuid()", "now()", "'{}'::jsonb", "'[]'::jsonb"
        age = f"i * ({DAYS * 86400.0} / {jobs}) * interval '1 second'"
    else:
        uuid, now, empty, attempts = "uuid()", "UTC_TIMESTAMP(6)", "'{}'", "'[]'"
        age = f"INTERVAL (i * {DAYS * 86400.0} / {jobs}) SECOND"
    queue = f"ELT(1 + MOD(i, 3), {', '.join(repr(q) for q in QUEUES)})"
    klass = f"ELT(1 + MOD(i DIV 3, 6), {', '.join(repr(c) for c in CLASSES)})"
    if vendor == "postgresql":
        queue = f"(ARRAY[{', '.join(repr(q) for q in QUEUES)}])[1 + mod(i, 3)]"
        klass = f"(ARRAY[{', '.join(repr(c) for c in CLASSES)}])[1 + mod(i / 3, 6)]"
        uuid_value = uuid
    else:
        uuid_value = uuid
    return (
        f"INSERT INTO quebec_jobs ({JOB_COLUMNS}) SELECT {queue}, {klass}, {empty}, 0, {uuid_value}, 1, {empty}, "
        f"{attempts}, NULL, {now} - {age}, NULL, {now} - {age}, {now} - {age}, '' "
        f"FROM {series(vendor, 1, jobs)}"
    )


def rollups_sql(vendor):
    """A row per minute of the last 14 days for each of the 18 groups, as a busy system has."""
    minutes = DAYS * 1440 - 1
    if vendor == "postgresql":
        minute = "date_trunc('minute', now()) - i * interval '1 minute'"
    else:
        minute = "DATE_FORMAT(UTC_TIMESTAMP(), '%Y-%m-%d %H:%i:00') - INTERVAL i MINUTE"
    groups = " UNION ALL ".join(f"SELECT '{queue}' AS q, '{klass}' AS c" for queue in QUEUES for klass in CLASSES)
    return (
        "INSERT INTO quebec_job_stats (minute, queue_name, class_name, finished, failed, run_count, run_sum, "
        "run_b05, run_b09, wait_count, wait_sum, wait_b07) "
        f"SELECT {minute}, g.q, g.c, 3, MOD(i, 2), 4, 1.5, 3, 1, 4, 0.8, 4 "
        f"FROM {series(vendor, 0, minutes)} CROSS JOIN ({groups}) AS g"
    )


def scrape_times(repeat):
    from django.db import connection
    from django.test import Client

    client = Client(HTTP_HOST="127.0.0.1", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    response = client.get("/quebec/metrics/")  # warm-up
    assert response.status_code == 200, response.status_code
    queries = []
    with connection.execute_wrapper(lambda execute, sql, *rest: queries.append(sql) or execute(sql, *rest)):
        client.get("/quebec/metrics/")
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = client.get("/quebec/metrics/")
        times.append(time.perf_counter() - started)
    return times, len(queries), len(response.content.splitlines())


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database-url", default=os.environ.get("DATABASE_URL"), required=not os.environ.get("DATABASE_URL")
    )
    parser.add_argument("--jobs", type=int, default=1_000_000, help="finished jobs (default: 1,000,000)")
    parser.add_argument("--repeat", type=int, default=30, help="timed scrapes per case (default: 30)")
    args = parser.parse_args()
    os.environ["QUEBEC_MONITORING_TOKEN"] = TOKEN
    setup_django(args.database_url)
    from django.db import connection

    from quebec.lifecycle import stats
    from quebec.models import JobStatTotal

    if connection.vendor not in ("postgresql", "mysql"):
        parser.error("PostgreSQL or MariaDB: the rows are generated by the database")
    print(f"== {connection.vendor}: metrics/ with {args.jobs:,} finished jobs and {DAYS} days of rollups", flush=True)
    fill(args.jobs)
    for case in ("folded", "nothing folded"):
        if case == "folded":
            started = time.monotonic()
            stats.fold(connection.alias)
            print(f"(the first fold of {DAYS} days took {time.monotonic() - started:.2f}s)", flush=True)
        else:
            JobStatTotal.objects.all().delete()
        times, queries, lines = scrape_times(args.repeat)
        print(
            f"{case:>15}: median {statistics.median(times) * 1000:6.1f} ms, slowest {max(times) * 1000:6.1f} ms "
            f"over {args.repeat} scrapes; {queries} queries, {lines} lines",
            flush=True,
        )


if __name__ == "__main__":
    sys.exit(main())
