"""The metrics endpoint (quebec/dashboard/metrics.py): Prometheus' text format, its figures
against jobs a real worker ran, who may read it, and what a scrape costs in queries."""

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.urls import include, path
from django.utils import timezone

import quebec
from quebec.lifecycle import stats
from quebec.models import JobStat, Pause, Process, ReadyExecution
from quebec.models.stats import BOUNDS
from tests.conftest import finished, wait_until
from tests.test_admin_fixtures import _whitenoise_without_collectstatic, staff_client  # noqa: F401  (fixtures)
from tests.testapp.jobs import ChaosJob, RecordJob, SoloJob

# This module is its own URLconf: the public endpoints as a project would include them.
urlpatterns = [path("quebec/", include("quebec.dashboard.urls"))]
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.urls("tests.test_metrics")]
CHAOS = "tests.testapp.jobs.ChaosJob"
SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>.*)\})? (?P<value>\S+)$")
LABEL = re.compile(r'(?P<key>[a-zA-Z_][a-zA-Z0-9_]*)="(?P<value>(?:[^"\\]|\\.)*)"')


def parse(text):
    """{(name, frozenset of label pairs): value} for every sample, checking each family's
    HELP and TYPE come before its samples, as the format requires."""
    samples, typed = {}, {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            typed[name] = kind
        elif line.startswith("#") or not line:
            continue
        else:
            match = SAMPLE.match(line)
            assert match, f"not a sample line: {line!r}"
            name = match["name"]
            family = re.sub(r"_(bucket|sum|count)$", "", name) if name not in typed else name
            assert family in typed, f"{name} comes before its TYPE line"
            labels = frozenset(
                (m["key"], m["value"].replace('\\"', '"')) for m in LABEL.finditer(match["labels"] or "")
            )
            value = float(match["value"].replace("+Inf", "inf"))
            samples[name, labels] = value
    return samples


def value(samples, name, **labels):
    return samples[name, frozenset(labels.items())]


@pytest.fixture
def bearer(settings_config):
    settings_config(monitoring_token="scrape-token")
    return {"Authorization": "Bearer scrape-token"}


def scrape(client, headers):
    response = client.get("/quebec/metrics/", headers=headers)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    return parse(response.content.decode())


def test_a_real_worker_s_jobs_show_in_the_counters_and_histograms(client, start, settings):
    plans = ["ok", "ok", "flaky-then-ok", "flaky", "discard"]
    handles = [ChaosJob.perform_later(plan) for plan in plans]
    start(monitoring_token="scrape-token")
    wait_until(lambda: finished(*handles), message="the jobs to come to rest")
    wait_until(lambda: JobStat.objects.filter(class_name=CHAOS).totals()["run_count"] == 8, message="the rollups")
    samples = scrape(client, {"Authorization": "Bearer scrape-token"})
    group = {"queue": "default", "class": CHAOS}
    assert value(samples, "quebec_jobs_finished_total", **group) == 3
    assert value(samples, "quebec_jobs_retried_total", **group) == 3  # one, then two before failing
    assert value(samples, "quebec_jobs_failed_total", **group) == 1
    assert value(samples, "quebec_jobs_discarded_total", **group) == 1
    runs = value(samples, "quebec_job_run_seconds_count", **group)
    assert runs == 8 == value(samples, "quebec_job_run_seconds_bucket", **group, le="+Inf")
    buckets = [value(samples, "quebec_job_run_seconds_bucket", **group, le=repr(bound)) for bound in BOUNDS]
    assert buckets == sorted(buckets) and buckets[-1] <= runs  # cumulative
    assert 0 < value(samples, "quebec_job_run_seconds_sum", **group) < 60
    assert value(samples, "quebec_job_wait_seconds_count", **group) == 8
    assert value(samples, "quebec_processes", kind="Worker") == 1
    assert value(samples, "quebec_jobs", state="failed") == 1


def test_queues_states_and_processes(client, bearer):
    Process.objects.register("Worker", "w1")
    Process.objects.register("Dispatcher", "d1")
    gone = Process.objects.register("Worker", "gone")
    Process.objects.filter(pk=gone.pk).update(last_heartbeat_at=timezone.now() - timedelta(days=1))
    for _ in range(3):
        RecordJob.set(queue="mail").perform_later("x")
    ReadyExecution.objects.filter(queue_name="mail").update(created_at=timezone.now() - timedelta(minutes=2))
    RecordJob.set(queue="reports").perform_later("x")
    Pause.objects.create(queue_name="reports")
    RecordJob.set(queue="later", wait=3600).perform_later("x")
    SoloJob.perform_later("key")
    SoloJob.perform_later("key")  # blocked behind the first
    samples = scrape(client, bearer)
    assert value(samples, "quebec_queue_size", queue="mail") == 3
    assert 120 <= value(samples, "quebec_queue_latency_seconds", queue="mail") < 3600
    assert value(samples, "quebec_queue_paused", queue="mail") == 0
    assert value(samples, "quebec_queue_paused", queue="reports") == 1
    assert value(samples, "quebec_jobs", state="scheduled") == 1
    assert value(samples, "quebec_jobs", state="blocked") == 1
    assert value(samples, "quebec_jobs", state="ready") == 5
    assert value(samples, "quebec_processes", kind="Worker") == 1
    assert value(samples, "quebec_processes", kind="Dispatcher") == 1
    assert value(samples, "quebec_processes", kind="Scheduler") == 0
    assert value(samples, "quebec_processes_dead") == 1


def test_counters_keep_what_was_pruned(client, bearer):
    now = timezone.now().replace(second=0, microsecond=0)
    for age in (timedelta(days=20), timedelta(days=1), timedelta(0)):
        JobStat.objects.create(minute=now - age, queue_name="q", class_name=CHAOS, finished=2, run_count=2, run_b05=2)
    group = {"queue": "q", "class": CHAOS}
    before = scrape(client, bearer)
    stats.fold("default")
    assert stats.prune("default", retention=14 * 86400) == 1
    after = scrape(client, bearer)
    for name in ("quebec_jobs_finished_total", "quebec_job_run_seconds_count"):
        assert value(before, name, **group) == value(after, name, **group) == 6
    assert value(after, "quebec_job_run_seconds_bucket", **group, le=repr(BOUNDS[5])) == 6


def test_label_values_are_escaped(client, bearer):
    JobStat.objects.create(
        minute=timezone.now(), queue_name='odd"queue\\', class_name="app.jobs.Line\nBreak", finished=1
    )
    samples = scrape(client, bearer)
    assert (
        samples[
            "quebec_jobs_finished_total", frozenset({("queue", 'odd"queue\\\\'), ("class", "app.jobs.Line\\nBreak")})
        ]
        == 1
    )


def test_anonymous_callers_get_401_and_other_users_403(client, settings_config):
    settings_config(monitoring_token="scrape-token")
    response = client.get("/quebec/metrics/")
    assert response.status_code == 401 and response["WWW-Authenticate"].startswith("Bearer")
    assert b"quebec_" not in response.content
    for wrong in ("Bearer scrape-tokeN", "Bearer ", "Basic scrape-token"):
        assert client.get("/quebec/metrics/", headers={"Authorization": wrong}).status_code == 401
    client.force_login(User.objects.create_user("customer", password="pw"))
    response = client.get("/quebec/metrics/")
    assert response.status_code == 403 and b"quebec_" not in response.content


def test_staff_sessions_and_the_bearer_token_get_everything(client, staff_client, bearer):
    RecordJob.perform_later("x")
    assert value(scrape(staff_client(), {}), "quebec_queue_size", queue="default") == 1
    assert value(scrape(client, bearer), "quebec_queue_size", queue="default") == 1
    assert client.get("/quebec/metrics/", headers={"Authorization": "bearer scrape-token"}).status_code == 200


def test_a_scrape_costs_a_bounded_number_of_queries(client, bearer, django_assert_max_num_queries):
    now = timezone.now().replace(second=0, microsecond=0)
    for minute in range(30):
        for index in range(20):
            JobStat.objects.create(
                minute=now - timedelta(minutes=minute),
                queue_name=f"q{index % 4}",
                class_name=f"app.Job{index}",
                finished=1,
            )
    for index in range(10):
        RecordJob.set(queue=f"queue-{index}").perform_later("x")
        Process.objects.register("Worker", f"w{index}")
    stats.fold("default")
    with django_assert_max_num_queries(12):
        samples = scrape(client, bearer)
    assert sum(v for (name, _), v in samples.items() if name == "quebec_jobs_finished_total") == 600


def test_batches_by_status_and_the_members_still_pending(client, bearer):
    with quebec.batch(description="running") as running:
        RecordJob.perform_later("a")
        RecordJob.perform_later("b")
    with quebec.batch(description="empty"):  # finishes at once, as succeeded
        pass
    samples = scrape(client, bearer)
    assert value(samples, "quebec_batches", status="running") == 1
    assert value(samples, "quebec_batches", status="succeeded") == 1
    assert value(samples, "quebec_batches", status="failed") == 0
    assert value(samples, "quebec_batch_jobs_pending") == 2
    assert running.refresh().pending_jobs == 2
