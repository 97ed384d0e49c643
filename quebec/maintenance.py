"""Housekeeping: dead processes and the jobs they held.

A process that stops heartbeating for ``process_alive_threshold`` is presumed dead and pruned;
claims whose process row is gone are orphans. Either way the jobs they held are, by the
``on_process_death`` setting, failed with ``ProcessPrunedError``/``ProcessExitError`` (the
default: the class's ``retry_on`` may retry them) or released back to ready.
"""

import logging
import math
from datetime import timedelta

from django.utils import timezone

from quebec import execution
from quebec.db import write_transaction
from quebec.errors import ProcessExitError, ProcessPrunedError
from quebec.lifecycle import events, running, stats
from quebec.lifecycle.outcome import Run
from quebec.models import ClaimedExecution, Process

logger = logging.getLogger("quebec.maintenance")


def prune_dead_processes(settings, quebec, exclude=()):
    """Remove processes whose last heartbeat is older than the threshold; returns how many."""
    cutoff = timezone.now() - timedelta(seconds=settings.process_alive_threshold)
    stale = Process.objects.using(quebec.using).filter(last_heartbeat_at__lt=cutoff).exclude(pk__in=exclude)
    pruned = 0
    for process in stale:
        error = ProcessPrunedError(
            f"{process.kind} {process.name} (pid {process.pid} on {process.hostname}) sent no heartbeat "
            f"since {process.last_heartbeat_at.isoformat()} and was presumed dead"
        )
        if remove_process(process, error, settings, quebec):
            pruned += 1
    return pruned


def remove_process(process, error, settings, quebec):
    """Deal with a dead process's claimed jobs, then delete its row; False if another pruner did."""
    with write_transaction(quebec.using):
        # Locking the row makes one pruner own this process; others skip it.
        if not Process.objects.using(quebec.using).filter(pk=process.pk).select_for_update(skip_locked=True).exists():
            return False
        handled = handle_claims(
            ClaimedExecution.objects.using(quebec.using).filter(process_id=process.pk), error, settings, quebec
        )
        Process.objects.using(quebec.using).filter(pk=process.pk).delete()
        events.publish(events.PROCESS_PRUNED, quebec.using, process=process, error=error)
    logger.warning(
        "Removed %s %s (pid %s): %s; %d job(s) %s",
        process.kind,
        process.name,
        process.pid,
        error,
        handled,
        "released" if settings.on_process_death == "release" else "handled as failed",
    )
    return True


def handle_orphaned_claims(settings, quebec):
    """Claims whose process row no longer exists (it crashed while deregistering)."""
    live = Process.objects.using(quebec.using).values("pk")
    orphans = ClaimedExecution.objects.using(quebec.using).exclude(process_id__in=live)
    orphans = orphans | ClaimedExecution.objects.using(quebec.using).filter(process_id__isnull=True)
    return handle_claims(
        orphans, ProcessExitError("the process that claimed this job no longer exists"), settings, quebec
    )


def handle_claims(claims, error, settings, quebec):
    """Release the claims, or end each job with ``error`` as its class's strategies say."""
    if settings.on_process_death == "release":
        return running.release(claims)
    handled = 0
    # The caller's transaction may end many jobs: their rollups are written once, after the
    # last (``running.end_and_claim``: the rollups' rows are the last a transaction locks).
    rollups = stats.Buffer(seconds=math.inf)
    for claim in claims.select_related("job", "process"):
        job = claim.job
        job.executions += 1  # the run that died counts as an attempt
        instance, outcome = execution.fail_stored(job, quebec, error)
        if instance is not None:
            job.exception_executions = instance.exception_executions
        execution.add_attempt(job, outcome, claim.created_at, process_name(claim))
        if running.end([Run(job, outcome)], claim.process_id, settings.preserve_finished_jobs, quebec.using, rollups):
            handled += 1
    rollups.write(quebec.using, everything=True)
    return handled


def process_name(claim):
    # The process row may be gone already (an orphaned claim); its id is all that is left.
    return claim.process.name if claim.process is not None else f"process #{claim.process_id}"
