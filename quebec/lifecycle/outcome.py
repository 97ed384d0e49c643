"""How a run ended, and what that writes on its job."""

import dataclasses
import json

from django.utils import timezone

FINISHED, FAILED, RETRY, DISCARDED, RESCHEDULED = "finished", "failed", "retry", "discarded", "rescheduled"
# A continuable job stopped at a checkpoint (its worker is stopping) or raised after it
# advanced: back in line with its progress, at ``retry_at`` or at once.
RESUMED = "resumed"


@dataclasses.dataclass
class Outcome:
    state: str
    result: object = None
    error: BaseException | None = None
    retry_at: object = None  # datetime of the next run, for RETRY and RESCHEDULED (and RESUMED, or None: now)
    reason: str = ""  # why a RESCHEDULED job waits


@dataclasses.dataclass
class Run:
    """One run of a claimed job: the ``Job`` row (its counters already updated) and its outcome."""

    job: object
    outcome: Outcome
    elapsed: float = 0.0  # seconds
    ended_at: object = dataclasses.field(default_factory=timezone.now)
    applied: bool = False  # the job carries its outcome (a retried write must not apply it twice)
    # Seconds from the later of enqueue and due time to the start; None for a run not measured
    # (one a dead process never finished). Measured before the outcome moves ``scheduled_at``.
    waited: float | None = None

    @property
    def ends_for_good(self):
        """Finished or discarded: the job will not run again."""
        return self.outcome.state in (FINISHED, DISCARDED)


def waited(job, started_at):
    """Seconds ``job`` waited for a run that started at ``started_at``: since it was due, or
    enqueued when later."""
    due = job.created_at if job.scheduled_at is None else max(job.created_at, job.scheduled_at)
    return max((started_at - due).total_seconds(), 0.0)


def storable_return_value(value):
    """``value`` if it can be stored as JSON, else None (a job may return anything)."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError):
        return None


def apply(run, updated_at):
    """Set on ``run.job`` the fields its outcome changes (``END_FIELDS`` of the row)."""
    job, outcome, now = run.job, run.outcome, run.ended_at
    job.updated_at = updated_at
    if run.applied:
        return
    run.applied = True
    if outcome.state == FINISHED:
        job.finished_at = now
        job.return_value = storable_return_value(outcome.result)
    elif outcome.state == DISCARDED:
        job.finished_at = job.discarded_at = now
    elif outcome.state == RETRY:
        job.scheduled_at = outcome.retry_at
    elif outcome.state == RESUMED and outcome.retry_at is not None:
        job.scheduled_at = outcome.retry_at
    elif outcome.state == RESCHEDULED:
        job.scheduled_at = outcome.retry_at
        job.executions -= 1  # a throttled run is no execution (the worker counted it when it began)
