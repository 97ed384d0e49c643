"""Rollups: what jobs did, per minute, queue and job class, kept after their rows are gone.

One row of ``JobStat`` per (minute, queue, class) holds counters (runs that finished, failed for
good, were retried, were discarded by their run) and two distributions: run time (start to end
of a run) and wait time (from the later of enqueue and due time to the start). A distribution
is a count per fixed bucket, log-spaced from 1 ms to 2,500 s, plus a count and a sum: rows
merge by adding column to column, which is how the transition that ends runs writes them (one
upsert per group, see ``quebec.lifecycle.stats``), and summing rows over any span of minutes,
queues or classes gives that span's distribution, its percentiles and Prometheus' histogram.

Reading them, for the dashboard and the metrics endpoint::

    JobStat.objects.since(now - timedelta(hours=1)).per_class()
    # [{"class_name": ..., "finished": n, "failed": n, "retried": n, "discarded": n,
    #   "run_count": n, "run_sum": s, "run_buckets": [n, ...], "run_p50": s, "run_p95": s,
    #   "wait_count": n, "wait_sum": s, "wait_buckets": [...], "wait_p50": s, "wait_p95": s}, ...]
    JobStat.objects.since(t).per_queue()     # the same, keyed by "queue_name"
    JobStat.objects.since(t).per_minute()    # the same, keyed by "minute", in time order
    JobStat.objects.between(t0, t1).totals() # one such dict for everything
    percentile(row["run_buckets"], 0.95)     # seconds, from any summed buckets

``BOUNDS[i]`` is the upper bound (seconds, inclusive) of bucket ``i``; the last bucket, one
past the bounds, holds everything longer. Bucket fields are ``run_b00`` .. ``run_b20`` and
``wait_b00`` .. ``wait_b20`` (``RUN_BUCKETS``, ``WAIT_BUCKETS``). Rows are kept for
``stats_retention`` (14 days) and pruned by the dispatcher.

``JobStatTotal`` holds, per (queue, class), the sums of every minute before its ``through``:
the dispatcher folds minutes into it a few minutes after they end, before they are ever pruned,
so the totals since the start (``totals_since_start()``, what the metrics endpoint exports as
Prometheus counters) never go down and cost a scrape a handful of rows, not 14 days of them.
"""

import bisect

from django.db import models
from django.db.models import Sum
from django.utils.translation import gettext_lazy as _

from quebec.routing import QuebecManager

# Upper bounds of the buckets, in seconds: 1, 2.5 and 5 per decade, 1 ms to 2,500 s.
BOUNDS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    25.0,
    50.0,
    100.0,
    250.0,
    500.0,
    1000.0,
    2500.0,
)
RUN_BUCKETS = tuple(f"run_b{index:02d}" for index in range(len(BOUNDS) + 1))
WAIT_BUCKETS = tuple(f"wait_b{index:02d}" for index in range(len(BOUNDS) + 1))
COUNTERS = ("finished", "failed", "retried", "discarded")
SUMMED = (*COUNTERS, "run_count", "run_sum", *RUN_BUCKETS, "wait_count", "wait_sum", *WAIT_BUCKETS)


def bucket(seconds):
    """The index of the bucket that counts a duration of ``seconds``."""
    return bisect.bisect_left(BOUNDS, seconds)


def percentile(buckets, fraction):
    """The duration (seconds) below which ``fraction`` of the counted durations fall, estimated
    from bucket counts by linear interpolation inside the bucket; None when nothing was counted.
    Past the last bound, the last bound (the histogram knows no more)."""
    total = sum(buckets)
    if not total:
        return None
    rank = fraction * total
    seen = 0
    for index, count in enumerate(buckets):
        if count and seen + count >= rank:
            if index == len(BOUNDS):
                return BOUNDS[-1]
            lower = BOUNDS[index - 1] if index else 0.0
            return lower + (BOUNDS[index] - lower) * (rank - seen) / count
        seen += count
    return BOUNDS[-1]


class JobStatQuerySet(models.QuerySet):
    def since(self, start):
        return self.filter(minute__gte=start)

    def between(self, start, end):
        """Rows of minutes from ``start`` (included) to ``end`` (excluded)."""
        return self.filter(minute__gte=start, minute__lt=end)

    def per_class(self):
        return self.grouped("class_name")

    def per_queue(self):
        return self.grouped("queue_name")

    def per_minute(self):
        return self.grouped("minute")

    def totals(self):
        """Everything summed, as one dict (zeros when there is nothing)."""
        return self.grouped()[0] if self.exists() else summary({name: 0 for name in SUMMED})

    def grouped(self, *keys):
        """Rows summed per value of ``keys`` (fields), as dicts ordered by the keys, each with
        its counters, sums, ``run_buckets`` and ``wait_buckets`` lists, and p50 and p95."""
        sums = {name: Sum(name) for name in SUMMED}
        if keys:
            rows = self.values(*keys).annotate(**sums).order_by(*keys)
        else:
            rows = [self.aggregate(**sums)]
        return [summary(row) for row in rows]


