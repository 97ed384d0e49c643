"""Quebec's tables, after Solid Queue: a permanent ``Job`` row plus one small table per state.

A job waiting to run has exactly one execution row (ready, scheduled, claimed, blocked or
failed) keyed by its id; a finished job has none. Workers poll only the small ready table, whose
index carries everything the claim query reads, so keeping millions of finished jobs costs the
claim nothing. Every state change is a method here; processes only call them.
"""

import contextlib
import functools
import json
import os
import socket
import uuid

from datetime import timedelta

from django.db import IntegrityError, connections, models, transaction
from django.db.models import Exists, F, OuterRef
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from quebec import concurrency
from quebec.db import (
    delete_by_pk,
    delete_claims,
    fetch_locked,
    insert_rows,
    new_row,
    value_converter,
    READY_CHANNEL,
    notify_ready,
    update_rows,
    write_transaction,
)
from quebec.errors import describe_error

READY_FIELDS = ("pk", "queue_name", "priority", "concurrency_key", "class_name")
# What a successful run changes on its job's row.
FINISH_FIELDS = ("executions", "exception_executions", "attempts", "return_value", "finished_at", "updated_at")


class JobQuerySet(models.QuerySet):
    def finished(self):
        return self.filter(finished_at__isnull=False)

    def with_status(self):
        """Annotate ``status`` from the execution table that holds each job."""
        cases = [
            models.When(discarded_at__isnull=False, then=models.Value("discarded")),
            models.When(finished_at__isnull=False, then=models.Value("finished")),
            *(
                models.When(Exists(model.objects.filter(job=OuterRef("pk"))), then=models.Value(name))
                for name, model in EXECUTION_STATES.items()
            ),
        ]
        return self.annotate(status=models.Case(*cases, default=None, output_field=models.CharField()))

    def clear_finished(self, before, batch_size=500):
        """Delete up to ``batch_size`` jobs finished before ``before``; returns how many."""
        ids = list(self.finished().filter(finished_at__lt=before).values_list("pk", flat=True)[:batch_size])
        return self.filter(pk__in=ids).delete()[0] if ids else 0


class Job(models.Model):
    """The permanent record of one enqueued job."""

    queue_name = models.CharField(max_length=255, verbose_name=_("queue name"))
    class_name = models.CharField(max_length=255, verbose_name=_("class name"))
    arguments = models.JSONField(default=dict, verbose_name=_("arguments"))
    priority = models.IntegerField(default=0, verbose_name=_("priority"))
    active_job_id = models.UUIDField(default=uuid.uuid4, verbose_name=_("active job id"))
    executions = models.PositiveIntegerField(default=0, verbose_name=_("executions"))
    # attempts per retry strategy
    exception_executions = models.JSONField(default=dict, blank=True, verbose_name=_("exception executions"))
    # One entry per run: when, on which process, how it ended, and its error if any.
    attempts = models.JSONField(default=list, blank=True, verbose_name=_("attempts"))
    # What ``perform`` returned, when it is JSON; kept as long as the job row is.
    return_value = models.JSONField(null=True, blank=True, verbose_name=_("return value"))
    concurrency_key = models.CharField(max_length=255, null=True, blank=True, verbose_name=_("concurrency key"))
    scheduled_at = models.DateTimeField(null=True, blank=True, verbose_name=_("scheduled at"))
    finished_at = models.DateTimeField(null=True, blank=True, verbose_name=_("finished at"))
    discarded_at = models.DateTimeField(null=True, blank=True, verbose_name=_("discarded at"))
    created_at = models.DateTimeField(default=timezone.now, verbose_name=_("created at"))
    updated_at = models.DateTimeField(default=timezone.now, verbose_name=_("updated at"))

    objects = JobQuerySet.as_manager()

    class Meta:
        db_table = "quebec_jobs"
        verbose_name = _("job")
        verbose_name_plural = _("jobs")
        indexes = [
            models.Index(fields=["active_job_id"], name="quebec_jobs_active_job_id"),
            models.Index(fields=["class_name"], name="quebec_jobs_class_name"),
            models.Index(fields=["finished_at"], name="quebec_jobs_finished_at"),
            models.Index(fields=["queue_name", "finished_at"], name="quebec_jobs_for_filtering"),
        ]

    def __str__(self):
        return f"{self.class_name} #{self.pk}"

    def dispatch(self):
        """Create the execution row that puts this saved job in line: ready or scheduled."""
        dispatch_all([self], self._state.db)


def enqueue_jobs(jobs, using):
    """Insert unsaved ``Job`` rows and put each in line: ready, scheduled or blocked."""
    connection = connections[using]
    if connection.vendor == "postgresql" and not any(job.concurrency_key for job in jobs):
        # Inside the caller's transaction, a savepoint as the general path has: a caller who
        # catches a failed enqueue can go on with its transaction.
        with transaction.atomic(using=using) if connection.in_atomic_block else contextlib.nullcontext():
            _enqueue_in_one_statement(jobs, using)
        return
    with write_transaction(using):
        insert_rows(Job, jobs, using)
        dispatch_all(jobs, using)


# How ``_enqueue_in_one_statement`` fills each column of a new job: from the job's values,
# or with the same value for every row (SQL text, or the time of the enqueue).
_PER_JOB_COLUMNS = (
    "queue_name", "class_name", "arguments", "priority", "active_job_id", "executions", "exception_executions",
    "scheduled_at",
)
_SAME_FOR_EVERY_JOB = {
    "attempts": "'[]'::jsonb", "return_value": "NULL", "concurrency_key": "NULL", "finished_at": "NULL",
    "discarded_at": "NULL", "created_at": "%s", "updated_at": "%s",
}


def json_rows(fields, objects, connection):
    """PostgreSQL: ``objects``' values of ``fields`` as one JSON document, a list of objects
    keyed by column plus their ``position``, for ``json_rows_sql``. One string to send however
    many rows there are: json.dumps is far quicker than psycopg quoting each value of an array,
    and JSON columns go in as they are, not encoded twice."""
    rows = []
    for position, obj in enumerate(objects):
        row = {"position": position}
        for field in fields:
            value = getattr(obj, field.attname)
            if value is not None and isinstance(field, models.UUIDField):
                value = str(value)
            elif value is not None and isinstance(field, models.DateTimeField):
                value = field.get_db_prep_save(value, connection).isoformat()
            row[field.column] = value
        rows.append(row)
    encoders = {field.encoder for field in fields if isinstance(field, models.JSONField)} - {None}
    return json.dumps(rows, cls=encoders.pop() if encoders else None)


