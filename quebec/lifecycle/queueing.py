"""Jobs entering the line: enqueued, due, retried or unblocked; and jobs taken out of it.

Every way into the line goes through ``place``: a job due later is scheduled; a due job is
ready unless a participant (a concurrency key without a free slot) blocks or discards it.
"""

import contextlib

from django.utils import timezone

from quebec.db import operations, write_transaction
from quebec.lifecycle import events, participants
from quebec.concurrency import ConcurrencyLimitReached
from quebec.lifecycle.concurrency import force_slots
from quebec.lifecycle import unique  # noqa: F401  (registers the unique keys' participant)
from quebec.lifecycle import batches  # noqa: F401  (registers the batches' participant, after unique keys' skips)
from quebec.lifecycle.outcome import DISCARDED, Outcome, Run
from quebec.models import (
    BlockedExecution,
    FailedExecution,
    Job,
    ReadyExecution,
    ScheduledExecution,
)

# What a job's row must carry to be put in line.
READY_FIELDS = (
    "pk",
    "queue_name",
    "priority",
    "concurrency_key",
    "class_name",
    "scheduled_at",
    "unique_key",
    "active_job_id",
    "batch",
)
# What a batch of jobs changes when they are discarded without running.
DISCARD_FIELDS = ("finished_at", "discarded_at", "updated_at")


class Placement:
    """Where each job of a batch goes: ``ready``, ``scheduled``, ``blocked`` (with when its
    wait expires), ``discarded`` on the way in, or, for a new job, ``skipped`` (not written)."""

    def __init__(self, jobs, now, force_ready=False):
        self.jobs = jobs
        self.now = now
        self.scheduled = [] if force_ready else [job for job in jobs if job.scheduled_at and job.scheduled_at > now]
        self.ready = [job for job in jobs if force_ready or not (job.scheduled_at and job.scheduled_at > now)]
        self.blocked = []
        self.discarded = []
        self.reasons = {}  # job id -> why a scheduled job waits, when not just its schedule
        self.skipped = {}  # id(job) -> the job it duplicates (a row, or a job of this batch)
        self._moved = set()

    def block(self, job, expires_at):
        self.blocked.append((job, expires_at))
        self._moved.add(id(job))

    def discard(self, job):
        job.finished_at = job.discarded_at = job.updated_at = self.now
        self.discarded.append(job)
        self._moved.add(id(job))

    def skip(self, job, holder):
        """Leave the new ``job`` unwritten: ``holder`` is the job it duplicates."""
        self.skipped[id(job)] = holder
        self._moved.add(id(job))

    def settle(self):
        if self._moved:
            self.ready = [job for job in self.ready if id(job) not in self._moved]
            if self.skipped:
                self.scheduled = [job for job in self.scheduled if id(job) not in self.skipped]

    @property
    def written(self):
        """The new jobs to write: all but the skipped."""
        return [job for job in self.jobs if id(job) not in self.skipped] if self.skipped else self.jobs


def place(jobs, using, now=None):
    """Decide where each job goes; writes nothing itself but what the participants write (the
    slots the due jobs take)."""
    return admit(Placement(jobs, now or timezone.now()), using)


def admit(placement, using):
    """Let each participant block or discard the jobs ``placement`` would make ready; those
    discarded are done."""
    for participant in participants.registered():
        participant.admit(placement, using)
        placement.settle()
    if placement.discarded:
        done(placement.discarded, using)
    return placement


def done(jobs, using):
    """Tell the participants concerned that ``jobs`` will not run again."""
    for participant in participants.registered():
        if participant.concerns(jobs):
            participant.done(jobs, using)


def _gated(jobs):
    """Whether putting ``jobs`` in line needs more than one statement: a participant takes part."""
    return any(participant.concerns(jobs) for participant in participants.registered())


def enqueue(jobs, using):
    """INSERT unsaved ``Job`` rows and put each in line: ready, scheduled or blocked; a job a
    participant skips (a duplicate of a unique job) is not written. Returns the placement."""
    ops = operations(using)
    connection = ops.connection
    if connection.get_autocommit() and not _gated(jobs) and ops.enqueues_alone(jobs):
        scope = contextlib.nullcontext()  # the insert is a transaction of its own
    else:
        # The enqueue's own transaction, or a savepoint of the caller's (an atomic block, or a
        # transaction opened by hand), so that a caller who catches a failed enqueue can go on.
        scope = write_transaction(using)
    with scope:
        placement = Placement(jobs, timezone.now())
        for participant in participants.registered():
            participant.enqueue(placement, using)
        placement.settle()
        admit(placement, using)
        written = placement.written
        if written:
            ops.insert_jobs(written, placement)
    if written:
        events.publish(events.ENQUEUED, using, jobs=written)
    _publish_discarded(placement, using)
    return placement


def put_in_line(jobs, using, placement=None):
    """Create the execution rows that put saved jobs in line (``jobs`` carry ``READY_FIELDS``)."""
    placement = placement or place(jobs, using)
    ops = operations(using)
    ops.insert_executions(placement)
    if placement.discarded:
        ops.update_rows(Job, placement.discarded, DISCARD_FIELDS)
        _publish_discarded(placement, using)
    return placement


def _publish_discarded(placement, using):
    """The jobs a full concurrency key discarded on their way into line."""
    if placement.discarded:
        events.publish(
            events.DISCARDED,
            using,
            runs=[
                Run(
                    job,
                    Outcome(
                        DISCARDED,
                        error=ConcurrencyLimitReached(f"concurrency key {job.concurrency_key} is at its limit"),
                    ),
                    applied=True,
                )
                for job in placement.discarded
            ],
        )


