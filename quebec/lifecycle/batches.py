"""Batches as a lifecycle participant: members counted as they join and end, callbacks enqueued
in the transaction that ends the last one.

A batch's row carries its counters. A member joining adds to ``total_jobs`` and
``pending_jobs`` in the transaction that writes it (or, for the block that builds the batch,
once, when the block is left: the batch is ``pending`` until then and nothing can end it). A
member's end takes it off ``pending_jobs`` in the transaction that ends it: one UPDATE per batch
per transition, which locks the batch's row until that transaction commits. The transaction
whose UPDATE leaves a running batch with no pending member sets ``finished_at`` and enqueues the
due callbacks; any other waits for the lock, then finds the batch finished and changes nothing.
That row lock is what makes each callback fire exactly once, however many workers end members
at the same moment.

A job is a member when its ``batch`` is set. A callback is no member: its batch rides in its
arguments (``quebec.batches.CALLBACK_KEY``), for ``self.batch``.
"""

import logging
import uuid

from django.db import DatabaseError
from django.db.models import Count, Exists, F, OuterRef
from django.utils import timezone

from quebec.batches import CALLBACK_KEY, current
from quebec.db import job_rows, operations, write_transaction
from quebec.errors import BatchAlreadyFinished
from quebec.lifecycle.participants import Participant, register
from quebec.models import Batch, BatchStatus, FailedExecution, Job
from quebec.models.batches import CALLBACKS

logger = logging.getLogger("quebec.batches")


def create(description, metadata, callbacks, using):
    """The row of a batch being built (``pending``)."""
    now = timezone.now()
    return Batch.objects.using(using).create(
        description=description or "", metadata=metadata or {}, created_at=now, updated_at=now, **callbacks
    )


def start(row, added, using):
    """The block that built ``row`` is left with ``added`` members written: it runs, or, with
    none pending (empty, or every member discarded on its way in), finishes at once."""
    Batch.objects.using(using).filter(pk=row.pk).update(
        status=BatchStatus.RUNNING,
        total_jobs=F("total_jobs") + added,
        pending_jobs=F("pending_jobs") + added,
        updated_at=timezone.now(),
    )
    _finish_due([row.pk], using)
    row.refresh_from_db()


class Batches(Participant):
    """Count members in as they are written and out as they end; fire the callbacks once."""

    def concerns(self, jobs):
        return any(job.batch_id for job in jobs)

    def enqueue(self, placement, using):
        """Add the written members to their batches' counters: at once, or, for the block
        building the batch, when it is left."""
        joining = _by_batch(placement.written)
        if not joining:
            return
        scope = current()
        for batch_id, members in sorted(joining.items()):
            if scope is not None and scope.building and scope.batch_id == batch_id:
                scope.added += len(members)
            elif not _add(batch_id, len(members), using):
                raise BatchAlreadyFinished(f"batch #{batch_id} has finished; no job can join it")

    def done(self, jobs, using):
        """Take members that will not run again off their batches; finish those left with none."""
        ended = {}
        for job in jobs:
            if job.batch_id:
                completed, failed = ended.get(job.batch_id, (0, 0))
                # A job that failed for good has no finished_at; finished and discarded ones do.
                if job.finished_at is None:
                    failed += 1
                else:
                    completed += 1
                ended[job.batch_id] = (completed, failed)
        if ended:
            counts = [(batch_id, *ended[batch_id]) for batch_id in sorted(ended)]
            _finish_due(operations(using).count_batch_ends(counts, timezone.now()), using)

    def revived(self, jobs, using):
        """Failed members are back in line (retried by an operator): pending again."""
        failed = _by_batch(jobs)
        for batch_id in sorted(failed):
            Batch.objects.using(using).filter(pk=batch_id, finished_at__isnull=True).update(
                pending_jobs=F("pending_jobs") + len(failed[batch_id]),
                failed_jobs=F("failed_jobs") - len(failed[batch_id]),
                updated_at=timezone.now(),
            )


def _add(batch_id, count, using):
    """Add ``count`` members to a batch that has not finished; False if it has."""
    return (
        Batch.objects.using(using)
        .filter(pk=batch_id, finished_at__isnull=True)
        .update(total_jobs=F("total_jobs") + count, pending_jobs=F("pending_jobs") + count, updated_at=timezone.now())
    )


def one_batch(jobs):
    """(batch id, member ids) when the members among ``jobs`` are all of one batch; None when
    there are none, or several batches (whose rows one statement would lock in no set order)."""
    batch_ids = {job.batch_id for job in jobs if job.batch_id}
    if len(batch_ids) != 1:
        return None
    (batch_id,) = batch_ids
    return batch_id, [job.pk for job in jobs if job.batch_id]


def finish(batch_id, using):
    """Finish batch ``batch_id`` if it runs with no member pending, in a transaction of its own:
    for a count that committed alone (PostgreSQL's one-statement end). Its row's lock and
    ``finished_at`` let one transaction only do it; if this one never runs (the worker died),
    the dispatcher's check does it."""
    try:
        with write_transaction(using):
            if Batch.objects.using(using).select_for_update().filter(pk=batch_id, finished_at__isnull=True).exists():
                _finish_due([batch_id], using)
    except DatabaseError:
        # The ends and the claim committed: the caller must get its jobs. The check finishes it.
        logger.exception("Batch #%s: could not finish it now; the dispatcher's check will", batch_id)


