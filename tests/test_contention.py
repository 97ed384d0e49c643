"""Many worker processes on one queue: every job runs exactly once."""

from collections import Counter

import pytest

import quebec
from quebec.models import ClaimedExecution, FailedExecution, Job, Process, ReadyExecution
from tests.conftest import wait_until
from tests.testapp.jobs import RecordJob
from tests.testapp.models import JobRun

pytestmark = [pytest.mark.subprocess, pytest.mark.django_db(transaction=True)]

JOBS = 2000
WORKERS = 4


def test_four_worker_processes_run_each_of_2000_jobs_exactly_once(quebec_run):
    env = {"QUEBEC_WORKER_THREADS": "5", "QUEBEC_WORKER_POLLING_INTERVAL": "0.01"}
    workers = [quebec_run("--only", "worker", "-v", "0", env=env) for _ in range(WORKERS)]
    # Enqueue once every worker polls, so that all of them compete for the same rows.
    wait_until(lambda: Process.objects.filter(kind="Worker").count() == WORKERS, timeout=60)
    handles = quebec.perform_all_later(RecordJob.build(str(index)) for index in range(JOBS))
    wait_until(
        lambda: JobRun.objects.count() >= JOBS and not ClaimedExecution.objects.exists(),
        timeout=240,
        interval=0.5,
        message=f"{JOBS} runs",
    )
    assert [worker.stop() for worker in workers] == [0] * WORKERS

    runs_per_job = Counter(JobRun.objects.values_list("job_id", flat=True))
    assert set(runs_per_job) == {handle.id for handle in handles}
    assert set(runs_per_job.values()) == {1}, "a job ran more than once"
    assert Job.objects.filter(finished_at__isnull=False).count() == JOBS
    assert not ReadyExecution.objects.exists() and not FailedExecution.objects.exists()
    pids = Counter(JobRun.objects.values_list("pid", flat=True))
    assert len(pids) == WORKERS, f"expected every process to take part, got {pids}"