def json_rows_sql(fields, connection):
    """The ``FROM`` source reading ``json_rows`` back as typed rows named by the fields' columns,
    with their ``position``. (A JSON null becomes SQL NULL, as Django stores None.)"""
    quote = connection.ops.quote_name
    columns = ", ".join(f"{quote(field.column)} {field.db_type(connection)}" for field in fields)
    return f"jsonb_to_recordset(%s::jsonb) AS v ({columns}, position bigint)"


@functools.lru_cache(maxsize=16)
def _enqueue_sql(using, rows, notify):
    """The text of ``_enqueue_in_one_statement`` for one job (``rows`` "one": plain parameters)
    or many ("many": one JSON document read by ``jsonb_to_recordset``)."""
    connection = connections[using]
    quote = connection.ops.quote_name
    meta = Job._meta
    fields = [meta.get_field(name) for name in _PER_JOB_COLUMNS]
    constants = ", ".join(_SAME_FOR_EVERY_JOB.values())
    if rows == "one":
        # Character columns cast to text: a cast to varchar(n) would cut a longer value short
        # instead of letting the INSERT refuse it.
        casts = ["text" if isinstance(field, models.CharField) else field.db_type(connection) for field in fields]
        select = f"SELECT {', '.join(f'%s::{cast}' for cast in casts)}, {constants}"
    else:
        names = ", ".join(f"v.{quote(field.column)}" for field in fields)
        select = f"SELECT {names}, {constants} FROM {json_rows_sql(fields, connection)} ORDER BY position"
    columns = [*_PER_JOB_COLUMNS, *_SAME_FOR_EVERY_JOB]
    assert len(columns) == len(meta.concrete_fields) - 1, "every column of Job but its id"
    ready, scheduled = quote(ReadyExecution._meta.db_table), quote(ScheduledExecution._meta.db_table)
    return f"""WITH j AS (
            INSERT INTO {quote(meta.db_table)} ({", ".join(quote(meta.get_field(name).column) for name in columns)})
            {select}
            RETURNING id, queue_name, priority, scheduled_at
        ), r AS (
            INSERT INTO {ready} (job_id, queue_name, priority, created_at)
            SELECT id, queue_name, priority, %s FROM j WHERE scheduled_at IS NULL OR scheduled_at <= %s
        ), s AS (
            INSERT INTO {scheduled} (job_id, queue_name, priority, scheduled_at, reason, created_at)
            SELECT id, queue_name, priority, scheduled_at, '', %s FROM j WHERE scheduled_at > %s
        ){f", n AS (SELECT pg_notify('{READY_CHANNEL}', ''))" if notify else ""}
        SELECT id FROM j{" CROSS JOIN n" if notify else ""}"""


def _enqueue_in_one_statement(jobs, using):
    """PostgreSQL without concurrency keys: the jobs, their ready and scheduled rows and the
    NOTIFY in a single statement, a transaction by itself outside an atomic block. One round
    trip and one commit per enqueue where the general path takes five round trips, and no ORM
    work per row and field.

    The NOTIFY is PostgreSQL's own: sent when the transaction commits, and only once however
    many jobs or statements the transaction holds.
    """
    from quebec import conf

    connection = connections[using]
    now = timezone.now()
    db_now = Job._meta.get_field("created_at").get_db_prep_save(now, connection)
    notify = conf.get().use_listen_notify and any(not (job.scheduled_at and job.scheduled_at > now) for job in jobs)
    fields = [Job._meta.get_field(name) for name in _PER_JOB_COLUMNS]
    # The times: created_at and updated_at (in the SELECT), then the ready and scheduled rows'.
    if len(jobs) == 1:
        sql = _enqueue_sql(using, "one", notify)
        params = [*(value_converter(field, connection)(getattr(jobs[0], field.attname)) for field in fields),
                  *[db_now] * 6]
    else:  # the rows come after the SELECT's two times, in its FROM
        sql = _enqueue_sql(using, "many", notify)
        params = [db_now, db_now, json_rows(fields, jobs, connection), *[db_now] * 4]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        # The rows are inserted in the order of the jobs (ORDER BY position), and the id
        # sequence hands out increasing numbers within the statement.
        ids = sorted(job_id for job_id, in cursor.fetchall())
    for job, job_id in zip(jobs, ids, strict=True):
        job.pk = job_id
        job.created_at = job.updated_at = now
        job._state.adding, job._state.db = False, using


def dispatch_all(jobs, using):
    """Create the ready or scheduled rows of saved jobs, a statement per table."""
    now = timezone.now()
    scheduled = [job for job in jobs if job.scheduled_at and job.scheduled_at > now]
    insert_rows(ScheduledExecution, [
        new_row(ScheduledExecution, job_id=job.pk, queue_name=job.queue_name, priority=job.priority,
                scheduled_at=job.scheduled_at, reason="", created_at=now)
        for job in scheduled
    ], using)
    make_ready([job for job in jobs if not (job.scheduled_at and job.scheduled_at > now)], using)


def make_ready(jobs, using):
    """Put due jobs in line. A job with a concurrency key must first take a slot of its key;
    without one it is blocked, or discarded if its class says so."""
    ready, blocked, discarded = [], [], []
    # Semaphores are taken in key order, so two batches with the same keys cannot deadlock.
    for job in sorted(jobs, key=lambda job: job.concurrency_key or ""):
        if not job.concurrency_key:
            ready.append(job)
            continue
        limit = concurrency.limit_for(job.class_name)
        if Semaphore.objects.using(using).wait(job.concurrency_key, limit.limit, limit.duration):
            ready.append(job)
        else:
            (discarded if limit.discard else blocked).append((job, limit))
    if ready:
        now = timezone.now()
        insert_rows(ReadyExecution, [
            new_row(ReadyExecution, job_id=job.pk, queue_name=job.queue_name, priority=job.priority, created_at=now)
            for job in ready
        ], using)
        notify_ready(using)
    expires = timezone.now()
    BlockedExecution.objects.using(using).bulk_create(
        BlockedExecution(job_id=job.pk, queue_name=job.queue_name, priority=job.priority,
                         concurrency_key=job.concurrency_key, expires_at=expires + timedelta(seconds=limit.duration))
        for job, limit in blocked
    )
    if discarded:
        Job.objects.using(using).filter(pk__in=[job.pk for job, _ in discarded]).update(
            finished_at=expires, discarded_at=expires, updated_at=expires
        )


