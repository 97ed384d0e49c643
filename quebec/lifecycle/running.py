"""Jobs running: claimed by a worker process, started, ended, or released back to ready.

``end_and_claim`` is the one place a run ends, whatever its outcome, database or class: it
removes the claim (the ownership check), writes the job's row, lets the participants give back
what the job held, and puts the job where its outcome sends it (failed, or back in line for a
retry). A worker records its successful runs in batches with its next claim; on PostgreSQL,
without participants, that whole transaction is one statement.
"""

import contextlib

from django.utils import timezone

from quebec import conf
from quebec.db import operations, write_transaction
from quebec.errors import describe_error
from quebec.lifecycle import batches, events, logs, outcome, participants, stats  # noqa: F401  (logs: the log subscriber)
from quebec.lifecycle.queueing import Placement, admit, done, put_in_line
from quebec.models import ClaimedExecution, Job

_EVENTS = {
    outcome.FINISHED: events.FINISHED,
    outcome.DISCARDED: events.DISCARDED,
    outcome.FAILED: events.FAILED,
    outcome.RETRY: events.RETRIED,
    outcome.RESCHEDULED: events.RESCHEDULED,
    outcome.RESUMED: events.RESUMED,
}


def claim(using, selectors, limit, process_id, skip_locked=True):
    """Claim up to ``limit`` ready jobs for ``process_id``; returns their ``Job`` rows in order."""
    return end_and_claim(using, [], process_id, True, selectors, limit, skip_locked)[1]


def end(runs, process_id, preserve, using, buffer=None):
    """Record how ``runs`` of jobs claimed by ``process_id`` ended; returns the runs recorded
    (a run whose claim was released or pruned meanwhile is left untouched)."""
    return end_and_claim(using, runs, process_id, preserve, buffer=buffer)[0]


def end_and_claim(using, runs, process_id, preserve, selectors=(), limit=0, skip_locked=True, buffer=None):
    """Record the ends of ``runs`` and claim up to ``limit`` jobs, as one transaction; returns
    (runs recorded, jobs claimed).

    The rollups of the runs recorded go to ``buffer`` (a worker's ``stats.Buffer``), and the
    transaction writes those the buffer has held long enough. Without a buffer they are written
    in the transaction that ends the runs."""
    ops = operations(using)
    gate = _claim_gate(using) if limit else None
    if not runs and not limit:
        return [], []
    now = timezone.now()
    for run in runs:
        outcome.apply(run, updated_at=now)
    deleted = [run.job for run in runs if run.ends_for_good and not preserve]
    written = [run.job for run in runs if not (run.ends_for_good and not preserve)]
    one_statement = ops.ends_and_claims_in_one_statement(selectors, gate)
    counted = _counted_batch(runs, ops) if one_statement and runs else None
    alone = one_statement and (counted is not None or not _concerned(runs))
    rolled_up = conf.get().stats
    buffer = buffer if rolled_up else None
    # Unbuffered rollups are written after the statement, in its transaction.
    in_transaction = not alone or (rolled_up and buffer is None and bool(runs))
    due = False
    rollups = buffer.take() if buffer is not None else ()
    try:
        with write_transaction(using) if in_transaction else contextlib.nullcontext():
            # Alone, the statement adds the rollups after all its other writes (an upsert no
            # other part of it reads runs last).
            if counted is not None:
                owned, claimed, due = ops.end_count_and_claim(
                    written, deleted, process_id, selectors, limit, skip_locked, counted, rollups if alone else ()
                )
            else:
                owned, claimed = ops.end_and_claim(
                    written, deleted, process_id, selectors, limit, skip_locked, gate, rollups if alone else ()
                )
            recorded = [run for run in runs if run.job.pk in owned]
            if recorded and not alone:
                _after_end(recorded, using)
            # The rollups' rows are the last a transaction locks: taken before a batch's or a
            # semaphore's row, they could close a cycle with a transaction taking them after.
            if rollups and not alone:
                ops.add_job_stats(rollups)
            if rolled_up and buffer is None and recorded:
                stats.record(recorded, now, using)
            _publish(recorded, claimed, process_id, using)
    except BaseException:
        if buffer is not None:
            buffer.put_back(rollups)
        raise
    if buffer is not None:
        buffer.add(recorded, now)
    if due:
        batches.finish(counted[0], using)
    return recorded, claimed


