"""Retrying and discarding failed jobs from code, one at a time or by filter."""

from datetime import timedelta

import pytest
from django.utils import timezone

from quebec.models import ClaimedExecution, FailedExecution, Job, Process, ReadyExecution
from tests.testapp.jobs import FailingJob, RecordJob

pytestmark = pytest.mark.django_db


def fail(handle, message="boom"):
    """Make ``handle``'s job failed the way a worker does: claim it, then record the error."""
    process = Process.objects.register("Worker", f"w-{handle.id}")
    job = ReadyExecution.objects.filter(job_id=handle.id).claim(["*"], 1, process.pk)[0]
    job.executions += 1
    ClaimedExecution.objects.get(job=job).fail(job, ValueError(message))


def failed_jobs(specs):
    handles = []
    for job_class, queue, message in specs:
        handle = job_class.set(queue=queue).perform_later("x")
        fail(handle, message)
        handles.append(handle)
    return handles


def test_retry_one_failed_job_puts_it_back_in_line():
    [handle] = failed_jobs([(FailingJob, "default", "boom")])
    assert FailedExecution.objects.get().retry()
    assert handle.status == "ready"
    assert ReadyExecution.objects.get().queue_name == "default"
    job = Job.objects.get()
    assert job.executions == 1 and job.exception_executions == {}
    assert not FailedExecution.objects.exists()


def test_discard_one_failed_job():
    [handle] = failed_jobs([(FailingJob, "default", "boom")])
    assert FailedExecution.objects.get().discard()
    assert handle.status == "discarded"


def test_retry_and_discard_of_a_job_no_longer_failed_say_so():
    [handle] = failed_jobs([(FailingJob, "default", "boom")])
    failure = FailedExecution.objects.get()
    assert failure.retry()
    assert not failure.retry() and not failure.discard()
    assert handle.status == "ready"


def test_bulk_actions_follow_the_filters():
    handles = failed_jobs(
        [
            (FailingJob, "default", "connection reset by peer"),
            (FailingJob, "mail", "connection reset by peer"),
            (RecordJob, "default", "disk full"),
            (FailingJob, "default", "Disk quota exceeded"),
        ]
    )
    assert FailedExecution.objects.matching(class_name="FailingJob", queue_name="default").count() == 2
    assert FailedExecution.objects.matching(error="disk").count() == 2
    assert FailedExecution.objects.matching(error="ValueError").count() == 4
    assert FailedExecution.objects.matching(failed_after=timezone.now() + timedelta(minutes=1)).count() == 0
    assert FailedExecution.objects.matching(failed_before=timezone.now() + timedelta(minutes=1)).count() == 4

    assert FailedExecution.objects.matching(error="connection").retry_all(batch_size=1) == 2
    assert [handle.status for handle in handles] == ["ready", "ready", "failed", "failed"]
    assert FailedExecution.objects.matching(class_name="RecordJob").discard_all() == 1
    assert [handle.status for handle in handles] == ["ready", "ready", "discarded", "failed"]
    assert FailedExecution.objects.all().discard_all() == 1
    assert not FailedExecution.objects.exists()