class Execution(models.Model):
    """A job's current state; the row's primary key is the job's id."""

    # DO_NOTHING: a job is deleted only once no execution holds it, and the database's foreign
    # key refuses anything else. It also lets Django delete jobs without visiting these tables.
    job = models.OneToOneField(
        Job, on_delete=models.DO_NOTHING, primary_key=True, related_name="+", verbose_name=_("job")
    )
    created_at = models.DateTimeField(default=timezone.now, verbose_name=_("created at"))

    class Meta:
        abstract = True

    def __str__(self):
        return f"{type(self).__name__} for job #{self.job_id}"


class ExecutionQuerySet(models.QuerySet):
    def in_locked_batches(self, action, batch_size=500):
        """Call ``action(job_ids)`` on these rows, a locked batch per transaction; returns how many.

        SKIP LOCKED: rows another process is acting on right now (a dispatcher moving them, or
        another bulk action) are theirs; each row is acted on once, by whoever locked it.
        """
        done = 0
        while True:
            with write_transaction(self.db):
                ids = list(self.select_for_update(skip_locked=True).values_list("job_id", flat=True)[:batch_size])
                if not ids:
                    return done
                action(ids)
            done += len(ids)

    def discard_all(self, batch_size=500):
        """Mark these jobs discarded, never to run; returns how many."""
        return self.in_locked_batches(self._discard, batch_size)

    def _discard(self, job_ids):
        delete_by_pk(self.model, job_ids, self.db)
        now = timezone.now()
        Job.objects.using(self.db).filter(pk__in=job_ids).update(finished_at=now, discarded_at=now, updated_at=now)