def _claim_gate(using):
    for participant in participants.registered():
        gate = participant.claim_gate(using)
        if gate is not None:
            return gate
    return None


def _counted_batch(runs, ops):
    """(batch id, member ids) when ending ``runs`` takes only writing their rows and counting
    them off one batch, which the one statement does as well; else None."""
    if not ops.counts_batch_in_statement:
        return None
    jobs = [run.job for run in runs]
    counted = batches.one_batch(jobs)  # first: runs without a batch pay no more than this
    if counted is None or any(run.outcome.state not in (outcome.FINISHED, outcome.DISCARDED) for run in runs):
        return None
    others = (participant for participant in participants.registered() if participant is not batches.BATCHES)
    return None if any(participant.concerns(jobs) for participant in others) else counted


def _concerned(runs):
    """Whether ending ``runs`` takes more than writing their rows."""
    jobs = [run.job for run in runs]
    return any(run.outcome.state not in (outcome.FINISHED, outcome.DISCARDED) for run in runs) or any(
        participant.concerns(jobs) for participant in participants.registered()
    )


def _after_end(runs, using):
    """What follows the end of recorded runs, in their transaction: the participants give back
    what the jobs held, then each job goes where its outcome sends it."""
    jobs = [run.job for run in runs]
    for participant in participants.registered():
        if participant.concerns(jobs):
            participant.ended(jobs, using)
    over = [run.job for run in runs if run.outcome.state in (outcome.FINISHED, outcome.DISCARDED, outcome.FAILED)]
    if over:
        done(over, using)
    failed = [run for run in runs if run.outcome.state == outcome.FAILED]
    if failed:
        operations(using).insert_failures(
            [run.job for run in failed], {run.job.pk: describe_error(run.outcome.error) for run in failed}
        )
    again = [run for run in runs if run.outcome.state in (outcome.RETRY, outcome.RESCHEDULED, outcome.RESUMED)]
    if again:
        placement = Placement([run.job for run in again], timezone.now())
        placement.reasons = {run.job.pk: run.outcome.reason for run in again}
        if any(run.outcome.state == outcome.RESCHEDULED for run in again):
            # A throttled job waits for its window in the scheduled table, even if it is due.
            placement.scheduled += placement.ready
            placement.ready = []
        put_in_line([run.job for run in again], using, admit(placement, using))


def _publish(recorded, claimed, process_id, using):
    by_event = {}
    for run in recorded:
        by_event.setdefault(_EVENTS[run.outcome.state], []).append(run)
    for event, runs in by_event.items():
        events.publish(event, using, runs=runs)
    if claimed:
        events.publish(events.CLAIMED, using, jobs=claimed, process_id=process_id)


def start(job, process_name, using):
    """A worker thread begins a run of ``job``: one more execution."""
    job.executions += 1
    for participant in participants.registered():
        participant.started(job, using)
    events.publish(events.STARTED, using, job=job, process_name=process_name)


def release(claims):
    """Put these claimed jobs back in line as ready; returns how many were released.

    Back in line without passing the participants' gates again: the job keeps its key's slot,
    as if it had never been claimed. Its queue slot is given back.
    """
    using = claims.db
    ops = operations(using)
    with write_transaction(using):
        # Lock the claims first so a worker finishing one of them at this moment either
        # finishes before us (and the row is gone) or finds its claim released.
        job_ids = list(claims.select_for_update().values_list("job_id", flat=True))
        if not job_ids:
            return 0
        jobs = list(Job.objects.using(using).filter(pk__in=job_ids).only("pk", "queue_name", "priority"))
        ops.insert_ready([(job.pk, job.queue_name, job.priority) for job in jobs], timezone.now())
        ops.delete_by_pk(ClaimedExecution, job_ids)
        for participant in participants.registered():
            participant.released(jobs, using)
        events.publish(events.RELEASED, using, job_ids=job_ids)
    return len(job_ids)
