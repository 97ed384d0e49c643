"""The live-refresh and chart endpoints, the numbers behind them, and every page's query budget."""

import re
from datetime import datetime, timedelta

import pytest

import quebec
from django.contrib import admin
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from quebec.dashboard import stats, times
from quebec.lifecycle import queueing
from quebec.models import FailedExecution, Job, JobStat, Pause, Process, ReadyExecution, RecurringTask
from tests.test_admin_fixtures import (  # noqa: F401  (fixtures)
    HOSTILE,
    VIEW_ALL,
    _whitenoise_without_collectstatic,
    failed_job,
    scheduled_job,
    staff_client,
)
from tests.testapp.jobs import RecordJob

pytestmark = pytest.mark.django_db
LIVE = "/admin/quebec/job/live/"


def test_live_endpoint_returns_counts_and_the_requested_fragments(admin_client):
    RecordJob.perform_later()
    failed_job(HOSTILE, message=HOSTILE)
    Pause.pause("default")
    data = admin_client.get(LIVE, {"fragments": "queues,failures,workers,bogus"}).json()
    assert data["counts"]["ready"] == "1" and data["counts"]["failed"] == "1"
    assert set(data["fragments"]) == {"queues", "failures", "workers"}
    assert 'data-queue="default" class="quebec-paused"' in data["fragments"]["queues"]
    assert HOSTILE not in data["fragments"]["failures"] and "&lt;script&gt;" in data["fragments"]["failures"]
    assert admin_client.get(LIVE).json()["fragments"] == {}


def test_live_endpoint_needs_a_staff_user_with_quebec_permissions(client, staff_client):
    assert client.get(LIVE).status_code == 302
    assert staff_client().get(LIVE).status_code == 403
    assert staff_client("view_job").get(LIVE).status_code == 200


def test_live_counts_only_the_states_the_user_may_view(staff_client):
    failed_job()
    RecordJob.perform_later()
    assert staff_client("view_pause").get(LIVE).json()["counts"] == {}
    assert staff_client("view_failedexecution").get(LIVE).json()["counts"] == {"failed": "1"}
    counts = staff_client("view_readyexecution", "change_job").get(LIVE).json()["counts"]
    assert counts == {"ready": "1", "finished": "0"}
    assert set(staff_client(*VIEW_ALL).get(LIVE).json()["counts"]) == {
        "ready",
        "scheduled",
        "claimed",
        "blocked",
        "failed",
        "finished",
    }


def test_live_fragments_leave_out_what_the_user_may_not_see(staff_client):
    failed_job()
    data = staff_client("view_job", "view_pause").get(LIVE, {"fragments": "queues,failures"}).json()
    assert "quebec-queues" in data["fragments"]["queues"]
    assert "quebec-failures" not in data["fragments"]["failures"]


def test_every_page_points_the_refresh_script_at_the_live_endpoint(admin_client):
    for url in ("/admin/quebec/", "/admin/quebec/failedexecution/", "/admin/quebec/pause/"):
        body = admin_client.get(url).content.decode()
        assert f'data-quebec-live-url="{LIVE}"' in body
        assert "quebec/dashboard.js" in body and "<script>" not in body.split("quebec-tabs")[1]


def finish(handle, at):
    Job.objects.filter(pk=handle.id).update(finished_at=at)
    from quebec.models import ReadyExecution

    ReadyExecution.objects.filter(pk=handle.id).delete()


def test_throughput_endpoint_reads_the_rollups(admin_client, staff_client):
    now = timezone.now()
    JobStat.objects.create(minute=now.replace(second=0, microsecond=0), queue_name="q", class_name="A", finished=3)
    earlier = (now - timedelta(hours=3)).replace(second=0, microsecond=0)
    JobStat.objects.create(minute=earlier, queue_name="q", class_name="A", finished=2, failed=1, retried=4)
    Job.objects.all().delete()  # the figures outlive the jobs' rows
    data = admin_client.get(reverse("admin:quebec_throughput"), {"range": "day"}).json()
    assert data["unit"] == "hour" and len(data["buckets"]) == 24
    assert sum(b["processed"] for b in data["buckets"]) == 5 and sum(b["failed"] for b in data["buckets"]) == 5
    assert datetime.fromisoformat(data["buckets"][0]["start"]).tzinfo is not None
    hour = admin_client.get(reverse("admin:quebec_throughput")).json()
    assert len(hour["buckets"]) == 60 and hour["buckets"][-1]["processed"] == 3
    assert admin_client.get(reverse("admin:quebec_throughput"), {"range": "year"}).status_code == 400
    assert staff_client("view_pause").get(reverse("admin:quebec_throughput")).status_code == 403


