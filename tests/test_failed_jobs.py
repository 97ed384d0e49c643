"""Retrying and discarding failed jobs from code, one at a time or by filter."""

from datetime import timedelta

import pytest
from django.utils import timezone

from quebec.lifecycle import queueing
from quebec.models import FailedExecution, Job, ReadyExecution
from tests.lifecycle_helpers import fail
from tests.testapp.jobs import FailingJob, RecordJob

pytestmark = pytest.mark.django_db


def retry_one(failure):
    return failure.retry()


def discard_one(failure):
    return failure.discard()


def failed_jobs(specs):
    handles = []
    for job_class, queue, message in specs:
        handle = job_class.set(queue=queue).perform_later("x")
        fail(handle, message)
        handles.append(handle)
    return handles


def test_retry_one_failed_job_puts_it_back_in_line():
    [handle] = failed_jobs([(FailingJob, "default", "boom")])
    assert retry_one(FailedExecution.objects.get())
    assert handle.status == "ready"
    assert ReadyExecution.objects.get().queue_name == "default"
    job = Job.objects.get()
    assert job.executions == 1 and job.exception_executions == {}
    assert not FailedExecution.objects.exists()


def test_discard_one_failed_job():
    [handle] = failed_jobs([(FailingJob, "default", "boom")])
    assert discard_one(FailedExecution.objects.get())
    assert handle.status == "discarded"


def test_retry_and_discard_of_a_job_no_longer_failed_say_so():
    [handle] = failed_jobs([(FailingJob, "default", "boom")])
    failure = FailedExecution.objects.get()
    assert retry_one(failure)
    assert not retry_one(failure) and not discard_one(failure)
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
    assert queueing.discard(FailedExecution.objects.all()) == 1  # the transition the methods call
    assert not FailedExecution.objects.exists()