class ReadyExecutionQuerySet(models.QuerySet):
    def for_queues(self, selector):
        """Rows matching one queue selector: ``"*"``, an exact name, or ``"prefix*"``."""
        if selector == "*":
            return self
        if selector.endswith("*"):
            return self.filter(queue_name__startswith=selector[:-1])
        return self.filter(queue_name=selector)

    def not_paused(self):
        return self.exclude(queue_name__in=Pause.objects.values("queue_name"))

    def claim(self, selectors, limit, process_id, skip_locked=True):
        """Move up to ``limit`` ready jobs into claimed executions for ``process_id``.

        Queue selectors are taken in order, and within one selector lower priority numbers and
        then older jobs come first. Returns the claimed ``Job`` rows in that order.
        """
        if len(selectors) == 1 and self._claims_in_one_statement():
            # One statement is a transaction of its own: no BEGIN and COMMIT round trips.
            return self._claim_in_one_statement(selectors, limit, process_id, skip_locked)
        if not self.worth_claiming(selectors):
            return []
        with write_transaction(self.db):
            return self.claim_in_transaction(selectors, limit, process_id, skip_locked)

    def worth_claiming(self, selectors):
        """False when SQLite has nothing ready for ``selectors``: an idle SQLite worker should
        not take the write lock to find nothing. Other databases lock only the rows they claim."""
        if connections[self.db].vendor != "sqlite":
            return True
        return any(self.not_paused().for_queues(selector).exists() for selector in selectors)

    def claim_in_transaction(self, selectors, limit, process_id, skip_locked=True):
        """``claim()`` inside the caller's write transaction (a worker records finished jobs in
        the same one)."""
        if limit <= 0:
            return []
        if self._claims_in_one_statement():
            return self._claim_in_one_statement(selectors, limit, process_id, skip_locked)
        job_ids = self._take_queue_slots(self._lock_next(selectors, limit, skip_locked))
        if not job_ids:
            return []
        ClaimedExecution.objects.using(self.db).bulk_create(
            ClaimedExecution(job_id=job_id, process_id=process_id) for job_id in job_ids
        )
        delete_by_pk(ReadyExecution, job_ids, self.db)
        jobs = Job.objects.using(self.db).in_bulk(job_ids)
        return [jobs[job_id] for job_id in job_ids]

    def _claims_in_one_statement(self):
        return connections[self.db].vendor == "postgresql" and not self.query.where and not concurrency.queue_limits()

    def _claim_in_one_statement(self, selectors, limit, process_id, skip_locked):
        """The claim on PostgreSQL without per-queue limits: one statement per selector locks
        the next ready rows, deletes them, inserts their claims and reads their jobs, so a claim
        costs one round trip instead of four. Same order and locking as ``_lock_next``."""
        jobs = []
        for selector in selectors:
            # Rows this transaction already moved are gone from its view of the ready table.
            claim_sql, params = self._claim_ctes(selector, limit - len(jobs), process_id, skip_locked)
            table = connections[self.db].ops.quote_name(Job._meta.db_table)
            sql = f"WITH {claim_sql} SELECT j.* FROM {table} j WHERE j.id IN (SELECT job_id FROM claims)"
            jobs += sorted(Job.objects.using(self.db).raw(sql, params), key=lambda job: (job.priority, job.pk))
            if len(jobs) >= limit:
                break
        return jobs

    def _claim_ctes(self, selector, limit, process_id, skip_locked):
        """The data-modifying CTEs ``locked``, ``moved`` and ``claims`` of a one-statement claim."""
        connection = connections[self.db]
        quote = connection.ops.quote_name
        ready, claimed = quote(ReadyExecution._meta.db_table), quote(ClaimedExecution._meta.db_table)
        pauses = quote(Pause._meta.db_table)
        conditions = [f"NOT EXISTS (SELECT 1 FROM {pauses} p WHERE p.queue_name = r.queue_name)"]
        params = []
        if selector.endswith("*") and selector != "*":
            prefix = selector[:-1].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            conditions.append("r.queue_name LIKE %s")
            params.append(f"{prefix}%")
        elif selector != "*":
            conditions.append("r.queue_name = %s")
            params.append(selector)
        lock = "FOR UPDATE OF r SKIP LOCKED" if skip_locked else "FOR UPDATE OF r"
        now = ClaimedExecution._meta.get_field("created_at").get_db_prep_save(timezone.now(), connection)
        sql = f"""
            locked AS (
                SELECT r.job_id FROM {ready} r WHERE {" AND ".join(conditions)}
                ORDER BY r.priority, r.job_id LIMIT %s {lock}
            ), moved AS (
                DELETE FROM {ready} r USING locked WHERE r.job_id = locked.job_id RETURNING r.job_id
            ), claims AS (
                INSERT INTO {claimed} (job_id, process_id, created_at)
                SELECT job_id, %s, %s FROM moved RETURNING job_id
            )"""
        return sql, [*params, limit, process_id, now]

    def finish_and_claim(self, finished, preserve, selectors, limit, process_id, skip_locked=True):
        """Record the successful runs ``finished`` (see ``ClaimedExecutionQuerySet.finish_all``)
        and claim up to ``limit`` jobs, as one transaction; returns (jobs recorded, jobs claimed)."""
        if (
            len(selectors) == 1
            and self._claims_in_one_statement()
            and not any(job.concurrency_key for job in finished)
        ):
            return self._finish_and_claim_in_one_statement(finished, preserve, selectors[0], limit, process_id,
                                                           skip_locked)
        if limit and not self.worth_claiming(selectors):
            limit = 0
        with write_transaction(self.db):
            recorded = ClaimedExecution.objects.using(self.db).finish_all(finished, process_id, preserve)
            return recorded, self.claim_in_transaction(selectors, limit, process_id, skip_locked)

    def _finish_and_claim_in_one_statement(self, finished, preserve, selector, limit, process_id, skip_locked):
        """``finish_and_claim`` on PostgreSQL as a single statement, a transaction by itself: one
        round trip where the general path takes five. Only for jobs without concurrency keys and
        queues without limits, which have no slots to give back."""
        connection = connections[self.db]
        quote = connection.ops.quote_name
        jobs_table, claimed = quote(Job._meta.db_table), quote(ClaimedExecution._meta.db_table)
        by_id = {job.pk: job for job in finished}
        params = [process_id, list(by_id)]
        owned = f"owned AS (DELETE FROM {claimed} c WHERE c.process_id = %s AND c.job_id = ANY(%s::bigint[]) RETURNING c.job_id)"
        if preserve:
            fields = [Job._meta.get_field(name) for name in ("id", *FINISH_FIELDS) if name != "updated_at"]
            assignments = ", ".join(f"{quote(field.column)} = v.{quote(field.column)}" for field in fields[1:])
            recorded_sql = f"""finished AS (
                UPDATE {jobs_table} j SET {assignments}, {quote("updated_at")} = %s
                FROM {json_rows_sql(fields, connection)}
                WHERE j.id = v.id AND j.id IN (SELECT job_id FROM owned) RETURNING j.id
            )"""
            params += [Job._meta.get_field("updated_at").get_db_prep_save(timezone.now(), connection),
                       json_rows(fields, finished, connection)]
        else:
            recorded_sql = f"finished AS (DELETE FROM {jobs_table} j WHERE j.id IN (SELECT job_id FROM owned) RETURNING j.id)"
        claim_sql, claim_params = self._claim_ctes(selector, limit, process_id, skip_locked)
        # One row at least, carrying the recorded ids, then the claimed jobs' columns (NULL when
        # nothing was claimed).
        sql = f"""WITH {owned}, {recorded_sql}, {claim_sql}
            SELECT f.ids AS finished_ids, j.* FROM (SELECT array_agg(id) AS ids FROM finished) f
            LEFT JOIN {jobs_table} j ON j.id IN (SELECT job_id FROM claims)"""
        rows = list(Job.objects.using(self.db).raw(sql, [*params, *claim_params]))
        recorded = [by_id[job_id] for job_id in rows[0].finished_ids or []]
        claimed = sorted((job for job in rows if job.pk is not None), key=lambda job: (job.priority, job.pk))
        return recorded, claimed

    def _take_queue_slots(self, rows):
        """Keep the locked rows whose queue has a free slot (per-queue limits); returns their ids."""
        limits = concurrency.queue_limits()
        semaphores = Semaphore.objects.using(self.db)
        # Queue semaphores are taken in queue order, so two claimers cannot deadlock on them.
        taken = {
            job_id
            for job_id, queue in sorted(rows, key=lambda row: row[1])
            if queue not in limits or semaphores.wait(concurrency.QUEUE_KEY.format(queue), limits[queue], None)
        }
        return [job_id for job_id, _ in rows if job_id in taken]

    def _lock_next(self, selectors, limit, skip_locked):
        # SKIP LOCKED: rows another worker is claiming right now are passed over, not waited for,
        # and the lock is held until this transaction has moved them to claimed executions, so
        # no two workers can take the same row. SQLite has no row locks: the write transaction
        # taken by write_transaction() serialises claimers instead.
        locked = []
        full_queues = self._full_queues()
        for selector in selectors:
            rows = (
                self.not_paused()
                .for_queues(selector)
                .exclude(queue_name__in=full_queues)
                .exclude(job_id__in=[job_id for job_id, _ in locked])
                .order_by("priority", "job_id")
                .select_for_update(skip_locked=skip_locked)
                .values_list("job_id", "queue_name")
            )
            exact = "*" not in selector
            index = "quebec_ready_poll_by_queue" if exact else "quebec_ready_poll_all"
            locked += fetch_locked(rows[: limit - len(locked)], index)
            if len(locked) >= limit:
                break
        return locked

    def _full_queues(self):
        # Queues at their limit are left out of the claim, so they cannot crowd out the others.
        limits = concurrency.queue_limits()
        if not limits:
            return []
        keys = {concurrency.QUEUE_KEY.format(queue): queue for queue in limits}
        return [keys[key] for key in Semaphore.objects.using(self.db).full(list(keys))]


class ReadyExecution(Execution):
    queue_name = models.CharField(max_length=255, verbose_name=_("queue name"))
    priority = models.IntegerField(default=0, verbose_name=_("priority"))

    objects = ReadyExecutionQuerySet.as_manager()

    class Meta:
        db_table = "quebec_ready_executions"
        verbose_name = _("ready execution")
        verbose_name_plural = _("ready executions")
        indexes = [
            models.Index(fields=["priority", "job"], name="quebec_ready_poll_all"),
            models.Index(fields=["queue_name", "priority", "job"], name="quebec_ready_poll_by_queue"),
        ]


