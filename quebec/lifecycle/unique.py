"""Unique jobs as a lifecycle participant: a key taken by the enqueue, given back by the end.

A unique job's key is a row of ``UniqueKey`` whose primary key is the key itself, taken in the
enqueue's transaction by an INSERT that does nothing when another job holds it: two concurrent
enqueues of one key cannot both write a job. The row is deleted, in the transaction that ends
the job, when it finishes, is discarded or fails for good; or when it starts, for classes whose
``unique_until`` is ``"started"``. A retry or a release keeps it. Past ``unique_for`` the next
enqueue of the key takes it over.
"""

from datetime import timedelta

from quebec.db import operations
from quebec.lifecycle.participants import Participant, register
from quebec.models import Job
from quebec.registry import UnknownJobClass, find_job_class
from quebec.unique import DuplicateJob, UniqueConflict, unique_seconds


def _class_of(job):
    job_class = getattr(job, "job_class", None)
    if job_class is None:
        try:
            job_class = find_job_class(job.class_name)
        except UnknownJobClass:
            return None
    return job_class


class UniqueKeys(Participant):
    """A unique job is written only if it takes its key, and gives the key back when it ends."""

    def concerns(self, jobs):
        return any(job.unique_key for job in jobs)

    def enqueue(self, placement, using):
        """Take the keys of the new unique jobs; skip those whose key another job holds (one
        written before, or an earlier job of this batch)."""
        first = {}
        for job in placement.jobs:
            if job.unique_key:
                first.setdefault(job.unique_key, job)
        if not first:
            return
        now = placement.now
        expiries = {
            job_class: None if seconds is None else now + timedelta(seconds=seconds)
            for job_class in {job.job_class for job in first.values()}
            for seconds in [unique_seconds(job_class)]
        }
        rows = [(key, first[key].active_job_id, expiries[first[key].job_class]) for key in sorted(first)]
        holders = operations(using).take_unique_keys(rows, now)
        lost = {key: holder for key, holder in holders.items() if holder != first[key].active_job_id}
        written = _holder_rows(lost.values(), using)
        for job in placement.jobs:
            key = job.unique_key
            if not key or first[key] is job and key not in lost:
                continue
            holder = written.get(lost[key]) if key in lost else first[key]
            if job.job_class.unique_on_conflict == UniqueConflict.Raise:
                raise DuplicateJob(
                    f"{job.job_class.__qualname__}: unique key {key!r} is held by "
                    f"{'job #%s' % holder.pk if holder is not None and holder.pk else 'another job'}",
                    key=key,
                    job_id=getattr(holder, "pk", None),
                )
            placement.skip(job, holder)

    def started(self, job, using):
        if job.unique_key and getattr(_class_of(job), "unique_until", None) == "started":
            operations(using).release_unique_keys([(job.unique_key, job.active_job_id)])

    def done(self, jobs, using):
        operations(using).release_unique_keys(
            sorted({(job.unique_key, job.active_job_id) for job in jobs if job.unique_key})
        )


def _holder_rows(active_job_ids, using):
    """The written jobs holding keys, by active job id (the job's row, for the caller's handle)."""
    if not active_job_ids:
        return {}
    rows = Job.objects.using(using).filter(active_job_id__in=set(active_job_ids)).defer("arguments")
    return {job.active_job_id: job for job in rows}


UNIQUE_KEYS = register(UniqueKeys())