def totals_since_start(using=None):
    """Per (queue, class), everything ever rolled up: the folded totals plus the minutes not
    folded yet, as ``summary`` dicts with ``queue_name`` and ``class_name``; two queries."""
    folded = list(JobStatTotal.objects.db_manager(using).all())
    through = next((row.through for row in folded if row.queue_name == row.class_name == ""), None)
    recent = JobStat.objects.db_manager(using).all()
    if through is not None:
        recent = recent.filter(minute__gte=through)
    sums = {}
    for row in folded:
        if row.queue_name or row.class_name:
            sums[row.queue_name, row.class_name] = {name: getattr(row, name) for name in SUMMED}
    for row in recent.values("queue_name", "class_name").annotate(**{name: Sum(name) for name in SUMMED}).order_by():
        group = sums.setdefault((row["queue_name"], row["class_name"]), dict.fromkeys(SUMMED, 0))
        for name in SUMMED:
            group[name] += row[name] or 0
    return [
        summary({"queue_name": queue, "class_name": class_name, **values})
        for (queue, class_name), values in sorted(sums.items())
    ]


def summary(row):
    """A dict of summed columns made readable: bucket lists and percentiles instead of columns."""
    row = {name: (value or 0) for name, value in row.items()}
    for kind, names in (("run", RUN_BUCKETS), ("wait", WAIT_BUCKETS)):
        buckets = [row.pop(name) for name in names]
        row[f"{kind}_buckets"] = buckets
        row[f"{kind}_p50"] = percentile(buckets, 0.5)
        row[f"{kind}_p95"] = percentile(buckets, 0.95)
    return row


def _count():
    # db_default: an upsert names only the columns it adds to, the others start at 0.
    return models.BigIntegerField(default=0, db_default=0)


class Sums(models.Model):
    """The sums a rollup row holds, shared by ``JobStat`` (one minute) and ``JobStatTotal`` (the
    minutes folded in): the names of ``SUMMED``, each added to by an upsert or a fold."""

    # Runs, by how they ended: finished, failed for good, failed with a retry to come,
    # discarded by the run (an exception its class discards on).
    finished = _count()
    failed = _count()
    retried = _count()
    discarded = _count()
    # Run time: runs measured, their total seconds, and a count per bucket of BOUNDS.
    run_count = _count()
    run_sum = models.FloatField(default=0.0, db_default=0.0)
    run_b00 = _count()
    run_b01 = _count()
    run_b02 = _count()
    run_b03 = _count()
    run_b04 = _count()
    run_b05 = _count()
    run_b06 = _count()
    run_b07 = _count()
    run_b08 = _count()
    run_b09 = _count()
    run_b10 = _count()
    run_b11 = _count()
    run_b12 = _count()
    run_b13 = _count()
    run_b14 = _count()
    run_b15 = _count()
    run_b16 = _count()
    run_b17 = _count()
    run_b18 = _count()
    run_b19 = _count()
    run_b20 = _count()
    # Wait time: from the later of enqueue and due time to the start of the run.
    wait_count = _count()
    wait_sum = models.FloatField(default=0.0, db_default=0.0)
    wait_b00 = _count()
    wait_b01 = _count()
    wait_b02 = _count()
    wait_b03 = _count()
    wait_b04 = _count()
    wait_b05 = _count()
    wait_b06 = _count()
    wait_b07 = _count()
    wait_b08 = _count()
    wait_b09 = _count()
    wait_b10 = _count()
    wait_b11 = _count()
    wait_b12 = _count()
    wait_b13 = _count()
    wait_b14 = _count()
    wait_b15 = _count()
    wait_b16 = _count()
    wait_b17 = _count()
    wait_b18 = _count()
    wait_b19 = _count()
    wait_b20 = _count()

    class Meta:
        abstract = True


class JobStat(Sums):
    """What the jobs of one class on one queue did in one minute (the minute their runs ended)."""

    id = models.BigAutoField(primary_key=True)
    minute = models.DateTimeField(verbose_name=_("minute"))
    queue_name = models.CharField(max_length=255, verbose_name=_("queue name"))
    class_name = models.CharField(max_length=255, verbose_name=_("class name"))

    objects = QuebecManager.from_queryset(JobStatQuerySet)()

    class Meta:
        db_table = "quebec_job_stats"
        verbose_name = _("job statistics")
        verbose_name_plural = _("job statistics")
        constraints = [
            # What the upsert merges on; leading with the minute, it also serves reads by time
            # and the pruning.
            models.UniqueConstraint(fields=["minute", "queue_name", "class_name"], name="quebec_job_stats_group"),
        ]

    def __str__(self):
        return f"{self.class_name} on {self.queue_name} at {self.minute:%Y-%m-%d %H:%M}"


class JobStatTotalQuerySet(models.QuerySet):
    def through(self):
        """The minute up to which (excluded) ``JobStat`` rows are folded in; None before the first fold."""
        return self.filter(queue_name="", class_name="").values_list("through", flat=True).first()


class JobStatTotal(Sums):
    """The sums of ``JobStat`` rows of one (queue, class) for every minute before ``through``.

    The row with an empty queue and class is the marker: it exists from the first fold, holds
    ``through`` for all, and is what a fold locks, so two dispatchers never fold a minute twice.
    """

    id = models.BigAutoField(primary_key=True)
    queue_name = models.CharField(max_length=255, verbose_name=_("queue name"))
    class_name = models.CharField(max_length=255, verbose_name=_("class name"))
    through = models.DateTimeField(verbose_name=_("through"))

    objects = QuebecManager.from_queryset(JobStatTotalQuerySet)()

    class Meta:
        db_table = "quebec_job_stat_totals"
        verbose_name = _("job statistics total")
        verbose_name_plural = _("job statistics totals")
        constraints = [
            models.UniqueConstraint(fields=["queue_name", "class_name"], name="quebec_job_stat_totals_group"),
        ]

    def __str__(self):
        return f"{self.class_name or '(marker)'} on {self.queue_name or '-'} before {self.through:%Y-%m-%d %H:%M}"