class ScheduledExecutionQuerySet(ExecutionQuerySet):
    def due(self, now=None):
        return self.filter(scheduled_at__lte=now or timezone.now())

    def dispatch_due(self, batch_size, skip_locked=True):
        """Move up to ``batch_size`` due scheduled jobs to ready; returns how many moved."""
        with write_transaction(self.db):
            # SKIP LOCKED lets several dispatchers share the backlog; each row moves once
            # because it stays locked until it is deleted below.
            due = (
                self.due()
                .order_by("scheduled_at", "priority", "job_id")
                .select_for_update(skip_locked=skip_locked)
                .values_list("job_id", "queue_name", "priority")[:batch_size]
            )
            rows = fetch_locked(due, "quebec_scheduled_dispatch")
            if not rows:
                return 0
            job_ids = [row[0] for row in rows]
            delete_by_pk(ScheduledExecution, job_ids, self.db)
            make_ready(Job.objects.using(self.db).filter(pk__in=job_ids).only(*READY_FIELDS), self.db)
        return len(rows)

    def run_all_now(self, batch_size=500):
        """Make these scheduled jobs due at once; the dispatcher moves them to ready. Returns how many."""
        now = timezone.now()
        done = 0
        while True:
            # Only the due time changes: the dispatcher's own path (and its locking) does the move.
            with write_transaction(self.db):
                ids = list(self.filter(scheduled_at__gt=now).values_list("job_id", flat=True)[:batch_size])
                if not ids:
                    return done
                done += ScheduledExecution.objects.using(self.db).filter(pk__in=ids).update(scheduled_at=now)
                Job.objects.using(self.db).filter(pk__in=ids).update(scheduled_at=now, updated_at=now)

    def cancel_all(self, batch_size=500):
        """Mark these scheduled jobs discarded without running them; returns how many."""
        return self.discard_all(batch_size)


class ScheduledExecution(Execution):
    queue_name = models.CharField(max_length=255, verbose_name=_("queue name"))
    priority = models.IntegerField(default=0, verbose_name=_("priority"))
    scheduled_at = models.DateTimeField(verbose_name=_("scheduled at"))
    # why it waits, when not just its schedule
    reason = models.CharField(max_length=255, blank=True, verbose_name=_("reason"))

    objects = ScheduledExecutionQuerySet.as_manager()

    class Meta:
        db_table = "quebec_scheduled_executions"
        verbose_name = _("scheduled execution")
        verbose_name_plural = _("scheduled executions")
        indexes = [
            models.Index(fields=["scheduled_at", "priority", "job"], name="quebec_scheduled_dispatch"),
        ]

    def run_now(self):
        """Make this job due at once; False if it is no longer scheduled."""
        return ScheduledExecution.objects.using(self._state.db).filter(pk=self.pk).run_all_now() == 1

    def cancel(self):
        """Mark this job discarded without running it; False if it is no longer scheduled."""
        return ScheduledExecution.objects.using(self._state.db).filter(pk=self.pk).cancel_all() == 1


class ClaimedExecutionQuerySet(models.QuerySet):
    def release(self):
        """Put these claimed jobs back in line as ready; returns how many were released."""
        with write_transaction(self.db):
            # Lock the claims first so a worker finishing one of them at this moment either
            # finishes before us (and the row is gone) or finds its claim released.
            job_ids = list(self.select_for_update().values_list("job_id", flat=True))
            if not job_ids:
                return 0
            jobs = list(Job.objects.using(self.db).filter(pk__in=job_ids).values_list("pk", "queue_name", "priority"))
            # Back in line without passing the concurrency gate again: the job keeps its key's
            # slot, as if it had never been claimed. Its queue slot is given back.
            ReadyExecution.objects.using(self.db).bulk_create(
                ReadyExecution(job_id=job_id, queue_name=queue, priority=priority) for job_id, queue, priority in jobs
            )
            delete_by_pk(ClaimedExecution, job_ids, self.db)
            concurrency.release_queue_slots([queue for _, queue, _ in jobs], self.db)
            notify_ready(self.db)
        return len(job_ids)

    def finish_all(self, jobs, process_id, preserve):
        """Record the successful runs of ``jobs``, claimed by ``process_id``; returns those recorded.

        Each job carries what its run changed (counters, ``attempts``, ``return_value``,
        ``finished_at``). A few statements serve the whole batch, and the caller's write
        transaction makes each job's end, its claim's removal and the return of its concurrency
        slots one change. As in ``ClaimedExecution.finish``, a job whose claim was released or
        pruned meanwhile is left untouched.
        """
        if not jobs:
            return []
        owned = delete_claims(ClaimedExecution, [job.pk for job in jobs], process_id, self.db)
        # Slots are given back in key order, so two batches with the same keys cannot deadlock.
        recorded = sorted((job for job in jobs if job.pk in owned), key=lambda job: (job.concurrency_key or "", job.pk))
        if not recorded:
            return []
        if preserve:
            now = timezone.now()
            for job in recorded:
                job.updated_at = now
            update_rows(Job, recorded, FINISH_FIELDS, self.db)
        else:
            delete_by_pk(Job, [job.pk for job in recorded], self.db)
        for job in recorded:
            concurrency.release_slots(job, self.db)
        return recorded


class ClaimedExecution(Execution):
    """A job a worker process has taken; it runs, or waits for a free thread, in that process."""

    # No index on process: this table holds only the jobs running right now, so finding a
    # process's claims is a cheap scan, and with only the primary key to choose from MySQL
    # never locks a claim through a second index (which deadlocked finish against release).
    process = models.ForeignKey(
        "Process",
        null=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        related_name="claimed_executions",
        verbose_name=_("process"),
    )

    objects = ClaimedExecutionQuerySet.as_manager()

    class Meta:
        db_table = "quebec_claimed_executions"
        verbose_name = _("claimed execution")
        verbose_name_plural = _("claimed executions")

    # The outcomes of a run. Each returns False, touching nothing, when this claim is no longer
    # ours (released or pruned meanwhile). ``job`` carries the updated counters.

    def finish(self, job, preserve, return_value=None):
        """Record a successful run."""
        return self._conclude(job, delete=not preserve, finished_at=timezone.now(), return_value=return_value)

    def discard(self, job, preserve):
        """Record that the job was dropped by its class's ``discard_on``."""
        now = timezone.now()
        return self._conclude(job, delete=not preserve, finished_at=now, discarded_at=now)

    def retry(self, job, retry_at):
        """Schedule the next attempt of a job that raised an error its class retries."""
        job.scheduled_at = retry_at
        return self._conclude(job, then=lambda: dispatch_all([job], self._state.db), scheduled_at=retry_at)

    def fail(self, job, error):
        """Record a failed run with the error's class, message and backtrace."""

        def record_failure():
            FailedExecution.objects.using(self._state.db).create(
                job_id=self.job_id, attempt=job.executions, **FailedExecution.describe(error)
            )

        return self._conclude(job, then=record_failure)

    def _conclude(self, job, delete=False, then=None, **fields):
        with write_transaction(self._state.db):
            if not self._delete_claim():
                return False
            jobs = Job.objects.using(self._state.db).filter(pk=self.job_id)
            if delete:
                jobs.delete()
            else:
                jobs.update(**{
                    "executions": job.executions,
                    "exception_executions": job.exception_executions,
                    "attempts": job.attempts,
                    "updated_at": timezone.now(),
                    **fields,
                })
            concurrency.release_slots(job, self._state.db)
            if then is not None:
                then()
        return True

    def reschedule(self, job, run_at, reason):
        """Put a job that may not start yet (rate limited) back as scheduled, uncounted."""
        job.scheduled_at = run_at

        def schedule():
            ScheduledExecution.objects.using(self._state.db).create(
                job_id=job.pk, queue_name=job.queue_name, priority=job.priority, scheduled_at=run_at, reason=reason
            )

        # A throttled run does not count as an execution (the worker counted it when it began).
        return self._conclude(job, then=schedule, scheduled_at=run_at, executions=job.executions - 1)

    def _delete_claim(self):
        # Deleting by (job, process) is the ownership check: if the claim was released or
        # pruned meanwhile, nothing is deleted and the caller must not touch the job.
        claims = ClaimedExecution.objects.using(self._state.db).filter(job_id=self.job_id, process_id=self.process_id)
        return claims.delete()[0] == 1


