from datetime import timedelta

import pytest
from django.utils import timezone

import quebec
from quebec.db import mysql, operations
from quebec.lifecycle import processes, queueing, running
from quebec.lifecycle.outcome import FAILED, Outcome
from quebec.models import (
    ClaimedExecution,
    FailedExecution,
    Job,
    Pause,
    Process,
    ReadyExecution,
    ScheduledExecution,
)
from tests.lifecycle_helpers import end, finish
from tests.testapp.jobs import RecordJob

pytestmark = pytest.mark.django_db


@pytest.fixture
def process():
    return Process.objects.register("Worker", "test-worker")


def claim(process, selectors=("*",), limit=100):
    return [job.arguments["args"][0] for job in running.claim("default", selectors, limit, process.pk)]


def enqueue(label, queue="default", priority=0):
    return RecordJob.set(queue=queue, priority=priority).perform_later(label)


def test_claim_takes_lower_priority_numbers_first_then_older_jobs(process):
    enqueue("low-1", priority=10)
    enqueue("urgent", priority=-5)
    enqueue("normal-1")
    enqueue("normal-2")
    enqueue("low-2", priority=10)
    assert claim(process, limit=2) == ["urgent", "normal-1"]
    assert claim(process) == ["normal-2", "low-1", "low-2"]
    assert claim(process) == []


def test_claim_moves_rows_from_ready_to_claimed(process):
    handles = [enqueue(str(index)) for index in range(3)]
    claim(process, limit=2)
    assert ReadyExecution.objects.count() == 1
    assert set(ClaimedExecution.objects.values_list("job_id", flat=True)) == {handles[0].id, handles[1].id}
    assert set(ClaimedExecution.objects.values_list("process_id", flat=True)) == {process.pk}
    assert [handle.status for handle in handles] == ["claimed", "claimed", "ready"]


def test_queue_order_comes_before_priority(process):
    enqueue("background", queue="background", priority=-100)
    enqueue("mail-urgent", queue="mailers", priority=1)
    enqueue("critical", queue="critical", priority=50)
    enqueue("other", queue="other")
    assert claim(process, ["critical", "mail*", "background"]) == ["critical", "mail-urgent", "background"]
    assert claim(process, ["critical", "*"]) == ["other"]


def test_prefix_and_exact_selectors(process):
    enqueue("mail", queue="mailers")
    enqueue("mail-bulk", queue="mail_bulk")
    enqueue("default")
    assert sorted(claim(process, ["mail*"])) == ["mail", "mail-bulk"]
    assert claim(process, ["default"]) == ["default"]


def test_a_wildcard_after_a_name_does_not_claim_twice(process):
    enqueue("a", queue="a")
    enqueue("b", queue="b")
    assert claim(process, ["a", "*"]) == ["a", "b"]
    assert ClaimedExecution.objects.count() == 2


def test_paused_queues_are_skipped_until_resumed(process):
    enqueue("paused", queue="reports")
    enqueue("free")
    Pause.pause("reports")
    assert claim(process) == ["free"]
    assert claim(process, ["reports"]) == []
    Pause.resume("reports")
    assert claim(process, ["reports"]) == ["paused"]


def test_finish_marks_the_job_finished(process):
    enqueue("done")
    job = running.claim("default", ["*"], 1, process.pk)[0]
    job.executions += 1
    assert finish(job, process, preserve=True)
    job.refresh_from_db()
    assert job.finished_at is not None and job.executions == 1
    assert Job.objects.with_status().get(pk=job.pk).status == "finished"
    assert not ClaimedExecution.objects.exists()


def test_finish_without_preserving_deletes_the_job(process):
    handle = enqueue("gone")
    job = running.claim("default", ["*"], 1, process.pk)[0]
    assert finish(job, process, preserve=False)
    assert not Job.objects.exists()
    assert handle.status == "finished"


def test_fail_records_class_message_backtrace_and_attempt(process):
    enqueue("boom")
    job = running.claim("default", ["*"], 1, process.pk)[0]
    job.executions += 1
    try:
        raise ValueError("it broke")
    except ValueError as error:
        assert end(job, process, Outcome(FAILED, error=error))
    failed = FailedExecution.objects.get(job=job)
    assert failed.exception_class == "builtins.ValueError"
    assert failed.message == "it broke"
    assert "Traceback" in failed.backtrace and 'raise ValueError("it broke")' in failed.backtrace
    assert failed.attempt == 1
    assert Job.objects.with_status().get(pk=job.pk).status == "failed"


def test_a_released_claim_cannot_be_finished_by_its_old_owner(process):
    enqueue("released")
    job = running.claim("default", ["*"], 1, process.pk)[0]
    assert processes.deregister(process) == 1
    assert ReadyExecution.objects.filter(job=job).exists()
    assert not finish(job, process, preserve=True)
    job.refresh_from_db()
    assert job.finished_at is None
    assert not Process.objects.filter(pk=process.pk).exists()


def test_release_puts_jobs_back_with_their_queue_and_priority(process):
    enqueue("x", queue="critical", priority=-2)
    running.claim("default", ["*"], 1, process.pk)
    assert running.release(ClaimedExecution.objects.filter(process=process)) == 1
    ready = ReadyExecution.objects.get()
    assert (ready.queue_name, ready.priority) == ("critical", -2)


def test_dispatch_due_moves_only_due_jobs_in_batches():
    past = timezone.now() - timedelta(seconds=1)
    handles = quebec.perform_all_later(RecordJob.set(wait_until=past + timedelta(days=1)).build(i) for i in range(3))
    ScheduledExecution.objects.filter(job_id__in=[h.id for h in handles[:2]]).update(scheduled_at=past)
    assert queueing.dispatch_due("default", batch_size=1) == 1
    assert queueing.dispatch_due("default", batch_size=10) == 1
    assert queueing.dispatch_due("default", batch_size=10) == 0
    assert [handle.status for handle in handles] == ["ready", "ready", "scheduled"]


def test_clear_finished_deletes_only_old_finished_jobs():
    old, recent, pending = (enqueue(label) for label in ("old", "recent", "pending"))
    now = timezone.now()
    Job.objects.filter(pk=old.id).update(finished_at=now - timedelta(days=2))
    Job.objects.filter(pk=recent.id).update(finished_at=now)
    ReadyExecution.objects.filter(job_id__in=[old.id, recent.id]).delete()
    assert Job.objects.clear_finished(before=now - timedelta(days=1)) == 1
    assert set(Job.objects.values_list("pk", flat=True)) == {recent.id, pending.id}


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
