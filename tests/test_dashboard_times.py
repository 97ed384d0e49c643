"""Times in the dashboard's lists: moments to the second with how long ago, and run and wait times
read from each job's attempts, sortable."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from quebec.dashboard import times
from quebec.models import ClaimedExecution, FailedExecution, Job, Process, ReadyExecution
from tests.test_admin_fixtures import _whitenoise_without_collectstatic, failed_job  # noqa: F401  (fixture)
from tests.testapp.jobs import RecordJob

pytestmark = pytest.mark.django_db
MOMENT = datetime(2026, 3, 10, 14, 37, 12, 345678, tzinfo=UTC)


def test_relative_times_read_how_long_ago_or_how_soon():
    assert times.relative(MOMENT, MOMENT + timedelta(seconds=12)) == "12 s ago"
    assert times.relative(MOMENT, MOMENT + timedelta(minutes=3, seconds=5)) == "3 min 5 s ago"
    assert times.relative(MOMENT + timedelta(hours=2, minutes=10), MOMENT) == "in 2 h 10 min"


def test_a_time_tag_has_the_exact_moment_to_the_second_on_hover(settings):
    settings.TIME_ZONE = "UTC"
    tag = times.time_tag(MOMENT, MOMENT + timedelta(seconds=12))
    assert tag == ('<time datetime="2026-03-10T14:37:12.345678+00:00" title="2026-03-10 14:37:12 UTC">12 s ago</time>')
    assert times.time_tag(None) == "-"


def finished(handle, started, ended, created=None):
    """Finish ``handle``'s job as a run from ``started`` to ``ended`` would have."""
    attempt = {"number": 1, "process": "w", "started_at": started.isoformat(), "finished_at": ended.isoformat()}
    ReadyExecution.objects.filter(pk=handle.id).delete()
    Job.objects.filter(pk=handle.id).update(
        attempts=[{"number": 0, "started_at": "2000-01-01T00:00:00+00:00"}, {**attempt, "outcome": "finished"}],
        finished_at=ended,
        created_at=created or started,
    )


def column_link(html, column):
    """The sorting link of a list's column (the admin numbers columns)."""
    header = html.split(f"column-{column}", 1)[1].split("</th>", 1)[0]
    return re.search(r'href="(\?[^"]*)"', header).group(1).replace("&amp;", "&")


def listed(html):
    return [int(pk) for pk in re.findall(r"/admin/quebec/job/(\d+)/change/", html.split('id="result_list"')[1])]


def test_the_finished_list_shows_run_and_wait_times_of_the_last_run_and_sorts_by_them(admin_client):
    now = timezone.now().replace(microsecond=0)
    quick = RecordJob.perform_later("quick")
    slow = RecordJob.perform_later("slow")
    finished(
        quick,
        now - timedelta(seconds=10),
        now - timedelta(seconds=10) + timedelta(milliseconds=35),
        created=now - timedelta(seconds=70),
    )
    finished(slow, now - timedelta(seconds=9), now - timedelta(seconds=6.5), created=now - timedelta(seconds=9.2))
    html = admin_client.get("/admin/quebec/job/", {"status": "finished"}).content.decode()
    assert re.search(r"field-run_time[^>]*>35 ms<", html) and re.search(r"field-run_time[^>]*>2.5 s<", html)
    assert re.search(r"field-wait_time[^>]*>1 min<", html) and re.search(r"field-wait_time[^>]*>200 ms<", html)
    by_run = admin_client.get("/admin/quebec/job/" + column_link(html, "run_time")).content.decode()
    assert listed(by_run) == [quick.id, slow.id]
    by_run_reversed = admin_client.get("/admin/quebec/job/" + column_link(by_run, "run_time")).content.decode()
    assert listed(by_run_reversed) == [slow.id, quick.id]
    by_wait = admin_client.get("/admin/quebec/job/" + column_link(html, "wait_time")).content.decode()
    assert listed(by_wait) == [slow.id, quick.id]
    assert "<time datetime=" in html.split('id="result_list"')[1]


def test_the_failed_list_shows_the_failed_runs_time(admin_client):
    handle = failed_job("x")
    now = timezone.now()
    FailedExecution.objects.filter(pk=handle.id).update(created_at=now)
    started = {"number": 1, "started_at": (now - timedelta(seconds=2.5)).isoformat(), "outcome": "failed"}
    Job.objects.filter(pk=handle.id).update(attempts=[started], created_at=now - timedelta(seconds=3))
    html = admin_client.get("/admin/quebec/failedexecution/").content.decode()
    assert re.search(r"field-run_time[^>]*>2.5 s<", html) and re.search(r"field-wait_time[^>]*>500 ms<", html)


def test_ready_and_in_progress_lists_show_how_long_jobs_have_waited_and_run(admin_client):
    now = timezone.now()
    old = RecordJob.perform_later("old")
    new = RecordJob.perform_later("new")
    Job.objects.filter(pk=old.id).update(created_at=now - timedelta(minutes=5))
    html = admin_client.get("/admin/quebec/readyexecution/").content.decode()
    assert re.search(r'field-waiting[^>]*><span class="quebec-ticking"[^>]*>5 min<', html)
    shortest_first = admin_client.get("/admin/quebec/readyexecution/" + column_link(html, "waiting")).content.decode()
    assert listed(shortest_first) == [new.id, old.id]
    longest_first = column_link(shortest_first, "waiting")
    assert listed(admin_client.get("/admin/quebec/readyexecution/" + longest_first).content.decode()) == [
        old.id,
        new.id,
    ]

    process = Process.objects.register("Worker", "worker-1", {"queues": ["*"], "threads": 1})
    ReadyExecution.objects.filter(pk=old.id).delete()
    ClaimedExecution.objects.create(job_id=old.id, process=process, created_at=now - timedelta(seconds=30))
    html = admin_client.get("/admin/quebec/claimedexecution/").content.decode()
    assert re.search(r'field-running_for[^>]*><span class="quebec-ticking"[^>]*>3\d\.\d s<', html)
    assert re.search(r"field-wait_time[^>]*>4 min 30 s<", html)


def test_the_processes_page_shows_what_each_worker_runs_now(admin_client, django_assert_max_num_queries):
    busy = Process.objects.register("Worker", "busy-worker", {"queues": ["*"], "threads": 2})
    Process.objects.register("Worker", "idle-worker", {"queues": ["*"], "threads": 2})
    handles = [RecordJob.perform_later(label) for label in ("a", "b")]
    since = timezone.now() - timedelta(seconds=42)
    for handle in handles:
        ReadyExecution.objects.filter(pk=handle.id).delete()
        ClaimedExecution.objects.create(job_id=handle.id, process=busy, created_at=since)
    with django_assert_max_num_queries(20):
        html = admin_client.get("/admin/quebec/process/").content.decode()
    rows = {name: row for name, row in re.findall(r'field-name">(?:<a [^>]*>)?([^<]*)<(.*?)</tr>', html, re.S)}
    running = re.search(r'field-running_now">(.*?)</td>', rows["busy-worker"], re.S).group(1)
    for handle in handles:
        assert (
            f'<a href="/admin/quebec/job/{handle.id}/change/">#{handle.id}</a> tests.testapp.jobs.RecordJob since <time'
            in running
        )
    assert re.search(r"since <time [^>]*>4\d s ago</time>", running)
    assert re.search(r'field-running_now">-</td>', rows["idle-worker"])
