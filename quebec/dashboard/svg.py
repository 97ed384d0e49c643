"""The geometry of the dashboard's SVG charts, computed on the server: no script draws them.

Each function returns what ``quebec/includes/bar_chart.html`` and ``timing_chart.html`` (run times per class) write
out: shapes in a fixed view box (the SVG scales to its box), each with a ``title`` that names its
figure, and a one-sentence summary for the chart's text alternative.
"""

import dataclasses

from django.utils import formats, timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop


@dataclasses.dataclass(frozen=True)
class Shape:
    x: float
    y: float
    width: float
    height: float
    css: str
    title: str


@dataclasses.dataclass(frozen=True)
class Chart:
    width: int
    height: int
    shapes: list
    top_label: str
    first_label: str
    last_label: str
    summary: str
    baseline: float


# (key of a bucket, CSS class, label): drawn bottom up.
THROUGHPUT_SERIES = (
    ("finished", "quebec-bar-processed", gettext_noop("finished")),
    ("failures", "quebec-bar-failed", gettext_noop("failed")),
)


def bucket_label(start, unit):
    moment = timezone.localtime(start)
    return formats.date_format(moment, "M j" if unit == "day" else "H:i")


def stacked_bars(buckets, unit, width=600, height=160, series=THROUGHPUT_SERIES):
    """Bars per bucket, the series stacked; a bar's title says its bucket and figure."""
    top, bottom = (14, 18) if height > 60 else (2, 0)  # a sparkline has no labels to make room for
    tallest = max([sum(bucket[key] for key, _css, _label in series) for bucket in buckets] + [1])
    slot = (width - 2) / max(len(buckets), 1)  # room for the last bar's minimum width
    scale = (height - top - bottom) / tallest
    shapes = []
    for index, bucket in enumerate(buckets):
        y = height - bottom
        when = bucket_label(bucket["start"], unit)
        for key, css, label in series:
            if bucket[key]:
                y -= bucket[key] * scale
                title = f"{when}: {bucket[key]} {_(label)}"
                shapes.append(Shape(index * slot + 1, y, max(slot - 2, 2), bucket[key] * scale, css, title))
    totals = ", ".join(f"{sum(bucket[key] for bucket in buckets)} {_(label)}" for key, _css, label in series)
    return Chart(
        width,
        height,
        shapes,
        str(tallest),
        bucket_label(buckets[0]["start"], unit) if buckets else "",
        bucket_label(buckets[-1]["start"], unit) if buckets else "",
        totals,
        height - bottom,
    )


def timing_rows(rows):
    """Each row (a class) with the lengths of its p50 and p95 run-time bars, in percent of the
    longest p95: one linear scale for the table's rows."""
    longest = max([row["run_p95"] or 0 for row in rows] + [0.001])
    return [
        {**row, "p50_width": 100 * (row["run_p50"] or 0) / longest, "p95_width": 100 * (row["run_p95"] or 0) / longest}
        for row in rows
    ]
