"""What the job detail page says about one job: its state, why it is there, how it got there."""

import dataclasses
import datetime

from django.utils import formats, timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from quebec.dashboard import stats
from quebec.models import EXECUTION_STATES, Pause, RecurringExecution, UniqueKey
from quebec.registry import UnknownJobClass, default


@dataclasses.dataclass
class JobState:
    status: str | None
    reason: str
    execution: object = None  # the row of the state table that holds the job, if any
    retries: list = dataclasses.field(default_factory=list)  # (exceptions, attempts used, attempts allowed)
    recurring: object = None  # the recurring run that enqueued the job, if any
    holds_unique_key: bool = False  # whether the job still holds its unique key (if it has one)


def describe(job):
    """The state of ``job`` (annotated with ``status``) and a sentence saying why; at most 3 queries,
    and one more for a unique job."""
    model = EXECUTION_STATES.get(job.status)
    execution = None
    if model is not None:
        rows = model.objects.filter(pk=job.pk)
        execution = (rows.select_related("process") if job.status == "claimed" else rows).first()
    return JobState(
        status=job.status,
        reason=_reason(job, execution),
        execution=execution,
        retries=retries(job),
        recurring=RecurringExecution.objects.filter(job_id=job.pk).first(),
        holds_unique_key=bool(job.unique_key)
        and UniqueKey.objects.held().filter(key=job.unique_key, active_job_id=job.active_job_id).exists(),
    )


OUTCOME_LABELS = {
    "finished": gettext_lazy("Finished"),
    "failed": gettext_lazy("Failed"),
    "retry": gettext_lazy("Raised, retried"),
    "discarded": gettext_lazy("Discarded"),
    "resumed": gettext_lazy("Interrupted, back in line"),
}


@dataclasses.dataclass
class Attempt:
    """One run of a job, as the worker recorded it in ``Job.attempts``."""

    number: object
    process: str
    started_at: datetime.datetime | None
    finished_at: datetime.datetime | None
    outcome: str
    error: dict

    @property
    def outcome_label(self):
        return OUTCOME_LABELS.get(self.outcome, self.outcome or "?")

    @property
    def duration(self):
        if self.started_at is None or self.finished_at is None:
            return "?"
        return format_run_time(self.finished_at - self.started_at)


def attempts(job):
    """The job's runs, newest first; entries written by hand or by older versions may lack keys."""
    return [_attempt(entry) for entry in reversed(job.attempts or []) if isinstance(entry, dict)]


def _attempt(entry):
    error = entry.get("error")
    return Attempt(
        number=entry.get("number", "?"),
        process=entry.get("process") or "?",
        started_at=_moment(entry.get("started_at")),
        finished_at=_moment(entry.get("finished_at")),
        outcome=entry.get("outcome") or "",
        error=error if isinstance(error, dict) else {},
    )


def _moment(text):
    try:
        return parse_datetime(text) if isinstance(text, str) else None
    except ValueError:  # well formatted but out of range, such as a 25th hour
        return None


def format_run_time(duration):
    """``"35 ms"``, ``"2.4 s"``, then the two largest units: runs are often shorter than a second."""
    seconds = duration.total_seconds()
    if seconds < 1:
        return _("%(milliseconds).0f ms") % {"milliseconds": max(seconds, 0) * 1000}
    if seconds < 60:
        return _("%(seconds).1f s") % {"seconds": seconds}
    return stats.format_duration(duration)


def retries(job):
    """For each retry strategy the job has used: its exceptions, attempts so far and allowed."""
    try:
        job_class = default.resolve(job.class_name)
    except UnknownJobClass:
        return []
    used = job.exception_executions or {}
    return [
        (", ".join(error.__qualname__ for error in strategy.exceptions), used[strategy.key], strategy.attempts)
        for strategy in job_class.retry_on
        if used.get(strategy.key)
    ]


def _when(moment):
    # Date and time to the second, in a form that never ends in a period of its own (English
    # "p.m." did), since the sentences around it end with one.
    return formats.date_format(timezone.localtime(moment), "Y-m-d H:i:s T") if moment else "?"


def _reason(job, execution):
    status = job.status
    if status == "finished":
        return _("Finished at %(at)s.") % {"at": _when(job.finished_at)}
    if status == "discarded":
        return _("Discarded at %(at)s: it will not run again.") % {"at": _when(job.discarded_at)}
    if execution is None:
        return _("No state row holds this job right now: it is moving between states.")
    return REASONS[status](job, execution)


def _ready(job, execution):
    reason = _("Waiting in queue %(queue)s since %(since)s.") % {
        "queue": job.queue_name,
        "since": _when(execution.created_at),
    }
    if Pause.objects.filter(queue_name=job.queue_name).exists():
        reason += " " + _("The queue is paused: no worker takes it until the queue is resumed.")
    return reason


def _scheduled(job, execution):
    reason = _("Scheduled for %(at)s.") % {"at": _when(execution.scheduled_at)}
    if execution.reason:  # e.g. held back by a rate limit
        reason += " " + _("Held back by the %(reason)s.") % {"reason": execution.reason}
    for exceptions, used, allowed in retries(job):
        reason += " " + _("Attempt %(next)s of %(allowed)s after %(errors)s.") % {
            "next": used + 1,
            "allowed": allowed,
            "errors": exceptions,
        }
    return reason


def _claimed(job, execution):
    process = execution.process
    if process is None:
        return _("Claimed by a process that is gone; it goes back to ready or fails when that process is pruned.")
    return _("Running on %(name)s (host %(host)s, pid %(pid)s) since %(since)s.") % {
        "name": process.name,
        "host": process.hostname or "?",
        "pid": process.pid,
        "since": _when(execution.created_at),
    }


def _blocked(job, execution):
    return _("Blocked on concurrency key %(key)s until a slot frees up (the block expires at %(expires)s).") % {
        "key": execution.concurrency_key,
        "expires": _when(execution.expires_at),
    }


def _failed(job, execution):
    return _("Failed at %(at)s on attempt %(attempt)s with %(error)s.") % {
        "at": _when(execution.created_at),
        "attempt": execution.attempt,
        "error": execution.exception_class,
    }


REASONS = {"ready": _ready, "scheduled": _scheduled, "claimed": _claimed, "blocked": _blocked, "failed": _failed}
