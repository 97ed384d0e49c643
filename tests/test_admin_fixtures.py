"""Fixtures and helpers shared by the dashboard's tests (this module holds no tests)."""

import uuid

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client

from tests.lifecycle_helpers import fail
from tests.testapp.jobs import FailingJob, RecordJob

HOSTILE = "<script>alert('x')</script>"


def failed_job(*args, message="boom", queue="default"):
    return fail(FailingJob.set(queue=queue).perform_later(*args or ("x",)), message)


def scheduled_job(*args, queue="default"):
    return RecordJob.set(wait=3600, queue=queue).perform_later(*args)


@pytest.fixture
def staff_client(db):
    """A logged-in staff user holding only the named permissions: ``staff_client("view_job", ...)``."""

    def make(*codenames):
        user = User.objects.create_user(f"staff-{uuid.uuid4().hex[:8]}", password="pw", is_staff=True)
        user.user_permissions.set(Permission.objects.filter(content_type__app_label="quebec", codename__in=codenames))
        client = Client()
        client.force_login(user)
        return client

    return make


VIEW_ALL = tuple(
    f"view_{name}"
    for name in (
        "job",
        "readyexecution",
        "scheduledexecution",
        "claimedexecution",
        "blockedexecution",
        "failedexecution",
        "pause",
        "process",
        "recurringtask",
        "batch",
    )
)


@pytest.fixture(autouse=True)
def _whitenoise_without_collectstatic(settings):
    """The test settings have DEBUG off and no collected static files, which WhiteNoise warns
    about (an error here); it serves them from the apps' directories, as in development."""
    settings.WHITENOISE_AUTOREFRESH = True


def hostile(field):
    """Markup that would run if the dashboard showed ``field`` unescaped; one per field, so that
    a failure names the field."""
    return f"<script>alert('{field}')</script>"


# Every text a job, a process, a recurring task or a batch carries that the dashboard shows, with
# the pages that show it ("batch": the batch's page; "live batch": its refreshed part). Marking any of them |safe in a template must break a test.
HOSTILE_FIELDS = {
    "class": ["/admin/quebec/job/", "/admin/quebec/readyexecution/", "ready"],
    "queue": ["/admin/quebec/job/", "/admin/quebec/readyexecution/", "/admin/quebec/pause/", "ready"],
    "argument": ["/admin/quebec/job/", "/admin/quebec/readyexecution/", "ready"],
    "concurrency-key": ["/admin/quebec/blockedexecution/", "blocked"],
    "process-name": ["/admin/quebec/claimedexecution/", "/admin/quebec/process/", "/admin/quebec/", "claimed"],
    "hostname": ["/admin/quebec/claimedexecution/", "/admin/quebec/process/", "/admin/quebec/", "claimed"],
    "error-class": ["/admin/quebec/failedexecution/", "/admin/quebec/", "failed"],
    "error-message": ["/admin/quebec/failedexecution/", "/admin/quebec/", "failed"],
    "backtrace": ["failed"],
    "task-key": ["/admin/quebec/recurringtask/", "ready"],
    "task-class": ["/admin/quebec/recurringtask/"],
    "task-command": ["/admin/quebec/recurringtask/"],
    "task-schedule": ["/admin/quebec/recurringtask/"],
    "task-description": ["/admin/quebec/recurringtask/"],
    "batch-description": ["/admin/quebec/batch/", "batch", "ready"],
    "batch-metadata": ["/admin/quebec/batch/", "batch"],
    "batch-callback": ["/admin/quebec/batch/", "batch", "live batch_progress"],
}


@pytest.fixture
def hostile_world(db):
    """A job in each state, two recurring tasks and a batch whose every shown text is
    hostile(field); returns the job ids by state (the ready job is the batch's member)."""
    from datetime import timedelta

    from django.utils import timezone

    import quebec
    from quebec.models import (
        Batch,
        BlockedExecution,
        ClaimedExecution,
        FailedExecution,
        Job,
        Process,
        ReadyExecution,
        RecurringExecution,
        RecurringTask,
    )

    with quebec.batch(
        on_finish=RecordJob, description=hostile("batch-description"), metadata={"note": hostile("batch-metadata")}
    ) as batch:
        ready = RecordJob.perform_later(hostile("argument")).id
    Batch.objects.filter(pk=batch.pk).update(on_finish={**batch.on_finish, "class_name": hostile("batch-callback")})
    Job.objects.filter(pk=ready).update(class_name=hostile("class"), queue_name=hostile("queue"))
    ReadyExecution.objects.filter(pk=ready).update(queue_name=hostile("queue"))
    blocked = RecordJob.perform_later().id
    ReadyExecution.objects.filter(pk=blocked).delete()
    Job.objects.filter(pk=blocked).update(concurrency_key=hostile("concurrency-key"))
    BlockedExecution.objects.create(
        job_id=blocked,
        queue_name="default",
        concurrency_key=hostile("concurrency-key"),
        expires_at=timezone.now() + timedelta(minutes=5),
    )
    claimed = RecordJob.perform_later().id
    ReadyExecution.objects.filter(pk=claimed).delete()
    process = Process.objects.register("Worker", hostile("process-name"), {"queues": ["*"], "threads": 1})
    Process.objects.filter(pk=process.pk).update(hostname=hostile("hostname"))
    ClaimedExecution.objects.create(job_id=claimed, process=process)
    failed = failed_job().id
    FailedExecution.objects.filter(pk=failed).update(
        exception_class=hostile("error-class"), message=hostile("error-message"), backtrace=hostile("backtrace")
    )
    RecurringTask.objects.create(
        key=hostile("task-key"),
        schedule=hostile("task-schedule"),
        class_name=hostile("task-class"),
        description=hostile("task-description"),
    )
    RecurringTask.objects.create(key="by-command", schedule="every hour", command=hostile("task-command"))
    RecurringExecution.objects.create(task_key=hostile("task-key"), run_at=timezone.now(), job_id=ready)
    return {"ready": ready, "blocked": blocked, "claimed": claimed, "failed": failed}