class BlockedExecutionQuerySet(ExecutionQuerySet):
    def release_one(self, key):
        """Move the next job blocked on ``key`` to ready if the key has a free slot; True if one did."""
        with write_transaction(self.db):
            # SKIP LOCKED: a blocked job another process is releasing right now is theirs.
            next_blocked = (
                self.filter(concurrency_key=key)
                .order_by("priority", "job_id")
                .select_for_update(skip_locked=True)
                .values_list("job_id")[:1]
            )
            rows = fetch_locked(next_blocked, "quebec_blocked_release")
            if not rows:
                return False
            job = Job.objects.using(self.db).only(*READY_FIELDS).get(pk=rows[0][0])
            limit = concurrency.limit_for(job.class_name)
            if not Semaphore.objects.using(self.db).wait(key, limit.limit, limit.duration):
                return False
            delete_by_pk(BlockedExecution, [job.pk], self.db)
            ReadyExecution.objects.using(self.db).create(job_id=job.pk, queue_name=job.queue_name, priority=job.priority)
            notify_ready(self.db)
        return True

    def unblock_all(self, batch_size=500):
        """Make these blocked jobs ready now, over their key's limit; returns how many.

        Each takes a slot of its key even when none is free (the count goes below zero), so the
        slot it gives back when it ends keeps the accounting right.
        """
        return self.in_locked_batches(self._unblock, batch_size)

    def _unblock(self, job_ids):
        jobs = list(Job.objects.using(self.db).filter(pk__in=job_ids).only(*READY_FIELDS).order_by("concurrency_key"))
        for job in jobs:
            limit = concurrency.limit_for(job.class_name)
            Semaphore.objects.using(self.db).force(job.concurrency_key, limit.limit, limit.duration)
        delete_by_pk(BlockedExecution, job_ids, self.db)
        ReadyExecution.objects.using(self.db).bulk_create(
            ReadyExecution(job_id=job.pk, queue_name=job.queue_name, priority=job.priority) for job in jobs
        )
        notify_ready(self.db)

    def release_expired(self):
        """Retry the keys of jobs blocked past their TTL (a holder may have died); returns how many moved."""
        expired = self.filter(expires_at__lt=timezone.now()).order_by("concurrency_key")
        keys = list(expired.values_list("concurrency_key", flat=True).distinct()[:1000])
        moved = 0
        for key in keys:
            while self.release_one(key):
                moved += 1
        return moved


class BlockedExecution(Execution):
    """A job waiting for a free slot of its concurrency key."""

    queue_name = models.CharField(max_length=255, verbose_name=_("queue name"))
    priority = models.IntegerField(default=0, verbose_name=_("priority"))
    concurrency_key = models.CharField(max_length=255, verbose_name=_("concurrency key"))
    expires_at = models.DateTimeField(verbose_name=_("expires at"))

    objects = BlockedExecutionQuerySet.as_manager()

    class Meta:
        db_table = "quebec_blocked_executions"
        verbose_name = _("blocked execution")
        verbose_name_plural = _("blocked executions")
        indexes = [
            models.Index(fields=["concurrency_key", "priority", "job"], name="quebec_blocked_release"),
            models.Index(fields=["expires_at", "concurrency_key"], name="quebec_blocked_maintenance"),
        ]

    def unblock(self):
        """Make this job ready now, over its key's limit; False if it is no longer blocked."""
        return BlockedExecution.objects.using(self._state.db).filter(pk=self.pk).unblock_all() == 1

    def cancel(self):
        """Mark this job discarded without running it; False if it is no longer blocked."""
        return BlockedExecution.objects.using(self._state.db).filter(pk=self.pk).discard_all() == 1


class FailedExecutionQuerySet(ExecutionQuerySet):
    def matching(self, class_name=None, queue_name=None, failed_after=None, failed_before=None, error=None):
        """Failed jobs filtered by class, queue, time of failure and text of the error."""
        failed = self
        if class_name:
            failed = failed.filter(job__class_name=class_name)
        if queue_name:
            failed = failed.filter(job__queue_name=queue_name)
        if failed_after:
            failed = failed.filter(created_at__gte=failed_after)
        if failed_before:
            failed = failed.filter(created_at__lt=failed_before)
        if error:
            failed = failed.filter(models.Q(exception_class__icontains=error) | models.Q(message__icontains=error))
        return failed

    def retry_all(self, batch_size=500):
        """Put these failed jobs back in line as ready; returns how many."""
        return self.in_locked_batches(self._retry, batch_size)

    def _retry(self, job_ids):
        jobs = Job.objects.using(self.db).filter(pk__in=job_ids)
        delete_by_pk(FailedExecution, job_ids, self.db)
        # A retried job gets its retry attempts afresh; ``executions`` keeps counting.
        jobs.update(finished_at=None, scheduled_at=None, exception_executions={}, updated_at=timezone.now())
        make_ready(jobs.only(*READY_FIELDS), self.db)



