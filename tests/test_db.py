"""The statements of quebec/db/, on whichever database the suite runs."""

import pytest
from django.utils import timezone

import quebec
from quebec.db import mysql, operations
from quebec.lifecycle import running
from quebec.models import ClaimedExecution, Job, Process, ReadyExecution
from tests.testapp.jobs import RecordJob

pytestmark = pytest.mark.django_db


@pytest.fixture
def process():
    return Process.objects.register("Worker", "test-worker")


def enqueue(label, queue="default", priority=0):
    return RecordJob.set(queue=queue, priority=priority).perform_later(label)


def test_insert_rows_keeps_values_that_are_equal_but_not_the_same():
    values = [1, True, 1.0, 0, False, None, "1"]
    now = timezone.now()
    jobs = [Job(queue_name="q", class_name="C", return_value=value, created_at=now, updated_at=now) for value in values]
    operations("default").insert_rows(Job, jobs)
    stored = [Job.objects.get(pk=job.pk).return_value for job in jobs]
    assert [(type(value), value) for value in stored] == [(type(value), value) for value in values]
    assert {job.created_at for job in Job.objects.filter(pk__in=[job.pk for job in jobs])} == {now}


def test_delete_by_pk_deletes_exactly_the_keys_given_past_one_statements_worth(monkeypatch):
    monkeypatch.setattr(mysql, "KEYS_PER_STATEMENT", 7)  # several statements on MySQL
    handles = quebec.perform_all_later(RecordJob.build(f"job-{index}") for index in range(30))
    doomed = [handle.id for handle in handles[::2]] + [10**12]  # and one key with no row
    assert operations("default").delete_by_pk(ReadyExecution, doomed) == 15
    assert set(ReadyExecution.objects.values_list("job_id", flat=True)) == {handle.id for handle in handles[1::2]}


def test_delete_claims_deletes_and_returns_only_the_claims_still_ours(process, monkeypatch):
    monkeypatch.setattr(mysql, "KEYS_PER_STATEMENT", 4)
    for index in range(10):
        enqueue(f"job-{index}")
    claimed = [job.pk for job in running.claim("default", ("*",), 10, process.pk)]
    other = Process.objects.register("Worker", "other-worker")
    ClaimedExecution.objects.filter(job_id__in=claimed[:3]).update(process=other)  # taken over meanwhile
    assert operations("default").delete_claims(claimed, process.pk) == set(claimed[3:])
    assert set(ClaimedExecution.objects.values_list("job_id", flat=True)) == set(claimed[:3])
