"""Rollups of ended runs: one row per (minute, queue, class), added to in the transaction that
ends them (``running.end_and_claim``).

A batch of runs becomes one row of sums per group: the upsert adds them to what the group's
row holds, whatever the number of jobs. On PostgreSQL's one-statement end and claim, the upsert
is part of that statement (``Operations.end_and_claim``). Rows are pruned past
``stats_retention`` by the dispatcher (``prune``).
"""

from datetime import timedelta

from django.utils import timezone

from quebec.db import operations
from quebec.lifecycle import outcome
from quebec.models import JobStat
from quebec.models.stats import BOUNDS, SUMMED, bucket

# Each outcome's counter (a throttled run, RESCHEDULED, is no run and counts nowhere; a resumed
# one counts only in the times).
COUNTER = {
    outcome.FINISHED: SUMMED.index("finished"),
    outcome.FAILED: SUMMED.index("failed"),
    outcome.RETRY: SUMMED.index("retried"),
    outcome.DISCARDED: SUMMED.index("discarded"),
}
RUN_COUNT, RUN_SUM, RUN_FIRST = (SUMMED.index(name) for name in ("run_count", "run_sum", "run_b00"))
WAIT_COUNT, WAIT_SUM, WAIT_FIRST = (SUMMED.index(name) for name in ("wait_count", "wait_sum", "wait_b00"))
PRUNE_BATCH = 1000


def rollups(runs):
    """The rows to add for ``runs``: (minute, queue, class, *values of ``SUMMED``), one per
    group, in key order (two transactions upserting several groups cannot deadlock)."""
    groups = {}
    for run in runs:
        state = run.outcome.state
        if state == outcome.RESCHEDULED:
            continue
        key = (run.ended_at.replace(second=0, microsecond=0), run.job.queue_name, run.job.class_name)
        sums = groups.get(key)
        if sums is None:
            sums = groups[key] = [0] * len(SUMMED)
        if state in COUNTER:
            sums[COUNTER[state]] += 1
        if run.waited is not None:
            sums[RUN_COUNT] += 1
            sums[RUN_SUM] += run.elapsed
            sums[RUN_FIRST + bucket(run.elapsed)] += 1
            sums[WAIT_COUNT] += 1
            sums[WAIT_SUM] += run.waited
            sums[WAIT_FIRST + bucket(run.waited)] += 1
    return [(*key, *sums) for key, sums in sorted(groups.items())]


def record(runs, using):
    """Add ``runs`` (recorded ones) to their groups' rows, in the caller's transaction."""
    rows = rollups(runs)
    if rows:
        operations(using).add_job_stats(rows)


def prune(using, retention, batch_size=PRUNE_BATCH):
    """Delete up to ``batch_size`` rows of minutes older than ``retention`` seconds; returns how many."""
    before = timezone.now() - timedelta(seconds=retention)
    stale = JobStat.objects.using(using).filter(minute__lt=before)
    ids = list(stale.order_by("minute").values_list("pk", flat=True)[:batch_size])
    return JobStat.objects.using(using).filter(pk__in=ids).delete()[0] if ids else 0


assert len(SUMMED) == 4 + 2 * (2 + len(BOUNDS) + 1), "counters, then each distribution's count, sum and buckets"