class FailedExecution(Execution):
    """A job whose last run raised; it stays here until retried or discarded."""

    exception_class = models.CharField(max_length=255, verbose_name=_("exception class"))
    message = models.TextField(blank=True, verbose_name=_("message"))
    backtrace = models.TextField(blank=True, verbose_name=_("backtrace"))
    attempt = models.PositiveIntegerField(default=0, verbose_name=_("attempt"))

    objects = FailedExecutionQuerySet.as_manager()

    class Meta:
        db_table = "quebec_failed_executions"
        verbose_name = _("failed execution")
        verbose_name_plural = _("failed executions")

    @staticmethod
    def describe(error):
        """The columns that record ``error``: class path, message and full backtrace."""
        return describe_error(error)

    def retry(self):
        """Put this job back in line as ready; False if it is no longer failed."""
        return FailedExecution.objects.using(self._state.db).filter(pk=self.pk).retry_all() == 1

    def discard(self):
        """Mark this job discarded; False if it is no longer failed."""
        return FailedExecution.objects.using(self._state.db).filter(pk=self.pk).discard_all() == 1


EXECUTION_STATES = {
    "failed": FailedExecution,
    "claimed": ClaimedExecution,
    "ready": ReadyExecution,
    "scheduled": ScheduledExecution,
    "blocked": BlockedExecution,
}


class ProcessQuerySet(models.QuerySet):
    def register(self, kind, name, metadata=None, supervisor=None):
        now = timezone.now()
        return self.create(
            kind=kind,
            name=name,
            pid=os.getpid(),
            hostname=socket.gethostname(),
            supervisor=supervisor,
            metadata=metadata or {},
            last_heartbeat_at=now,
            created_at=now,
        )


class Process(models.Model):
    """A running worker, dispatcher, scheduler or supervisor, kept alive by heartbeats."""

    kind = models.CharField(max_length=32, verbose_name=_("kind"))
    name = models.CharField(max_length=255, unique=True, verbose_name=_("name"))
    pid = models.IntegerField(verbose_name=_("pid"))
    hostname = models.CharField(max_length=255, blank=True, verbose_name=_("hostname"))
    supervisor = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children", verbose_name=_("supervisor")
    )
    metadata = models.JSONField(default=dict, blank=True, verbose_name=_("metadata"))
    last_heartbeat_at = models.DateTimeField(verbose_name=_("last heartbeat at"))
    created_at = models.DateTimeField(default=timezone.now, verbose_name=_("created at"))

    objects = ProcessQuerySet.as_manager()

    class Meta:
        db_table = "quebec_processes"
        verbose_name = _("process")
        verbose_name_plural = _("processes")
        indexes = [models.Index(fields=["last_heartbeat_at"], name="quebec_processes_heartbeat")]

    def __str__(self):
        return f"{self.kind} {self.name}"

    def heartbeat(self, **metadata):
        """Record that the process is alive; False if its row is gone (it was pruned)."""
        now = timezone.now()
        if metadata:
            self.metadata = {**self.metadata, **metadata}
        updated = Process.objects.using(self._state.db).filter(pk=self.pk).update(
            last_heartbeat_at=now, metadata=self.metadata
        )
        self.last_heartbeat_at = now
        return updated == 1

    def deregister(self):
        """Release this process's claimed jobs back to ready and remove its row."""
        released = self.claimed_executions.using(self._state.db).release()
        Process.objects.using(self._state.db).filter(pk=self.pk).delete()
        return released


class Pause(models.Model):
    """A paused queue: workers skip it until the row is removed."""

    queue_name = models.CharField(max_length=255, unique=True, verbose_name=_("queue name"))
    created_at = models.DateTimeField(default=timezone.now, verbose_name=_("created at"))

    class Meta:
        db_table = "quebec_pauses"
        verbose_name = _("pause")
        verbose_name_plural = _("pauses")

    def __str__(self):
        return self.queue_name

    @classmethod
    def pause(cls, queue_name, using="default"):
        cls.objects.using(using).get_or_create(queue_name=queue_name)

    @classmethod
    def resume(cls, queue_name, using="default"):
        cls.objects.using(using).filter(queue_name=queue_name).delete()


class SemaphoreQuerySet(models.QuerySet):
    def wait(self, key, limit, duration):
        """Take one of ``limit`` slots of ``key``; True when taken, False when all are held."""
        now = timezone.now()
        fields = {"value": F("value") - 1, "updated_at": now, "expires_at": _expiry(now, duration)}
        # The guard (value > 0) and the decrement are one statement: two processes can never
        # both take the last slot.
        if self.filter(key=key, value__gt=0).update(**fields):
            return True
        if self.filter(key=key).exists():
            return False
        try:
            with transaction.atomic(using=self.db):  # a savepoint: losing the race to create is fine
                self.create(key=key, value=limit - 1, expires_at=fields["expires_at"])
            return True
        except IntegrityError:
            # Another transaction created the row this instant, taking a slot. Updating it now
            # would deadlock on MySQL against the other losers of the race (each holds a shared
            # lock from its failed insert), so count the key as full: a blocked job is let in
            # when a holder finishes, and a ready row is claimed on the next poll.
            return False

    def ensure(self, key, limit):
        """Create ``key``'s row with all ``limit`` slots free if it does not exist (call outside
        transactions, so that racing creators cannot deadlock)."""
        try:
            with write_transaction(self.db):
                self.get_or_create(key=key, defaults={"value": limit, "expires_at": _expiry(timezone.now(), None)})
        except IntegrityError:
            pass

    def force(self, key, limit, duration):
        """Take a slot of ``key`` whether or not one is free (an operator's override)."""
        now = timezone.now()
        taken = self.filter(key=key).update(value=F("value") - 1, updated_at=now, expires_at=_expiry(now, duration))
        if not taken:
            self.create(key=key, value=limit - 1, expires_at=_expiry(now, duration))

    def signal(self, key, limit, duration):
        """Give back a slot of ``key``, never above ``limit``."""
        now = timezone.now()
        self.filter(key=key, value__lt=limit).update(value=F("value") + 1, updated_at=now,
                                                     expires_at=_expiry(now, duration))

    def full(self, keys):
        return set(self.filter(key__in=keys, value__lte=0).values_list("key", flat=True))

    def expired(self):
        return self.filter(expires_at__lt=timezone.now())


def _expiry(now, duration):
    # Queue semaphores have no TTL: pruning dead processes gives their slots back.
    return now + timedelta(seconds=duration) if duration is not None else now + timedelta(days=3650)


