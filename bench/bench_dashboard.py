"""Benchmark the dashboard on a big jobs table: how long the overview and the finished-jobs
pages take to render with 1,000,000 finished jobs in PostgreSQL.

The jobs are inserted with one ``INSERT ... SELECT FROM generate_series`` (about half a minute),
spread over the last seven days so that every chart range has work in it, across three
classes and three queues, next to a few ready and failed jobs and a live worker row. Each page
is then fetched through Django's test client (the full admin stack: middleware, session,
templates) several times; the median and the slowest time, and the page's query count, are
printed.

    python bench/bench_dashboard.py                           # quebec_dash_bench on localhost
    python bench/bench_dashboard.py --database-url postgres://postgres@127.0.0.1:5432/other
    python bench/bench_dashboard.py --jobs 200000 --repeat 10

The database is created if missing and refilled when it does not hold exactly ``--jobs``
finished jobs: use a throwaway database.
"""

import argparse
import os
import statistics
import sys
import time
import warnings
from pathlib import Path
from urllib.parse import quote, urlparse

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/quebec_dash_bench"
PAGES = {
    "overview": "/admin/quebec/",
    "finished jobs": "/admin/quebec/job/?status=finished",
    "finished jobs, page 150": "/admin/quebec/job/?status=finished&p=150",
    "finished jobs, one class and queue": "/admin/quebec/job/?status=finished&class_name=ReportJob&queue_name=mail",
    "finished jobs, past 7 days filter": "/admin/quebec/job/?status=finished&finished_at__gte={week_ago}",
    "all jobs, search by id": "/admin/quebec/job/?q=500000",
    "live refresh (counts + tables)": "/admin/quebec/job/live/?fragments=queues,failures,workers",
    "chart, last hour": "/admin/quebec/job/throughput/?range=hour",
    "chart, last day": "/admin/quebec/job/throughput/?range=day",
    "chart, last week": "/admin/quebec/job/throughput/?range=week",
}

FILL_SQL = """
INSERT INTO quebec_jobs (queue_name, class_name, arguments, priority, active_job_id, executions,
                         exception_executions, attempts, scheduled_at, finished_at, discarded_at, created_at,
                         updated_at)
SELECT (ARRAY['default', 'mail', 'reports'])[1 + mod(i, 3)],
       (ARRAY['EmailJob', 'ReportJob', 'NoopJob'])[1 + mod(i / 3, 3)],
       jsonb_build_object('args', jsonb_build_array('user' || i || '@example.com'), 'kwargs', '{}'::jsonb),
       0, gen_random_uuid(), 1, '{}'::jsonb,
       -- one attempt each, as a worker records it, so rows are as wide as real ones
       jsonb_build_array(jsonb_build_object('number', 1, 'process', 'worker-bench', 'outcome', 'finished',
                                            'started_at', now()::text, 'finished_at', now()::text)),
       NULL,
       now() - i * (%(span)s / %(jobs)s) * interval '1 second',
       NULL,
       now() - i * (%(span)s / %(jobs)s) * interval '1 second' - interval '2 seconds',
       now() - i * (%(span)s / %(jobs)s) * interval '1 second'
FROM generate_series(1, %(jobs)s) AS i
"""
WEEK = 7 * 24 * 3600 - 60  # seconds the finished jobs are spread over


def ensure_database(url):
    """Create the benchmark database if the server does not have it yet."""
    import psycopg

    parts = urlparse(url)
    name = parts.path.lstrip("/")
    admin_url = parts._replace(path="/postgres").geturl()
    with psycopg.connect(admin_url, autocommit=True) as connection:
        if not connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            connection.execute(f'CREATE DATABASE "{name}"')


def setup_django(url):
    os.environ["DATABASE_URL"] = url
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.bench_settings"
    sys.path[:0] = [str(ROOT), str(ROOT / "testproject")]
    warnings.filterwarnings("ignore", message="No directory at")  # no collectstatic for a benchmark
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def fill(jobs):
    """Refill Quebec's tables: ``jobs`` finished jobs plus a little of everything else."""
    from django.db import connection

    from quebec.models import Job, Process

    if Job.objects.filter(finished_at__isnull=False).count() == jobs:
        print(f"Reusing the {jobs:,} finished jobs already there.")
        return
    started = time.monotonic()
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE quebec_ready_executions, quebec_scheduled_executions, quebec_claimed_executions, "
            "quebec_blocked_executions, quebec_failed_executions, quebec_processes, quebec_jobs CASCADE"
        )
        cursor.execute(FILL_SQL, {"jobs": jobs, "span": float(WEEK)})
    add_waiting_jobs()
    Process.objects.register("Worker", "bench-worker", {"queues": ["*"], "threads": 5})
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE quebec_jobs")
    print(f"Inserted {jobs:,} finished jobs in {time.monotonic() - started:.1f}s.")


def add_waiting_jobs():
    """A hundred ready jobs and twenty failed ones, so the overview has rows to show."""
    from quebec.models import FailedExecution, Job, ReadyExecution

    waiting = Job.objects.bulk_create(Job(queue_name="default", class_name="EmailJob") for _ in range(120))
    ReadyExecution.objects.bulk_create(ReadyExecution(job=job, queue_name="default") for job in waiting[:100])
    FailedExecution.objects.bulk_create(
        FailedExecution(job=job, exception_class="builtins.ValueError", message="bench failure", attempt=1)
        for job in waiting[100:]
    )


def client():
    from django.contrib.auth.models import User
    from django.test import Client

    user, _ = User.objects.get_or_create(username="bench", defaults={"is_staff": True, "is_superuser": True})
    browser = Client(HTTP_HOST="127.0.0.1")
    browser.force_login(user)
    return browser


def measure(browser, url, repeat):
    """Median and slowest seconds of ``repeat`` fetches, after one warm-up, and the query count."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        response = browser.get(url)
    count = len(queries)  # read now: the next request clears the connection's query log
    assert response.status_code == 200, (url, response.status_code)
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        browser.get(url)
        times.append(time.perf_counter() - started)
    return statistics.median(times), max(times), count


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("QUEBEC_DASH_BENCH_URL", DEFAULT_URL))
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    options = parser.parse_args()
    if not options.database_url.startswith("postgres"):
        parser.error("the benchmark fills its table with PostgreSQL's generate_series: give a postgres:// URL")
    ensure_database(options.database_url)
    setup_django(options.database_url)
    fill(options.jobs)
    from django.utils import timezone

    # The admin's own "Past 7 days" link: midnight, local time, with its UTC offset.
    midnight = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    week_ago = quote(str(midnight - timezone.timedelta(days=7)))
    browser = client()
    print(f"\n{'page':<40} {'median':>9} {'slowest':>9} {'queries':>8}")
    for name, url in PAGES.items():
        median, slowest, queries = measure(browser, url.format(week_ago=week_ago), options.repeat)
        print(f"{name:<40} {median * 1000:>7.0f}ms {slowest * 1000:>7.0f}ms {queries:>8}")


if __name__ == "__main__":
    main()
