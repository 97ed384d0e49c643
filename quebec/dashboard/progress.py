"""What a job's page and the in-progress list show of its progress, steps and cancellation."""

import dataclasses

from django.utils.dateparse import parse_datetime

from quebec.registry import UnknownJobClass, find_job_class


@dataclasses.dataclass
class ProgressView:
    done: object
    total: object
    message: str
    at: object
    percent: float | None  # 0-100 when done and total are numbers

    @classmethod
    def of(cls, job):
        reported = job.progress if isinstance(job.progress, dict) else None
        if reported is None:
            return None
        done, total = reported.get("done"), reported.get("total")
        percent = None
        if _number(done) and _number(total) and total > 0:
            percent = round(max(0.0, min(100.0, 100.0 * done / total)), 1)
        at = reported.get("at")
        return cls(
            done, total, reported.get("message") or "", parse_datetime(at) if isinstance(at, str) else None, percent
        )


@dataclasses.dataclass
class StepsView:
    completed: list
    current: str | None
    cursor: object
    to_come: list  # from the class's ``steps``, when it declares them
    resumptions: int

    @classmethod
    def of(cls, job):
        stored = job.continuation if isinstance(job.continuation, dict) else None
        if stored is None:
            return None
        completed = [name for name in stored.get("completed") or [] if isinstance(name, str)]
        current = stored.get("current") if isinstance(stored.get("current"), list) else None
        name, cursor = (current + [None, None])[:2] if current else (None, None)
        seen = {*completed, name}
        return cls(
            completed,
            name,
            cursor,
            [step for step in _declared_steps(job) if step not in seen],
            stored.get("resumptions") or 0,
        )


@dataclasses.dataclass
class CancelView:
    by: str
    at: object
    pending: bool  # asked for a running job that has not stopped yet
    too_late: bool  # the job ended otherwise (finished, failed) before it heard of the request


def describe(job):
    """The progress bar, steps and cancellation request of ``job`` (annotated with
    ``status``); reads only the job's row."""
    cancel = None
    if job.cancel_requested_at is not None:
        cancel = CancelView(
            job.cancel_requested_by or "code",
            job.cancel_requested_at,
            pending=job.status == "claimed",
            too_late=job.status in ("finished", "failed"),
        )
    return {"progress": ProgressView.of(job), "steps": StepsView.of(job), "cancel": cancel}


def _declared_steps(job):
    # Only among the classes this process registered: a row never makes Quebec import code.
    try:
        steps = getattr(find_job_class(job.class_name), "steps", None)
    except UnknownJobClass:
        return []
    return [step for step in steps or () if isinstance(step, str)]


def _number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)