def test_queue_latency_is_the_age_of_the_oldest_ready_job():
    RecordJob.set(queue="a").perform_later()
    from quebec.models import ReadyExecution

    ReadyExecution.objects.update(created_at=timezone.now() - timedelta(minutes=3))
    RecordJob.set(queue="a").perform_later()
    [queue] = [q for q in stats.queues() if q.name == "a"]
    assert queue.size == 2 and timedelta(minutes=3) <= queue.latency < timedelta(minutes=4)
    assert queue.latency_text.startswith("3 min")
    assert stats.format_duration(timedelta(0)) == "0 s"
    assert stats.format_duration(timedelta(days=2, hours=5, minutes=1)) == "2 d 5 h"


def queries(client, url):
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


def fill(rows):
    """``rows`` jobs in each state the pages list, plus processes, recurring tasks, batches and rollups."""
    for index in range(rows):
        with quebec.batch(description=f"batch {index}", on_finish=RecordJob, metadata={"index": index}):
            RecordJob.perform_later(index)
        RecordJob.set(queue=f"q{index}").perform_later(index)
        scheduled_job(index)
        failed_job(index, message=f"error {index}")
        finish(RecordJob.perform_later(index), timezone.now())
        Process.objects.register("Worker", f"worker-{index}-{rows}", {"queues": ["*"], "threads": 3})
        task = RecurringTask.objects.create(
            key=f"task-{index}-{rows}", schedule="every hour", class_name="tests.testapp.jobs.RecordJob"
        )
        task.run_now()
        Pause.pause(f"q{index}")
        minute = timezone.now().replace(second=0, microsecond=0) - timedelta(hours=index)
        JobStat.objects.create(minute=minute, queue_name=f"q{index}", class_name=f"Job{index}-{rows}", finished=1)


BUDGETS = {
    "/admin/quebec/": 25,
    "/admin/quebec/pause/": 25,
    "/admin/quebec/jobstat/?range=week": 25,
    "/admin/quebec/job/": 20,
    "/admin/quebec/job/?status=finished": 20,
    "/admin/quebec/readyexecution/": 20,
    "/admin/quebec/scheduledexecution/": 20,
    "/admin/quebec/claimedexecution/": 20,
    "/admin/quebec/blockedexecution/": 20,
    "/admin/quebec/failedexecution/": 20,
    "/admin/quebec/recurringtask/": 20,
    "/admin/quebec/process/": 20,
    "/admin/quebec/batch/": 20,
    "/admin/quebec/job/?batch=1": 20,
    "/admin/quebec/job/live/?fragments=queues,failures,workers": 15,
    "/admin/quebec/job/throughput/?range=week": 5,
    "/admin/quebec/job/rows/": 8,
    "/admin/quebec/job/rows/?status=finished": 8,
    "/admin/quebec/readyexecution/rows/": 8,
    "/admin/quebec/scheduledexecution/rows/": 8,
    "/admin/quebec/claimedexecution/rows/": 8,
    "/admin/quebec/blockedexecution/rows/": 8,
    "/admin/quebec/failedexecution/rows/?queue_name=q1": 8,
    "/admin/quebec/recurringtask/rows/?q=task": 8,
    "/admin/quebec/process/rows/": 8,
    "/admin/quebec/batch/rows/": 8,
    "/admin/quebec/job/rows/?batch=1": 8,
}


def test_every_page_issues_a_bounded_number_of_queries_whatever_the_row_count(admin_client):
    fill(2)
    few = {url: queries(admin_client, url) for url in BUDGETS}
    fill(12)
    many = {url: queries(admin_client, url) for url in BUDGETS}
    assert many == few
    assert {url: count for url, count in many.items() if count > BUDGETS[url]} == {}


def test_job_detail_issues_a_bounded_number_of_queries(admin_client, django_assert_max_num_queries):
    handle = failed_job(HOSTILE)
    with django_assert_max_num_queries(20):
        admin_client.get(reverse("admin:quebec_job_change", args=[handle.id]))
    queueing.retry(FailedExecution.objects.all())
    with django_assert_max_num_queries(20):
        admin_client.get(reverse("admin:quebec_job_change", args=[handle.id]))


