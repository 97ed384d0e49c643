"""Quebec on a second database ("second" in tests/settings.py): binding, enqueue, quebec_run,
dashboard, pauses and checks all follow the alias, and the default database sees none of it."""

from io import StringIO

import pytest
from django.core import checks
from django.core.management import CommandError, call_command

import quebec
from quebec import registry, routing
from quebec.models import FailedExecution, Job, Pause, Process
from tests.conftest import finished, wait_until
from tests.secondapp.jobs import SecondFailingJob, SecondRecordJob, UnboundJob, second
from tests.testapp.jobs import RecordJob
from tests.testapp.models import JobRun

pytestmark = pytest.mark.django_db(databases=["default", "second"], transaction=True)

ADMIN = "/admin/quebec/"


def test_autodiscovery_keeps_an_explicit_binding_and_binds_the_rest_to_the_default():
    # tests.secondapp.jobs registers its classes on Quebec(using="second"); autodiscovery then
    # imported the same module for the default instance.
    assert SecondRecordJob._quebec is second
    assert registry.instance_for(SecondRecordJob).using == "second"
    assert registry.instance_for(UnboundJob) is quebec.default
    assert quebec.default.resolve(SecondRecordJob.job_name()) is SecondRecordJob  # known to its workers too


def test_enqueue_goes_to_the_bound_database_only():
    handle = SecondRecordJob.perform_later("to second")
    assert Job.objects.using("second").filter(pk=handle.id).exists()
    assert not Job.objects.using("default").exists()
    assert handle.status == "ready"  # the handle reads the database it wrote to


@pytest.mark.subprocess
def test_quebec_run_database_runs_that_databases_jobs_there(quebec_run):
    ready = SecondRecordJob.perform_later("ready")
    scheduled = SecondRecordJob.set(wait=1).perform_later("scheduled")
    routed = RecordJob.perform_later(second, "routed")  # a default-bound class, sent there explicitly
    on_default = RecordJob.perform_later("stays")
    process = quebec_run(
        "--database",
        "second",
        "--only",
        "worker,dispatcher",
        env={"QUEBEC_WORKER_POLLING_INTERVAL": "0.05", "QUEBEC_DISPATCHER_POLLING_INTERVAL": "0.1"},
    )
    wait_until(lambda: finished(ready, scheduled, routed), message="the second database's jobs to finish")
    assert {ready.status, scheduled.status, routed.status} == {"finished"}
    kinds = set(Process.objects.using("second").values_list("kind", flat=True))
    assert {"Supervisor", "Worker", "Dispatcher"} <= kinds
    assert not Process.objects.using("default").exists()
    assert on_default.status == "ready"  # nobody runs the default database's jobs
    assert process.stop() == 0
    assert not Process.objects.using("second").exists()
    assert sorted(JobRun.objects.values_list("label", flat=True)) == ["ready", "routed", "scheduled"]


def test_quebec_run_refuses_an_unknown_alias():
    with pytest.raises(
        CommandError, match=r"quebec_run --database: no database alias 'nowhere' in settings\.DATABASES"
    ):
        call_command("quebec_run", "--database", "nowhere")


def test_pause_follows_the_alias():
    Pause.pause("mail", using="second")
    with routing.use("second"):
        Pause.pause("reports")
        assert set(Pause.objects.values_list("queue_name", flat=True)) == {"mail", "reports"}
        Pause.resume("mail")
    assert list(Pause.objects.using("second").values_list("queue_name", flat=True)) == ["reports"]
    assert not Pause.objects.exists()


def failed_on_second():
    """A job of the second database that failed, by running it as a worker would."""
    from quebec import conf
    from quebec.processes.worker import Worker

    handle = SecondFailingJob.perform_later()
    options = conf.WorkerConfig(queues=("*",), threads=1, polling_interval=0.02)
    worker = Worker(options, settings=conf.get(), quebec=registry.for_database("second"))
    worker.start()
    try:
        wait_until(lambda: finished(handle), message="the job to fail")
    finally:
        worker.stop()
        worker.join(10)
    assert handle.status == "failed"
    return handle


def test_dashboard_shows_and_acts_on_the_chosen_database(admin_client):
    handle = failed_on_second()
    page = admin_client.get(ADMIN, {"database": "second"}).content.decode()
    assert "SecondFailingJob" in page  # the overview's latest failures
    assert 'name="database"' in page and '<option value="second" selected>' in page  # the selector
    assert "SecondFailingJob" not in admin_client.get(ADMIN).content.decode()

    failed = admin_client.get(f"{ADMIN}failedexecution/", {"database": "second"}).content.decode()
    assert f"{ADMIN}job/{handle.id}/change/?database=second" in failed  # links keep the choice
    assert admin_client.get(f"{ADMIN}job/{handle.id}/change/", {"database": "second"}).status_code == 200

    live = admin_client.get(f"{ADMIN}job/live/", {"database": "second", "fragments": "failures"}).json()
    assert live["counts"]["failed"] == "1" and "SecondFailingJob" in live["fragments"]["failures"]

    charts = admin_client.get(f"{ADMIN}jobstat/", {"database": "second", "range": "hour"}).content.decode()
    assert "SecondFailingJob" in charts and "?range=day&amp;database=second" in charts  # rollups of second
    assert "SecondFailingJob" not in admin_client.get(f"{ADMIN}jobstat/").content.decode()
    assert admin_client.get(f"{ADMIN}job/live/").json()["counts"]["failed"] == "0"

    response = admin_client.post(f"{ADMIN}job/{handle.id}/retry/?database=second")
    assert response.status_code == 302 and response["Location"].endswith("?database=second")
    assert handle.status == "ready"
    assert not FailedExecution.objects.using("second").exists()


def test_dashboard_pauses_the_chosen_databases_queue(admin_client):
    response = admin_client.post(f"{ADMIN}pause/pause/?database=second", {"queue": "mail"})
    assert response.status_code == 302 and "database=second" in response["Location"]
    assert list(Pause.objects.using("second").values_list("queue_name", flat=True)) == ["mail"]
    assert not Pause.objects.using("default").exists()
    page = admin_client.get(f"{ADMIN}pause/", {"database": "second"}).content.decode()
    assert f'action="{ADMIN}pause/resume/?database=second"' in page


def test_dashboard_refuses_an_alias_not_in_databases(admin_client):
    assert admin_client.get(ADMIN, {"database": "nowhere"}).status_code == 400
    assert admin_client.get(f"{ADMIN}job/live/", {"database": "nowhere"}).status_code == 400


def test_health_follows_the_alias(admin_client):
    SecondRecordJob.perform_later("waiting")
    report = admin_client.get("/quebec/health/", {"database": "second"}).json()
    assert report["counts"]["ready"] == 1
    assert admin_client.get("/quebec/health/").json()["counts"]["ready"] == 0
    out = StringIO()
    with pytest.raises(SystemExit):  # no worker alive: unhealthy
        call_command("quebec_health", "--json", "--database", "second", stdout=out, stderr=StringIO())
    assert '"ready": 1' in out.getvalue()


def test_checks_name_an_alias_missing_from_databases():
    stray = quebec.Quebec(using="nowhere")
    try:
        messages = [message for message in checks.run_checks() if message.id == "quebec.E006"]
    finally:
        registry._instances.remove(stray)
    assert [message.msg for message in messages] == [
        "A Quebec instance uses the database alias 'nowhere', which is not in settings.DATABASES."
    ]


def test_checks_look_at_every_alias_quebec_uses():
    ids = [
        message.id for message in checks.run_checks(databases=["default", "second"]) if message.id.startswith("quebec.")
    ]
    assert ids == []
