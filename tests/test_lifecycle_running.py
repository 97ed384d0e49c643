"""Claiming, ending and releasing jobs: quebec/lifecycle/running.py, one job or a batch at a time."""

import pytest
from django.db import transaction

import quebec
from quebec.lifecycle import processes, running
from quebec.lifecycle.outcome import FAILED, FINISHED, Outcome, Run
from quebec.models import ClaimedExecution, FailedExecution, Job, Pause, Process, ReadyExecution, Semaphore
from tests.lifecycle_helpers import end, finish
from tests.testapp.jobs import PairsJob, RecordJob

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


# Batches of runs, as a worker records its successful ones with its next claim.


def run(job, result=None):
    """What a worker thread does to a job that ran successfully."""
    job.executions += 1
    job.attempts = [*job.attempts, {"number": job.executions, "outcome": "finished"}]
    return Run(job, Outcome(FINISHED, result=result))


def finish_all(runs, process, preserve=True):
    with transaction.atomic():
        return [run.job for run in running.end(runs, process.pk, preserve, "default")]


def test_a_batch_records_each_job_with_its_own_attempts_and_return_value(process):
    quebec.perform_all_later(RecordJob.build(f"job-{index}") for index in range(3))
    jobs = running.claim("default", ["*"], 3, process.pk)
    results = [{"index": 0}, None, "two"]
    recorded = finish_all([run(job, result) for job, result in zip(jobs, results)], process)
    assert sorted(job.pk for job in recorded) == sorted(job.pk for job in jobs)
    assert not ClaimedExecution.objects.exists()
    for job, result in zip(jobs, results):
        stored = Job.objects.get(pk=job.pk)
        assert stored.finished_at == job.finished_at and stored.executions == 1
        assert stored.return_value == result
        assert stored.attempts == [{"number": 1, "outcome": "finished"}]
    assert set(Job.objects.with_status().values_list("status", flat=True)) == {"finished"}


def test_a_batch_leaves_alone_the_jobs_whose_claim_is_no_longer_ours(process):
    quebec.perform_all_later(RecordJob.build(f"job-{index}") for index in range(2))
    kept, released = running.claim("default", ["*"], 2, process.pk)
    assert running.release(ClaimedExecution.objects.filter(job_id=released.pk)) == 1
    recorded = finish_all([run(kept), run(released)], process)
    assert [job.pk for job in recorded] == [kept.pk]
    assert Job.objects.with_status().get(pk=kept.pk).status == "finished"
    assert Job.objects.with_status().get(pk=released.pk).status == "ready"
    assert Job.objects.get(pk=released.pk).executions == 0


def test_another_process_cannot_record_a_batch_of_our_claims(process):
    quebec.perform_all_later(RecordJob.build(f"job-{index}") for index in range(2))
    jobs = running.claim("default", ["*"], 2, process.pk)
    other = Process.objects.register("Worker", "other-worker")
    assert finish_all([run(job) for job in jobs], other) == []
    assert ClaimedExecution.objects.filter(process=process).count() == 2


def test_a_batch_without_preserving_deletes_the_jobs(process):
    handles = quebec.perform_all_later(RecordJob.build(f"job-{index}") for index in range(2))
    jobs = running.claim("default", ["*"], 2, process.pk)
    assert len(finish_all([run(job) for job in jobs], process, preserve=False)) == 2
    assert not Job.objects.exists() and not ClaimedExecution.objects.exists()
    assert [handle.status for handle in handles] == ["finished", "finished"]


def test_a_batch_gives_back_concurrency_slots_and_lets_blocked_jobs_in(process):
    handles = quebec.perform_all_later(PairsJob.build("same-group") for _ in range(3))
    assert [handle.status for handle in handles] == ["ready", "ready", "blocked"]
    jobs = running.claim("default", ["*"], 2, process.pk)
    finish_all([run(job) for job in jobs], process)
    assert handles[2].status == "ready"
    # Two slots given back, one taken by the job let in.
    assert Semaphore.objects.get(key=Job.objects.get(pk=handles[2].id).concurrency_key).value == 1


@pytest.mark.parametrize("preserve", [True, False])
def test_finish_and_claim_records_what_is_ours_and_claims_the_next_jobs(process, preserve):
    quebec.perform_all_later(RecordJob.build(f"job-{index}") for index in range(5))
    kept, released = running.claim("default", ["*"], 2, process.pk)
    assert running.release(ClaimedExecution.objects.filter(job_id=released.pk)) == 1
    recorded, claimed = running.end_and_claim(
        "default", [run(kept, [1, 2]), run(released)], process.pk, preserve, ["*"], 2
    )
    assert [run.job.pk for run in recorded] == [kept.pk]
    assert [job.arguments["args"][0] for job in claimed] == ["job-1", "job-2"]  # the released job is back first
    assert set(ClaimedExecution.objects.values_list("job_id", flat=True)) == {job.pk for job in claimed}
    if preserve:
        stored = Job.objects.get(pk=kept.pk)
        assert stored.finished_at == kept.finished_at and stored.return_value == [1, 2]
    else:
        assert not Job.objects.filter(pk=kept.pk).exists()
    assert Job.objects.get(pk=released.pk).executions == 0


def test_finish_and_claim_with_nothing_to_claim_still_records(process):
    RecordJob.perform_later("only")
    job = running.claim("default", ["*"], 1, process.pk)[0]
    recorded, claimed = running.end_and_claim("default", [run(job)], process.pk, True, ["*"], 0)
    assert [run.job.pk for run in recorded] == [job.pk] and claimed == []
    assert Job.objects.with_status().get(pk=job.pk).status == "finished"


def test_a_slot_passed_on_keeps_its_semaphore_from_expiring(process):
    from datetime import timedelta

    from django.utils import timezone

    handles = quebec.perform_all_later(PairsJob.build("kept-alive") for _ in range(3))
    jobs = running.claim("default", ["*"], 2, process.pk)
    soon = timezone.now() + timedelta(seconds=5)  # under half of PairsJob's 60 s to live
    Semaphore.objects.filter(key="PairsJob/kept-alive").update(expires_at=soon)
    finish_all([run(job) for job in jobs], process)
    assert handles[2].status == "ready"
    semaphore = Semaphore.objects.get(key="PairsJob/kept-alive")
    assert semaphore.value == 1 and semaphore.expires_at > timezone.now() + timedelta(seconds=50)