# Each list page and the model whose view permission shows it.
LISTS = {
    "/admin/quebec/job/": "job",
    "/admin/quebec/job/?status=finished": "job",
    "/admin/quebec/readyexecution/": "readyexecution",
    "/admin/quebec/scheduledexecution/": "scheduledexecution",
    "/admin/quebec/claimedexecution/": "claimedexecution",
    "/admin/quebec/blockedexecution/": "blockedexecution",
    "/admin/quebec/failedexecution/": "failedexecution",
    "/admin/quebec/recurringtask/": "recurringtask",
    "/admin/quebec/process/": "process",
    "/admin/quebec/batch/": "batch",
}


def rows_url(page):
    path, _, query = page.partition("?")
    return f"{path}rows/?{query}" if query else f"{path}rows/"


def job_ids(html):
    return {int(pk) for pk in re.findall(r"/admin/quebec/job/(\d+)/change/", html)}


@pytest.mark.parametrize("page", LISTS)
def test_rows_endpoint_renders_the_rows_the_page_shows(admin_client, page):
    RecordJob.perform_later(HOSTILE)
    scheduled_job(HOSTILE)
    failed_job(HOSTILE, message=HOSTILE)
    Process.objects.register("Worker", HOSTILE, {"queues": [HOSTILE]})
    RecurringTask.objects.create(key=HOSTILE, schedule="every hour", class_name="tests.testapp.jobs.RecordJob")
    body = times.steady(admin_client.get(page).content.decode())
    data = admin_client.get(rows_url(page)).json()
    assert times.steady(data["html"]) in body
    assert f'data-quebec-digest="{data["digest"]}"' in body
    assert f'data-quebec-rows-url="{rows_url(page)}"' in body
    assert HOSTILE not in data["html"]


def test_rows_follow_the_filters_search_and_page_of_the_list(admin_client, monkeypatch):
    mail = RecordJob.set(queue="mail").perform_later("alice")
    report = RecordJob.set(queue="reports").perform_later("bob")

    def shown(**query):
        return job_ids(admin_client.get("/admin/quebec/readyexecution/rows/", query).json()["html"])

    assert shown() == {mail.id, report.id}
    assert shown(queue_name="mail") == {mail.id}
    assert shown(q="bob") == {report.id}
    assert shown(q="bob", queue_name="mail") == set()
    monkeypatch.setattr(admin.site._registry[ReadyExecution], "list_per_page", 1)
    assert shown(p="2") == {report.id}
    assert "?p=1" in admin_client.get("/admin/quebec/readyexecution/rows/", {"p": "2"}).json()["html"]


def test_the_rows_digest_changes_with_the_rows_and_only_then(admin_client):
    first = admin_client.get("/admin/quebec/readyexecution/rows/").json()
    assert admin_client.get("/admin/quebec/readyexecution/rows/").json() == first
    handle = RecordJob.perform_later()
    second = admin_client.get("/admin/quebec/readyexecution/rows/").json()
    assert second["digest"] != first["digest"] and job_ids(second["html"]) == {handle.id}


def test_rows_of_a_list_with_actions_carry_the_actions_bar(admin_client):
    failed_job()
    html = admin_client.get("/admin/quebec/failedexecution/rows/").json()["html"]
    assert 'name="action"' in html and 'class="action-select"' in html and "0 of 1 selected" in html


@pytest.mark.parametrize(("page", "model_name"), LISTS.items())
def test_rows_endpoint_needs_the_lists_view_permission(client, staff_client, page, model_name):
    response = client.get(rows_url(page))
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    assert staff_client("view_semaphore").get(rows_url(page)).status_code == 403
    assert staff_client(f"view_{model_name}").get(rows_url(page)).status_code == 200


def test_rows_endpoint_only_reads_and_rejects_filters_it_cannot_apply(admin_client):
    failed_job()
    assert admin_client.post("/admin/quebec/failedexecution/rows/", {"action": "discard"}).status_code == 405
    assert FailedExecution.objects.count() == 1
    assert admin_client.get("/admin/quebec/readyexecution/rows/", {"no_such_field": "1"}).status_code == 400