def dispatch_due(using, batch_size, skip_locked=True):
    """Move up to ``batch_size`` due scheduled jobs into line; returns how many moved."""
    ops = operations(using)
    with write_transaction(using):
        # SKIP LOCKED lets several dispatchers share the backlog; each row moves once because it
        # stays locked until it is deleted below.
        rows = ops.lock_due(timezone.now(), batch_size, skip_locked)
        if not rows:
            return 0
        job_ids = [row[0] for row in rows]
        ops.delete_by_pk(ScheduledExecution, job_ids)
        jobs = list(Job.objects.using(using).filter(pk__in=job_ids).only(*READY_FIELDS))
        # Due by their scheduled rows, which an operator's "run now" may have moved forward.
        put_in_line(jobs, using, admit(Placement(jobs, timezone.now(), force_ready=True), using))
    return len(rows)


def in_locked_batches(executions, action, batch_size=500):
    """Call ``action(job_ids)`` on these execution rows, a locked batch per transaction;
    returns how many. SKIP LOCKED: rows another process is acting on right now (a dispatcher
    moving them, another bulk action) are theirs; each row is acted on once."""
    done = 0
    while True:
        with write_transaction(executions.db):
            ids = list(executions.select_for_update(skip_locked=True).values_list("job_id", flat=True)[:batch_size])
            if not ids:
                return done
            action(ids)
        done += len(ids)


def discard(executions, batch_size=500, error=None):
    """Mark the jobs of these ready, scheduled, blocked or failed rows discarded, never to run;
    returns how many. ``error`` says why, to the subscribers (``quebec.cancel``'s JobCancelled)."""
    using = executions.db

    def discard_batch(job_ids):
        operations(using).delete_by_pk(executions.model, job_ids)
        now = timezone.now()
        jobs = Job.objects.using(using).filter(pk__in=job_ids)
        jobs.update(finished_at=now, discarded_at=now, updated_at=now)
        discarded = list(jobs.defer("arguments"))
        if executions.model is ReadyExecution:
            # Ready jobs leave the line unclaimed: what they hold in line (a key's slot) goes back.
            for participant in participants.registered():
                if participant.concerns(discarded):
                    participant.withdrawn(discarded, using)
        if executions.model is not FailedExecution:
            # A failed job was done when it failed for good: its batch counted it then.
            done(discarded, using)
        events.publish(
            events.DISCARDED, using, runs=[Run(job, Outcome(DISCARDED, error=error), applied=True) for job in discarded]
        )

    return in_locked_batches(executions, discard_batch, batch_size)


def retry(failed, batch_size=500):
    """Put the jobs of these failed rows back in line; returns how many."""
    using = failed.db

    def retry_batch(job_ids):
        jobs = Job.objects.using(using).filter(pk__in=job_ids)
        operations(using).delete_by_pk(FailedExecution, job_ids)
        # A retried job gets its retry attempts afresh; ``executions`` keeps counting.
        jobs.update(finished_at=None, scheduled_at=None, exception_executions={}, updated_at=timezone.now())
        revived = list(jobs.only(*READY_FIELDS))
        for participant in participants.registered():
            if participant.concerns(revived):
                participant.revived(revived, using)
        put_in_line(revived, using)

    return in_locked_batches(failed, retry_batch, batch_size)


def run_now(scheduled, batch_size=500):
    """Make these scheduled jobs due at once; the dispatcher moves them. Returns how many."""
    using = scheduled.db
    now = timezone.now()
    done = 0
    while True:
        # Only the due time changes: the dispatcher's own path (and its locking) does the move.
        with write_transaction(using):
            ids = list(scheduled.filter(scheduled_at__gt=now).values_list("job_id", flat=True)[:batch_size])
            if not ids:
                return done
            done += ScheduledExecution.objects.using(using).filter(pk__in=ids).update(scheduled_at=now)
            Job.objects.using(using).filter(pk__in=ids).update(scheduled_at=now, updated_at=now)


def unblock(blocked, batch_size=500):
    """Make the jobs of these blocked rows ready now, over their key's limit; returns how many.

    Each takes a slot of its key even when none is free (the count goes below zero), so the slot
    it gives back when it ends keeps the accounting right.
    """
    using = blocked.db

    def unblock_batch(job_ids):
        jobs = list(Job.objects.using(using).filter(pk__in=job_ids).only(*READY_FIELDS).order_by("concurrency_key"))
        force_slots(jobs, using)
        operations(using).delete_by_pk(BlockedExecution, job_ids)
        put_in_line(jobs, using, Placement(jobs, timezone.now(), force_ready=True))

    return in_locked_batches(blocked, unblock_batch, batch_size)


def release_blocked(key, using):
    """Move the next job blocked on ``key`` to ready if the key has a free slot; True if one did."""
    ops = operations(using)
    with write_transaction(using):
        rows = ops.lock_blocked([(key, 1)])
        if not rows:
            return False
        job = Job.objects.using(using).only(*READY_FIELDS).get(pk=rows[0][0])
        placement = place([job], using)
        if not placement.ready:
            return False  # no free slot: it stays blocked
        ops.delete_by_pk(BlockedExecution, [job.pk])
        ops.insert_executions(placement)
    return True


def release_expired(using):
    """Retry the keys of jobs blocked past their TTL (a holder may have died); returns how many moved."""
    expired = BlockedExecution.objects.using(using).filter(expires_at__lt=timezone.now()).order_by("concurrency_key")
    keys = list(expired.values_list("concurrency_key", flat=True).distinct()[:1000])
    moved = 0
    for key in keys:
        while release_blocked(key, using):
            moved += 1
    return moved
