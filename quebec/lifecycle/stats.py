"""Rollups of ended runs: one row per (minute, queue, class), added to by the lifecycle
(``running.end_and_claim``): a worker's ends go through its ``Buffer`` and are written about
once a second, with its next end or claim; other ends are written in the transaction that ends
them.

Runs become one row of sums per group: the upsert adds them to what the group's row holds,
whatever the number of jobs. On PostgreSQL's one-statement end and claim, the upsert is part of
that statement (``Operations.end_and_claim``). A run counts in the minute its end is
recorded, so no write lands in a minute the dispatcher has folded into the totals (``fold``,
``FOLD_LAG`` after the minute) before it prunes rows past ``stats_retention`` (``prune``).
"""

import datetime
import threading
import time
from datetime import timedelta

from django.db import IntegrityError
from django.db.models import Sum
from django.utils import timezone

from quebec.db import operations, write_transaction
from quebec.lifecycle import outcome
from quebec.models import JobStat, JobStatTotal
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
# How long after a minute ends it is folded into the totals: ends are recorded within moments
# of ``now`` on each host, and this leaves room for hosts' clocks to disagree.
FOLD_LAG = timedelta(minutes=5)
# Where the totals start: the first fold takes every minute after it.
EPOCH = datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC)


def rollups(runs, now):
    """The rows to add for ``runs`` recorded at ``now``: (minute, queue, class, *values of
    ``SUMMED``), one per group, in key order (two transactions upserting several groups
    cannot deadlock)."""
    minute = now.replace(second=0, microsecond=0)
    groups = {}
    for run in runs:
        state = run.outcome.state
        if state == outcome.RESCHEDULED:
            continue
        key = (minute, run.job.queue_name, run.job.class_name)
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


# How long a worker keeps the rollups of its ends before it writes them (``Buffer``).
BUFFER_SECONDS = 1.0


class Buffer:
    """A worker's rollups not yet written, summed per group.

    Writing a group's row with every end costs an upsert per batch of ends, and on a fast drain
    that is most of what rollups cost. A worker instead adds the runs it recorded here, and its
    next end or claim after ``BUFFER_SECONDS`` writes them all at once, in its own transaction
    (``running.end_and_claim``); an idle worker writes them itself (``write``), and one that
    stops writes what is left. A worker killed outright loses at most its last second of rollups,
    never a job's state: the jobs' rows are written when they end, as before.
    """

    def __init__(self, seconds=BUFFER_SECONDS):
        self.seconds = seconds
        self._sums = {}
        self._lock = threading.Lock()
        self._since = time.monotonic()  # the oldest sums held, or the last write

    def add(self, runs, now):
        """Hold the rollups of ``runs``, recorded at ``now``."""
        self.put_back(rollups(runs, now))

    def take(self, everything=False):
        """The rows to write now (as ``rollups`` returns them): all held, once the oldest has
        waited ``seconds`` (or at once with ``everything``), else ``()``. Rows taken and not
        written go back with ``put_back``."""
        with self._lock:
            if not self._sums or not (everything or time.monotonic() - self._since >= self.seconds):
                return ()
            rows = [(*key, *sums) for key, sums in sorted(self._sums.items())]
            self._sums = {}
            return rows

    def put_back(self, rows):
        """Hold ``rows`` (as ``rollups`` returns them): new ones, or those a failed write took."""
        if not rows:
            return
        with self._lock:
            if not self._sums:
                self._since = time.monotonic()
            for minute, queue_name, class_name, *values in rows:
                sums = self._sums.setdefault((minute, queue_name, class_name), [0] * len(SUMMED))
                for index, value in enumerate(values):
                    sums[index] += value

    def write(self, using, everything=False):
        """Write the rows due (or all), in a transaction of their own; kept on failure."""
        rows = self.take(everything)
        if not rows:
            return
        try:
            with write_transaction(using):
                operations(using).add_job_stats(rows)
        except BaseException:
            self.put_back(rows)
            raise


def record(runs, now, using):
    """Add ``runs`` (recorded ones, at ``now``) to their groups' rows, in the caller's transaction."""
    rows = rollups(runs, now)
    if rows:
        operations(using).add_job_stats(rows)


def fold(using, now=None):
    """Add to the totals the minutes that ended ``FOLD_LAG`` ago or earlier and are not in them
    yet; returns the new ``through``. The marker row, locked first, makes one fold at a time."""
    through = (now or timezone.now()).replace(second=0, microsecond=0) - FOLD_LAG
    totals = JobStatTotal.objects.using(using)
    if not totals.filter(queue_name="", class_name="").exists():
        _create_marker(using)
    with write_transaction(using):
        marker = totals.select_for_update().get(queue_name="", class_name="")
        if marker.through >= through:
            return marker.through
        minutes = JobStat.objects.using(using).filter(minute__gte=marker.through, minute__lt=through)
        sums = minutes.values("queue_name", "class_name").annotate(**{name: Sum(name) for name in SUMMED})
        rows = [
            (row["queue_name"], row["class_name"], through, *(row[name] or 0 for name in SUMMED))
            for row in sums.order_by("queue_name", "class_name")
        ]
        operations(using).add_sums(JobStatTotal, ("queue_name", "class_name"), rows, replaced=("through",))
        totals.update(through=through)
    return through


def _create_marker(using):
    """The marker row, before any fold (outside a transaction: two creators race harmlessly)."""
    try:
        with write_transaction(using):
            JobStatTotal.objects.using(using).get_or_create(queue_name="", class_name="", defaults={"through": EPOCH})
    except IntegrityError:
        pass


def prune(using, retention, batch_size=PRUNE_BATCH):
    """Delete up to ``batch_size`` rows of minutes older than ``retention`` seconds and already
    folded into the totals; returns how many."""
    through = JobStatTotal.objects.using(using).through()
    if through is None:
        return 0
    before = min(timezone.now() - timedelta(seconds=retention), through)
    stale = JobStat.objects.using(using).filter(minute__lt=before)
    ids = list(stale.order_by("minute").values_list("pk", flat=True)[:batch_size])
    return JobStat.objects.using(using).filter(pk__in=ids).delete()[0] if ids else 0


assert len(SUMMED) == 4 + 2 * (2 + len(BOUNDS) + 1), "counters, then each distribution's count, sum and buckets"
