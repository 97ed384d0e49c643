"""The charts page's figures, read from the rollups (``quebec.models.stats``), kept for
``stats_retention`` whatever happens to the jobs' rows; every query here reads a bounded number
of rollup rows (minutes x queues x classes of the range) and returns a bounded number of groups.

Charts are drawn on the server as SVG (``quebec/includes/bar_chart.html``): the geometry is
computed here, the template only writes it out, and each chart carries its figures as text.
"""

import dataclasses
import datetime
from datetime import timedelta

from django.db.models import Sum
from django.db.models.functions import Trunc
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from quebec.dashboard.jobs import format_run_time
from quebec.models import JobStat


@dataclasses.dataclass(frozen=True)
class Range:
    label: str
    span: timedelta
    unit: str  # for Trunc
    step: timedelta


RANGES = {
    "hour": Range(_("Last hour"), timedelta(hours=1), "minute", timedelta(minutes=1)),
    "day": Range(_("Last day"), timedelta(days=1), "hour", timedelta(hours=1)),
    "week": Range(_("Last week"), timedelta(days=7), "hour", timedelta(hours=1)),
    "fortnight": Range(_("Last 14 days"), timedelta(days=14), "day", timedelta(days=1)),
}
COUNTERS = ("finished", "failed", "retried", "discarded")
GROUP_LIMIT = 20  # queues or classes shown per table, the busiest first
EPOCH = datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC)  # a midnight: days align


def first_bucket(range_name, now):
    """The start of the range's oldest bucket: buckets are whole minutes, hours or days (UTC)."""
    span = RANGES[range_name]
    return EPOCH + ((now - span.span - EPOCH) // span.step + 1) * span.step


def rollups(range_name, now, queue_name=None, class_name=None):
    """The rollup rows of the range, of one queue or class when given."""
    rows = JobStat.objects.since(first_bucket(range_name, now))
    if queue_name:
        rows = rows.filter(queue_name=queue_name)
    if class_name:
        rows = rows.filter(class_name=class_name)
    return rows


def buckets(range_name, now=None, queue_name=None, class_name=None):
    """Runs per bucket over the range, oldest first, every bucket present (zeros where nothing
    ran): ``{"start", "finished", "failed", "retried", "discarded", "failures"}``; one query.

    ``failures`` counts every failed run: those retried and those failed for good."""
    now = now or timezone.now()
    span = RANGES[range_name]
    rows = rollups(range_name, now, queue_name, class_name)
    counted = _per_bucket(rows, span.unit, ())
    return [_bucket(start, counted.get(start)) for start in _starts(range_name, now)]


def buckets_per_group(range_name, key, names, now=None):
    """For each of ``names`` (values of ``key``: queue_name or class_name), its runs per bucket
    as ``buckets`` gives them; one query."""
    now = now or timezone.now()
    span = RANGES[range_name]
    rows = rollups(range_name, now).filter(**{f"{key}__in": names})
    counted = _per_bucket(rows, span.unit, (key,))
    starts = _starts(range_name, now)
    return {name: [_bucket(start, counted.get((name, start))) for start in starts] for name in names}


def _starts(range_name, now):
    start, step = first_bucket(range_name, now), RANGES[range_name].step
    starts = []
    while start <= now:
        starts.append(start)
        start += step
    return starts


def _per_bucket(rows, unit, keys):
    grouped = (
        rows.annotate(bucket=Trunc("minute", unit, tzinfo=datetime.UTC))
        .values(*keys, "bucket")
        .annotate(**{name: Sum(name) for name in COUNTERS})
        .order_by()
    )
    found = {}
    for row in grouped:
        start = _as_utc(row["bucket"])
        found[(*(row[key] for key in keys), start) if keys else start] = row
    return found


def _bucket(start, row):
    counts = {name: (row or {}).get(name) or 0 for name in COUNTERS}
    return {"start": start, **counts, "failures": counts["failed"] + counts["retried"]}


def _as_utc(moment):
    if timezone.is_naive(moment):
        return moment.replace(tzinfo=datetime.UTC)
    return moment.astimezone(datetime.UTC)


def groups(range_name, key, now=None):
    """Per queue or class (``key``), the range's sums with run and wait percentiles, the
    busiest ``GROUP_LIMIT`` first; one query."""
    rows = rollups(range_name, now or timezone.now()).grouped(key)
    for row in rows:
        row["name"] = row[key]
        row["runs"] = sum(row[name] for name in COUNTERS)
        row["failures"] = row["failed"] + row["retried"]
        row["run_mean"] = row["run_sum"] / row["run_count"] if row["run_count"] else None
        for name in ("run_p50", "run_p95", "wait_p50", "wait_p95", "run_mean"):
            row[f"{name}_text"] = duration_text(row[name])
    rows.sort(key=lambda row: (-row["runs"], row["name"]))
    return rows[:GROUP_LIMIT]


def slowest(class_rows, limit=10):
    """The classes with the longest runs (by p95, then p50), from ``groups(..., "class_name")``."""
    timed = [row for row in class_rows if row["run_count"]]
    return sorted(timed, key=lambda row: (-row["run_p95"], -row["run_p50"], row["name"]))[:limit]


def duration_text(seconds):
    """A duration from the rollups as the dashboard writes run times; "-" when unknown."""
    return "-" if seconds is None else format_run_time(timedelta(seconds=seconds))