def _by_batch(jobs):
    members = {}
    for job in jobs:
        if job.batch_id:
            members.setdefault(job.batch_id, []).append(job)
    return members


def _finish_due(batch_ids, using):
    """Finish the batches of ``batch_ids`` that run with no member pending, and enqueue their
    callbacks. Called with their rows locked by this transaction's UPDATE of them."""
    if not batch_ids:
        return []
    due = Batch.objects.using(using).filter(
        pk__in=batch_ids, status=BatchStatus.RUNNING, pending_jobs__lte=0, finished_at__isnull=True
    )
    finished = []
    for row in due.order_by("pk"):
        _finish(row, using)
        finished.append(row.pk)
    return finished


def _finish(row, using):
    now = timezone.now()
    status = BatchStatus.FAILED if row.failed_jobs > 0 else BatchStatus.SUCCEEDED
    names = [
        name
        for name in CALLBACKS
        if getattr(row, name) and (name == "on_finish" or (name == "on_success") == (status == BatchStatus.SUCCEEDED))
    ]
    fired = {}
    if names:
        from quebec.lifecycle.queueing import enqueue

        jobs = [_callback_job(row, getattr(row, name), now) for name in names]
        enqueue(jobs, using)
        fired = {name: job.pk for name, job in zip(names, jobs, strict=True)}
    Batch.objects.using(using).filter(pk=row.pk, finished_at__isnull=True).update(
        status=status, finished_at=now, updated_at=now, fired=fired, pending_jobs=0
    )
    logger.info("Batch #%s %s: %s", row.pk, status, ", ".join(names) or "no callback")


def _callback_job(row, stored, now):
    """The ``Job`` a stored callback enqueues: no member, but its arguments name the batch."""
    return job_rows.NEW_JOB.new(
        queue_name=stored["queue_name"],
        class_name=stored["class_name"],
        arguments={**stored["arguments"], CALLBACK_KEY: row.pk},
        priority=stored["priority"],
        active_job_id=uuid.uuid4(),
        executions=0,
        exception_executions={},
        attempts=[],
        concurrency_key=stored.get("concurrency_key"),
        unique_key=stored.get("unique_key"),
        scheduled_at=None,
        created_at=now,
        updated_at=now,
        batch_id=None,
    )


# -- The dispatcher's check ---------------------------------------------------------------------


def repair(using, limit=100):
    """Repair running batches whose counters disagree with their members (and finish those left
    with none pending); returns the ids repaired. Each is rechecked with its row locked, so a
    member ending meanwhile is counted once: by its own transaction or by this one."""
    running = Batch.objects.using(using).filter(status=BatchStatus.RUNNING, finished_at__isnull=True)
    rows = running.order_by("pk").values_list("pk", "total_jobs", "pending_jobs", "completed_jobs", "failed_jobs")
    counters = {row[0]: row[1:] for row in rows[:limit]}
    if not counters:
        return []
    actual = _pending_members(using, counters)
    repaired = []
    for batch_id, (total, pending, completed, failed) in sorted(counters.items()):
        # A batch with none pending that has not finished: its last count committed without it.
        disagree = pending <= 0 or pending != actual.get(batch_id, 0) or total != pending + completed + failed
        if disagree and _repair_one(batch_id, using):
            repaired.append(batch_id)
    return repaired


def _pending_members(using, batch_ids):
    """{batch id: members that have not ended} (neither finished nor failed)."""
    failed = FailedExecution.objects.using(using).filter(job=OuterRef("pk"))
    rows = (
        Job.objects.using(using)
        .filter(batch__in=list(batch_ids), finished_at__isnull=True)
        .exclude(Exists(failed))
        .values("batch")
        .annotate(n=Count("pk"))
        .values_list("batch", "n")
    )
    return dict(rows)


def _repair_one(batch_id, using):
    with write_transaction(using):
        row = Batch.objects.using(using).select_for_update().filter(pk=batch_id, finished_at__isnull=True).first()
        if row is None or row.status != BatchStatus.RUNNING:
            return False
        pending = _pending_members(using, [batch_id]).get(batch_id, 0)
        members = Job.objects.using(using).filter(batch=batch_id)
        failed_now = FailedExecution.objects.using(using).filter(job__batch=batch_id).count()
        total = max(row.total_jobs, members.count())
        failed = max(row.failed_jobs, failed_now)
        fixed = {
            "total_jobs": total,
            "pending_jobs": pending,
            "failed_jobs": failed,
            "completed_jobs": max(total - pending - failed, 0),
        }
        before = {name: getattr(row, name) for name in fixed}
        if before != fixed:
            Batch.objects.using(using).filter(pk=batch_id).update(**fixed, updated_at=timezone.now())
            logger.warning("Batch #%s: counters %s disagreed with its members; repaired to %s", batch_id, before, fixed)
        finished = _finish_due([batch_id], using)
        if finished and before == fixed:
            logger.warning("Batch #%s had no member pending but had not finished: finished now", batch_id)
    return before != fixed or bool(finished)


BATCHES = register(Batches())
