"""Cancelling a job: discarded at once if it has not started, asked to stop if it runs.

A job waiting in line (ready, scheduled, blocked, or failed) is discarded through
``queueing.discard``, the lifecycle's way out of the line. A running job cannot be stopped from
outside its thread: the request is written on its row, and the job hears of it at its next
checkpoint or ``progress()`` call (``quebec.JobCancelled``, then discarded through the end of
its run), or by reading ``self.cancel_requested``. A job that never does stays pending.
"""

from typing import Final, Literal

from django.utils import timezone

DISCARDED: Final = "discarded"
REQUESTED: Final = "requested"
ATTEMPTS = 3  # a job moving between two tables (dispatched, claimed) is looked for again


def cancel(job_id: int, by: str = "code", using: str | None = None) -> Literal["discarded", "requested"] | None:
    """Cancel job ``job_id``; returns ``"discarded"`` (it had not started: it never will),
    ``"requested"`` (it runs: it stops at its next checkpoint), or None (no such job waiting or
    running: finished, discarded, or unknown). ``by`` names who asked, shown on its page.
    ``using`` defaults to the database of the ``quebec.routing.use`` block, else the default."""
    from quebec.errors import JobCancelled
    from quebec.lifecycle.queueing import discard
    from quebec.models import (
        BlockedExecution,
        ClaimedExecution,
        FailedExecution,
        Job,
        ReadyExecution,
        ScheduledExecution,
    )
    from quebec import routing
    from quebec.registry import default

    using = using or routing.current() or default.using
    by = str(by)[:255] or "code"
    marked = Job.objects.using(using).filter(pk=job_id, finished_at__isnull=True)
    if not marked.update(cancel_requested_at=timezone.now(), cancel_requested_by=by):
        return None
    for _ in range(ATTEMPTS):
        for model in (ReadyExecution, ScheduledExecution, BlockedExecution, FailedExecution):
            rows = model.objects.using(using).filter(pk=job_id)
            if discard(rows, error=JobCancelled(f"cancelled by {by}")):
                return DISCARDED
        if ClaimedExecution.objects.using(using).filter(pk=job_id).exists():
            return REQUESTED
    if Job.objects.using(using).filter(pk=job_id, finished_at__isnull=False).exists():
        return None  # it ended while we looked
    return REQUESTED  # moving all along: whoever runs it next hears of the request