class Semaphore(models.Model):
    """Free slots of one concurrency key; changed only by guarded atomic updates."""

    key = models.CharField(max_length=255, unique=True)
    value = models.IntegerField(default=1)
    expires_at = models.DateTimeField()
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    objects = SemaphoreQuerySet.as_manager()

    class Meta:
        db_table = "quebec_semaphores"
        indexes = [models.Index(fields=["expires_at"], name="quebec_semaphores_expiry")]

    def __str__(self):
        return self.key


class RateLimitStartQuerySet(models.QuerySet):
    def admit(self, bucket, max_starts, window, now):
        """Record a start in ``bucket`` if its window has room and return None; else return when
        the oldest counted start leaves the window."""
        window = timedelta(seconds=concurrency.seconds(window))
        lock_key = concurrency.RATE_KEY.format(bucket)
        lock = Semaphore.objects.using(self.db).filter(key=lock_key)
        if not lock.exists():
            # Created outside the transaction below: concurrent inserts of one unique key can
            # deadlock on MySQL, and a lost race here is harmless.
            Semaphore.objects.using(self.db).ensure(lock_key, 0)
        with write_transaction(self.db):
            # One lock row per bucket serialises its starters: two workers cannot both see the
            # last free place in the window.
            lock.select_for_update().exists()
            recent = self.filter(bucket=bucket)
            recent.filter(started_at__lt=now - window).delete()
            starts = list(recent.order_by("started_at").values_list("started_at", flat=True))
            if len(starts) < max_starts:
                self.create(bucket=bucket, started_at=now)
                return None
        return starts[len(starts) - max_starts] + window + timedelta(milliseconds=1)


class RateLimitStart(models.Model):
    """When a rate-limited job started, kept for as long as its window lasts."""

    bucket = models.CharField(max_length=255)
    started_at = models.DateTimeField()

    objects = RateLimitStartQuerySet.as_manager()

    class Meta:
        db_table = "quebec_rate_limit_starts"
        indexes = [models.Index(fields=["bucket", "started_at"], name="quebec_rate_limit_window")]


class RecurringTaskQuerySet(models.QuerySet):
    def active(self):
        return self.filter(paused_at__isnull=True)

    def sync_static(self, tasks):
        """Make the static tasks match ``tasks`` (key -> field values): add, change, remove."""
        with write_transaction(self.db):
            self.filter(static=True).exclude(key__in=list(tasks)).delete()
            for key, fields in tasks.items():
                task, created = self.get_or_create(key=key, defaults={**fields, "static": True})
                changed = {name: value for name, value in fields.items() if getattr(task, name) != value}
                if not created and (changed or not task.static):
                    self.filter(pk=task.pk).update(**changed, static=True, updated_at=timezone.now())


class RecurringTask(models.Model):
    """A task the scheduler enqueues on a schedule: from configuration (static) or from code."""

    key = models.CharField(max_length=255, unique=True, verbose_name=_("key"))
    schedule = models.CharField(max_length=255, verbose_name=_("schedule"))
    # dotted path of a job class
    class_name = models.CharField(max_length=255, blank=True, verbose_name=_("class name"))
    command = models.CharField(max_length=2048, blank=True, verbose_name=_("command"))  # dotted path of a callable
    arguments = models.JSONField(default=dict, blank=True, verbose_name=_("arguments"))
    # blank: the job class's own
    queue_name = models.CharField(max_length=255, blank=True, verbose_name=_("queue name"))
    priority = models.IntegerField(null=True, blank=True, verbose_name=_("priority"))  # null: the job class's own
    description = models.TextField(blank=True, verbose_name=_("description"))
    catch_up = models.BooleanField(default=False, verbose_name=_("catch up"))
    static = models.BooleanField(default=True, verbose_name=_("static"))
    paused_at = models.DateTimeField(null=True, blank=True, verbose_name=_("paused at"))
    created_at = models.DateTimeField(default=timezone.now, verbose_name=_("created at"))
    updated_at = models.DateTimeField(default=timezone.now, verbose_name=_("updated at"))

    objects = RecurringTaskQuerySet.as_manager()

    class Meta:
        db_table = "quebec_recurring_tasks"
        verbose_name = _("recurring task")
        verbose_name_plural = _("recurring tasks")

    def __str__(self):
        return self.key

    @property
    def parsed_schedule(self):
        from quebec.schedule import parse

        return parse(self.schedule)

    def next_run(self, after=None):
        return self.parsed_schedule.next_after(after or timezone.now())

    def last_execution(self):
        """The latest enqueued run, with its job's status as ``status``, or None."""
        executions = RecurringExecution.objects.using(self._state.db).filter(task_key=self.key)
        latest = executions.order_by("-run_at").first()
        if latest is not None:
            job = Job.objects.using(self._state.db).with_status().filter(pk=latest.job_id).first()
            latest.status = job.status if job else ("finished" if latest.job_id else None)
        return latest

    def enqueue(self, run_at):
        """Enqueue the run at ``run_at`` unless another scheduler did; returns the execution or None."""
        from quebec.recurring import enqueue_run

        return enqueue_run(self, run_at)

    def run_now(self):
        """Enqueue a run at once, outside the schedule."""
        return self.enqueue(timezone.now())

    def pause(self):
        """Skip this task's runs until ``resume()``."""
        RecurringTask.objects.using(self._state.db).filter(pk=self.pk).update(paused_at=timezone.now())
        self.refresh_from_db(fields=["paused_at"])

    def resume(self):
        RecurringTask.objects.using(self._state.db).filter(pk=self.pk).update(paused_at=None, updated_at=timezone.now())
        self.refresh_from_db(fields=["paused_at"])


class RecurringExecution(models.Model):
    """One enqueued run of a recurring task; unique per run time, so it is enqueued once."""

    task_key = models.CharField(max_length=255)
    run_at = models.DateTimeField()
    # No database constraint: clearing finished jobs must not have to visit this table.
    job = models.OneToOneField(Job, null=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "quebec_recurring_executions"
        constraints = [models.UniqueConstraint(fields=["task_key", "run_at"], name="quebec_recurring_run_once")]

    def __str__(self):
        return f"{self.task_key} at {self.run_at}"


__all__ = [
    "Job",
    "ReadyExecution",
    "ScheduledExecution",
    "ClaimedExecution",
    "BlockedExecution",
    "FailedExecution",
    "Process",
    "Pause",
    "Semaphore",
    "RecurringTask",
    "RecurringExecution",
    "RateLimitStart",
]
