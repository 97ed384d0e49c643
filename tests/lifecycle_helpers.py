"""Moving a test's jobs through the lifecycle the way a worker does (this module holds no tests)."""

import threading
import uuid

from django.db import connections

from quebec.lifecycle import running
from quebec.lifecycle.outcome import FAILED, FINISHED, Outcome, Run
from quebec.models import ClaimedExecution, Job, Process, ReadyExecution
from tests.testapp.jobs import RecordJob


def claim_job(job_id, process):
    """Claim the ready job ``job_id`` for ``process``; the other jobs claimed on the way go back."""
    claimed = running.claim("default", ["*"], 10_000, process.pk)
    others = [job.pk for job in claimed if job.pk != job_id]
    if others:
        running.release(ClaimedExecution.objects.filter(job_id__in=others))
    [job] = [job for job in claimed if job.pk == job_id]
    return job


def end(job, process, outcome, preserve=True):
    """Record how a run of the claimed ``job`` ended; True when it was recorded."""
    return bool(running.end([Run(job, outcome)], process.pk, preserve, "default"))


def finish(job, process, preserve=True, result=None):
    return end(job, process, Outcome(FINISHED, result=result), preserve)


def fail(handle, message="boom"):
    """Make ``handle``'s job failed the way a worker does: claim it, then record the error."""
    process = Process.objects.register("Worker", f"w-{uuid.uuid4().hex}")
    job = claim_job(handle.id, process)
    running.start(job, process.name, "default")
    end(job, process, Outcome(FAILED, error=ValueError(message)))
    Process.objects.filter(pk=process.pk).delete()
    return handle


def enqueue_from_threads(threads=6, per_thread=40):
    """``perform_later`` from ``threads`` threads at once, ``per_thread`` jobs each; checks that
    every handle's id is its own job's and that each job has exactly one ready row."""
    handles = {}

    def enqueue(thread):
        try:
            for index in range(per_thread):
                handles[(thread, index)] = RecordJob.perform_later(f"{thread}-{index}")
        finally:
            connections.close_all()

    started = [threading.Thread(target=enqueue, args=(thread,)) for thread in range(threads)]
    for thread in started:
        thread.start()
    for thread in started:
        thread.join(60)
    assert len(handles) == threads * per_thread
    arguments = dict(Job.objects.values_list("id", "arguments"))
    assert {handle.id: arguments[handle.id]["args"] for handle in handles.values()} == {
        handle.id: [f"{thread}-{index}"] for (thread, index), handle in handles.items()
    }
    assert sorted(ReadyExecution.objects.values_list("job_id", flat=True)) == sorted(arguments)
