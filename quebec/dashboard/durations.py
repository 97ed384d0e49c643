"""Run and wait times of the jobs in the lists, as SQL expressions the lists annotate and sort by.

A job row keeps no start time of its own: each run is an entry of ``Job.attempts`` (JSON), the
last one is the run that ended the job. Each database reads that entry's ``started_at`` its own
way (``LastAttemptStart``); the rest is Django's arithmetic on moments, which every database does.
"""

from datetime import timedelta

from django.contrib import admin
from django.db.models import DateTimeField, DurationField, ExpressionWrapper, F, Func
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from quebec.dashboard import times
from quebec.dashboard.jobs import format_run_time


class LastAttemptStart(Func):
    """When the last attempt in ``attempts`` (a path to the JSON field) started; NULL without one."""

    output_field = DateTimeField()

    def __init__(self, attempts):
        super().__init__(F(attempts))

    def as_postgresql(self, compiler, connection):
        return self.as_sql(compiler, connection, template="((%(expressions)s -> -1 ->> 'started_at')::timestamptz)")

    def as_sqlite(self, compiler, connection):
        # The format Django stores moments in on SQLite: UTC, no "T", no offset. (Percent signs
        # are doubled twice: once for this template, once for the query's parameters.)
        template = "strftime('%%%%Y-%%%%m-%%%%d %%%%H:%%%%M:%%%%f', json_extract(%(expressions)s, '$[#-1].started_at'))"
        return self.as_sql(compiler, connection, template=template)

    def as_mysql(self, compiler, connection):
        # No negative index before MariaDB 10.9: the last index from the length. Stored times are
        # UTC ISO text ("2026-12-01T13:54:12.123456+00:00"): the first 26 characters are the moment.
        sql, params = compiler.compile(self.source_expressions[0])
        template = (
            "(CASE WHEN JSON_LENGTH({a}) > 0 THEN CAST(REPLACE(LEFT(JSON_UNQUOTE(JSON_EXTRACT({a}, "
            "CONCAT('$[', JSON_LENGTH({a}) - 1, '].started_at'))), 26), 'T', ' ') AS DATETIME(6)) END)"
        )
        return template.format(a=sql), (*params, *params, *params)


def due(job_path):
    """When the job (at ``job_path``) was due: its enqueue, or later its scheduled time (a retry's)."""
    created = F(f"{job_path}created_at")
    return Greatest(created, Coalesce(F(f"{job_path}scheduled_at"), created))


def between(start, end):
    return ExpressionWrapper(end - start, output_field=DurationField())


def last_run(job_path, ended):
    """Annotations of the job's last run, which ended at the field ``ended``: ``run_time`` (start
    to end) and ``wait_time`` (due to start)."""
    return {
        "last_started_at": LastAttemptStart(f"{job_path}attempts"),
        "run_time": between(F("last_started_at"), F(ended)),
        "wait_time": between(due(job_path), F("last_started_at")),
    }


def column(field, description, ordering=None):
    """An admin list column showing the duration ``field`` (an annotation) as run times read."""

    @admin.display(description=description, ordering=ordering or field)
    def show(model_admin, obj):
        duration = getattr(obj, field)
        return "-" if duration is None else format_run_time(max(duration, timedelta(0)))

    show.__name__ = field
    return show


def since(field, description, ordering):
    """An admin list column showing how long ago the moment ``field`` was (a wait, a run so far)."""

    @admin.display(description=description, ordering=ordering)
    def show(model_admin, obj):
        since = getattr(obj, field)
        return times.ticking(format_run_time(max(timezone.now() - since, timedelta(0))), since)

    show.__name__ = f"{field}_since"
    return show
