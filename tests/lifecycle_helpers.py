"""Moving a test's jobs through the lifecycle the way a worker does (this module holds no tests)."""

import uuid

from quebec.lifecycle import running
from quebec.lifecycle.outcome import FAILED, FINISHED, Outcome, Run
from quebec.models import ClaimedExecution, Process


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
