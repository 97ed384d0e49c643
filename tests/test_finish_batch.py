"""Finished jobs recorded in batches: one set of statements for many, the same checks as one."""

import pytest
from django.db import transaction

import quebec
from quebec.lifecycle import running
from quebec.lifecycle.outcome import FINISHED, Outcome, Run
from quebec.models import ClaimedExecution, Job, Process, Semaphore
from tests.testapp.jobs import PairsJob, RecordJob

pytestmark = pytest.mark.django_db


@pytest.fixture
def process():
    return Process.objects.register("Worker", "test-worker")


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
    recorded, claimed = running.end_and_claim("default", [run(kept, [1, 2]), run(released)], process.pk, preserve,
                                              ["*"], 2)
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
