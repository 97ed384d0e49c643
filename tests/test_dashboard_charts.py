"""The charts page: throughput, failures and run times read from the rollups that the test writes,
and once from jobs a real worker ran."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from quebec.dashboard import charts
from quebec.models import JobStat
from quebec.models.stats import RUN_BUCKETS, WAIT_BUCKETS, bucket
from tests.conftest import finished, wait_until
from tests.test_admin_fixtures import _whitenoise_without_collectstatic, staff_client  # noqa: F401  (fixtures)
from tests.testapp.jobs import ChaosJob, FailingJob, RecordJob

pytestmark = pytest.mark.django_db
CHARTS = "/admin/quebec/jobstat/"
NOW = datetime(2026, 3, 10, 14, 37, 12, tzinfo=UTC)


def rollup(minute, queue, class_name, finished=0, failed=0, retried=0, discarded=0, run=(), wait=()):
    """One rollup row as the lifecycle writes it: counters, and run and wait times in buckets."""
    values = {"finished": finished, "failed": failed, "retried": retried, "discarded": discarded}
    for kind, seconds, names in (("run", run, RUN_BUCKETS), ("wait", wait, WAIT_BUCKETS)):
        values[f"{kind}_count"] = len(seconds)
        values[f"{kind}_sum"] = sum(seconds)
        for duration in seconds:
            values[names[bucket(duration)]] = values.get(names[bucket(duration)], 0) + 1
    return JobStat.objects.create(
        minute=minute.replace(second=0, microsecond=0), queue_name=queue, class_name=class_name, **values
    )


def ago(**delta):
    return NOW - timedelta(**delta)


def test_buckets_count_finished_and_failed_runs_per_minute_hour_and_day():
    rollup(ago(minutes=0), "default", "EmailJob", finished=2, retried=1)
    rollup(ago(minutes=5), "mail", "EmailJob", finished=1, failed=1)
    rollup(ago(minutes=50), "default", "ReportJob", finished=4, discarded=1)
    rollup(ago(minutes=70), "default", "ReportJob", finished=8)
    rollup(ago(days=3), "default", "ReportJob", finished=16)
    rollup(ago(days=10), "default", "ReportJob", finished=32, failed=2)
    rollup(ago(days=20), "default", "ReportJob", finished=64)  # past what any range shows
    hour = charts.buckets("hour", NOW)
    assert len(hour) == 60 and hour[-1]["start"] == datetime(2026, 3, 10, 14, 37, tzinfo=UTC)
    assert hour[-1] == {
        "start": hour[-1]["start"],
        "finished": 2,
        "failed": 0,
        "retried": 1,
        "discarded": 0,
        "failures": 1,
    }
    assert sum(b["finished"] for b in hour) == 7 and sum(b["failures"] for b in hour) == 2
    day = charts.buckets("day", NOW)
    assert len(day) == 24 and day[-1]["start"] == datetime(2026, 3, 10, 14, tzinfo=UTC)
    assert sum(b["finished"] for b in day) == 15
    week = charts.buckets("week", NOW)
    assert len(week) == 168 and sum(b["finished"] for b in week) == 31
    fortnight = charts.buckets("fortnight", NOW)
    assert len(fortnight) == 14 and fortnight[0]["start"] == datetime(2026, 2, 25, tzinfo=UTC)
    assert sum(b["finished"] for b in fortnight) == 63 and sum(b["failures"] for b in fortnight) == 4


def test_buckets_of_one_queue_or_one_class():
    rollup(ago(minutes=1), "default", "EmailJob", finished=2)
    rollup(ago(minutes=1), "mail", "EmailJob", finished=3, failed=1)
    rollup(ago(minutes=2), "mail", "ReportJob", finished=5)
    total = lambda rows, key="finished": sum(b[key] for b in rows)  # noqa: E731
    assert total(charts.buckets("hour", NOW, queue_name="mail")) == 8
    assert total(charts.buckets("hour", NOW, class_name="EmailJob")) == 5
    assert total(charts.buckets("hour", NOW, queue_name="mail", class_name="EmailJob"), "failures") == 1
    per_class = charts.buckets_per_group("hour", "class_name", ["EmailJob", "ReportJob"], NOW)
    assert [total(per_class[name]) for name in ("EmailJob", "ReportJob")] == [5, 5]


def page(client, **query):
    response = client.get(CHARTS, query)
    assert response.status_code == 200
    return response.content.decode()


def figures(html, table, name):
    """The ``data-figure`` cells of the row ``name`` of the table ``table``, as {figure: text}."""
    import re

    body = html.split(f'id="{table}"', 1)[1].split("</table>", 1)[0]
    row = body.split(f'data-name="{name}"', 1)[1].split("</tr>", 1)[0]
    return dict(re.findall(r'data-figure="(\w+)"[^>]*>([^<]*)<', row))


def test_the_page_shows_per_queue_and_per_class_figures_with_percentiles(admin_client):
    now = timezone.now()
    rollup(now - timedelta(minutes=3), "mail", "EmailJob", finished=9, retried=1, run=[0.02] * 10, wait=[0.2] * 10)
    rollup(now - timedelta(hours=2), "reports", "ReportJob", finished=3, failed=1, run=[2.0, 2.0, 2.0, 40.0])
    html = page(admin_client)  # the last day by default
    assert figures(html, "quebec-by-queue", "mail") == {
        "finished": "9",
        "failures": "1",
        "discarded": "0",
        "run_p50": "18 ms",
        "run_p95": "24 ms",
        "wait_p50": "175 ms",
        "wait_p95": "242 ms",
    }
    assert figures(html, "quebec-by-class", "ReportJob")["failures"] == "1"
    assert figures(html, "quebec-slowest", "ReportJob") == {
        "run_count": "4",
        "run_p50": "2.0 s",
        "run_p95": "45.0 s",  # interpolated in the 25 to 50 s bucket
        "run_mean": "11.5 s",
    }
    slowest = html.split('id="quebec-slowest"')[1]
    assert slowest.index("ReportJob") < slowest.index("EmailJob")
    assert figures(html, "quebec-run-times", "EmailJob") == {"run_p50": "18 ms", "run_p95": "24 ms"}
    hour = page(admin_client, range="hour")
    assert 'data-name="ReportJob"' not in hour and 'data-name="EmailJob"' in hour


def test_the_throughput_chart_is_svg_with_its_figures_as_text(admin_client):
    now = timezone.now()
    rollup(now - timedelta(minutes=1), "mail", "EmailJob", finished=7, failed=2, retried=1)
    rollup(now - timedelta(minutes=1), "default", "ReportJob", finished=5)
    html = page(admin_client, range="hour")
    chart = html.split('id="quebec-throughput-chart"')[1].split("</svg>")[0]
    assert 'role="img"' in chart and "<title" in chart and "12 finished, 3 failed" in chart
    assert chart.count("<rect") == 2  # one minute: its finished bar and its failed bar
    heights = [float(h) for h in re.findall(r'<rect [^>]*height="([\d.-]+)"', html)]
    assert heights and min(heights) > 0  # every bar drawn, the sparklines' too
    mail = page(admin_client, range="hour", queue_name="mail")
    assert "7 finished, 3 failed" in mail.split('id="quebec-throughput-chart"')[1].split("</svg>")[0]
    assert "<script" not in html.split('id="content-main"')[1]


def test_an_empty_range_says_so(admin_client):
    html = page(admin_client, range="week")
    assert "No run has ended in this range." in html and "0 finished, 0 failed" in html


def test_the_page_needs_the_rollups_view_permission(client, staff_client):
    assert client.get(CHARTS).status_code == 302
    assert staff_client("view_job").get(CHARTS).status_code == 403
    assert staff_client("view_jobstat").get(CHARTS).status_code == 200
    assert "Charts" not in staff_client("view_job").get("/admin/quebec/job/").content.decode().split("quebec-tabs")[1]


def test_unknown_ranges_and_hostile_names_are_harmless(admin_client):
    rollup(timezone.now(), "<b>q</b>", "<script>alert(1)</script>", finished=1)
    html = page(admin_client, range="year", queue_name="<b>q</b>")
    assert "<script>alert(1)" not in html and "&lt;script&gt;" in html
    assert 'aria-current="true"' in html.split('data-quebec-range="day"')[1][:40]


@pytest.mark.django_db(transaction=True)
def test_the_figures_of_jobs_a_real_worker_ran(admin_client, start):
    handles = [
        *(RecordJob.set(queue="default").perform_later(index) for index in range(5)),
        *(ChaosJob.set(queue="chaos").perform_later(plan) for plan in ("flaky-then-ok", "discard", "unexpected")),
        FailingJob.set(queue="mail").perform_later("smtp down"),
    ]
    start(threads=2)
    wait_until(lambda: finished(*handles), message="the jobs to end")
    # 9 jobs; the flaky one ran twice (retried, then finished), the unexpected one failed for good.
    wait_until(lambda: JobStat.objects.totals()["run_count"] == 10, message="the rollups of every run")
    html = page(admin_client, range="hour")
    chaos = figures(html, "quebec-by-class", "tests.testapp.jobs.ChaosJob")
    assert (chaos["finished"], chaos["failures"], chaos["discarded"]) == ("1", "2", "1")
    assert figures(html, "quebec-by-queue", "default")["finished"] == "5"
    assert figures(html, "quebec-by-queue", "mail")["failures"] == "1"
    assert "6 finished, 3 failed" in html.split('id="quebec-throughput-chart"')[1].split("</svg>")[0]
    assert figures(html, "quebec-slowest", "tests.testapp.jobs.ChaosJob")["run_count"] == "4"
