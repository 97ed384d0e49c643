"""The statements behind every job transition, written for any database Django supports.

Each vendor module subclasses ``Operations`` and overrides what it can do in fewer round trips
(PostgreSQL) or must write differently (MySQL's index hints and keyed deletes, SQLite's lack of
row locks). The lifecycle calls only these methods, so a transition is written once and carried
out the best way each database allows.
"""

import collections
import functools

from django.db import connections, models
from django.db.models import F
from django.utils import timezone

from quebec import conf, queue_selectors
from quebec.db import job_rows, wakeup
from quebec.db.connection import after_commit, send
from quebec.db.rows import chunks, json_converter, loaded_rows, new_row, value_converter
from quebec.models.stats import SUMMED
from quebec.models import (
    Batch,
    BlockedExecution,
    ClaimedExecution,
    FailedExecution,
    Job,
    JobStat,
    Pause,
    ReadyExecution,
    ScheduledExecution,
    Semaphore,
    UniqueKey,
)

# What the end of a run writes to its job's row, whatever the outcome.
END_FIELDS = (
    "executions",
    "exception_executions",
    "attempts",
    "return_value",
    "scheduled_at",
    "finished_at",
    "discarded_at",
    "updated_at",
)


def _number(name, value):
    """A sum as SQL text: seconds as a float, counts as an integer (MySQL sums come as Decimal)."""
    return repr(float(value)) if name.endswith("_sum") else str(int(value))


class Operations:
    vendor = None
    # A LIKE pattern's escape character, where the database has no default one.
    like_escape = ""

    def __init__(self, using):
        self.using = using
        self._quoted = {}
        self._job_statements = {}  # (columns sent, rows, returning) -> the enqueue's INSERT

    @property
    def connection(self):
        return connections[self.using]

    def quote(self, name):
        """``name`` quoted for this database (remembered: statements are built on hot paths)."""
        try:
            return self._quoted[name]
        except KeyError:
            self._quoted[name] = quoted = self.connection.ops.quote_name(name)
            return quoted

    def table(self, model):
        return self.quote(model._meta.db_table)

    # -- Rows -----------------------------------------------------------------------------

    def insert_rows(self, model, objects, batch_size=500):
        """INSERT unsaved instances of ``model`` and set their primary keys.

        What ``bulk_create`` does for Quebec's own rows at a fraction of its cost per row: the
        statement is built once per batch and each distinct value is converted once.
        """
        if not objects:
            return
        connection = self.connection
        meta = model._meta
        fields = [field for field in meta.concrete_fields if not field.primary_key or not field.auto_created]
        auto_pk = meta.pk.auto_created
        head = f"INSERT INTO {self.table(model)} ({', '.join(self.quote(field.column) for field in fields)}) VALUES "
        row = f"({', '.join(['%s'] * len(fields))})"
        returning = f" RETURNING {self.quote(meta.pk.column)}" if auto_pk else ""
        converters = [(field.attname, value_converter(field, connection)) for field in fields]
        with connection.cursor() as cursor:
            if auto_pk and not connection.features.can_return_rows_from_bulk_insert:
                # MySQL hands back only the id of a single-row insert.
                for obj in objects:
                    cursor.execute(head + row, [convert(getattr(obj, name)) for name, convert in converters])
                    obj.pk = cursor.lastrowid
                    obj._state.adding, obj._state.db = False, self.using
                return
            for start in range(0, len(objects), batch_size):
                batch = objects[start : start + batch_size]
                params = [convert(getattr(obj, name)) for obj in batch for name, convert in converters]
                cursor.execute(head + ", ".join([row] * len(batch)) + returning, params)
                ids = [row_id for (row_id,) in cursor.fetchall()] if auto_pk else None
                for index, obj in enumerate(batch):
                    if auto_pk:
                        obj.pk = ids[index]
                    obj._state.adding, obj._state.db = False, self.using

    def update_rows(self, model, objects, fields):
        """Write ``fields`` of each of ``objects`` to its row, matched by primary key: one
        statement text for all rows, sent with ``executemany``."""
        if not objects:
            return
        columns = [model._meta.get_field(name) for name in fields]
        assignments = ", ".join(f"{self.quote(field.column)} = %s" for field in columns)
        sql = f"UPDATE {self.table(model)} SET {assignments} WHERE {self.quote(model._meta.pk.column)} = %s"
        with self.connection.cursor() as cursor:
            cursor.executemany(sql, self._row_values(columns, objects))

    def _row_values(self, columns, objects):
        """Each object's values of ``columns``, then its primary key; a batch's rows share most
        values (times, counters), each converted once (``value_converter``). JSON values are
        converted one by one: (1,) and (1.0,) are equal keys but not the same JSON."""
        connection = self.connection
        converters = [
            (field.attname, json_converter(field, connection))
            if isinstance(field, models.JSONField)
            else (field.attname, value_converter(field, connection))
            for field in columns
        ]
        return [[*(convert(getattr(obj, name)) for name, convert in converters), obj.pk] for obj in objects]

    def delete_by_pk(self, model, pks):
        """Delete rows by primary key; returns how many were deleted. The statement the ORM's
        fast delete would send, without building a queryset for it, which cost more Python than
        the rest of a claim on SQLite: Quebec's foreign keys are DO_NOTHING, so there is nothing
        to cascade, and its own rows send no delete signals."""
        table, pk = self.table(model), self.quote(model._meta.pk.column)
        deleted = 0
        with self.connection.cursor() as cursor:
            for chunk in chunks(pks, 500):
                cursor.execute(f"DELETE FROM {table} WHERE {pk} IN ({', '.join(['%s'] * len(chunk))})", chunk)
                deleted += cursor.rowcount
        return deleted

    def delete_claims(self, job_ids, process_id):
        """Delete the claims of ``job_ids`` that ``process_id`` holds; returns the ids deleted.

        Deleting by (job, process) is the ownership check: a claim released or pruned meanwhile
        is not deleted, and its job must not be touched.
        """
        if not job_ids:
            return set()
        # A claim whose process is unknown (NULL) is owned by whoever ends it for that process.
        owner = "process_id IS NULL" if process_id is None else "process_id = %s"
        where = f"{owner} AND job_id IN ({', '.join(['%s'] * len(job_ids))})"
        params = [*([] if process_id is None else [process_id]), *job_ids]
        with self.connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {self.table(ClaimedExecution)} WHERE {where} RETURNING job_id", params)
            return {row[0] for row in cursor.fetchall()}

    # -- Locking the next rows ----------------------------------------------------------------

    def index_hint(self, index):
        """Text naming the index a locking read must walk (MySQL); nothing elsewhere."""
        return ""

    def lock_clause(self, skip_locked):
        return "FOR UPDATE SKIP LOCKED" if skip_locked else "FOR UPDATE"

    def ready_conditions(self, selector, alias="r"):
        """The WHERE conditions and params of ready rows one selector takes: not paused, and
        ``"*"``, an exact queue name or ``"prefix*"``."""
        conditions = [f"NOT EXISTS (SELECT 1 FROM {self.table(Pause)} p WHERE p.queue_name = {alias}.queue_name)"]
        condition, params = queue_selectors.sql(selector, f"{alias}.queue_name", self.like_escape)
        return conditions + ([condition] if condition else []), params

    def lock_ready(self, selector, limit, skip_locked, skip_queues=(), skip_jobs=()):
        """Lock the next ``limit`` ready rows of ``selector`` in claim order (lower priority
        number, then older); returns their (job id, queue name).

        SKIP LOCKED: rows another worker is claiming right now are passed over, not waited for,
        and stay locked until this transaction has moved them, so no two workers take one row.
        """
        conditions, params = self.ready_conditions(selector)
        for column, values in (("queue_name", skip_queues), ("job_id", skip_jobs)):
            if values:
                conditions.append(f"r.{column} NOT IN ({', '.join(['%s'] * len(values))})")
                params += list(values)
        index = "quebec_ready_poll_by_queue" if "*" not in selector else "quebec_ready_poll_all"
        sql = (
            f"SELECT r.job_id, r.queue_name FROM {self.table(ReadyExecution)} r {self.index_hint(index)} "
            f"WHERE {' AND '.join(conditions)} ORDER BY r.priority, r.job_id LIMIT %s {self.lock_clause(skip_locked)}"
        )
        return self._fetch(sql, [*params, limit])

    def lock_due(self, now, limit, skip_locked):
        """Lock the next ``limit`` scheduled rows due at ``now``; returns (job id, queue, priority).
        SKIP LOCKED lets several dispatchers share the backlog."""
        sql = (
            f"SELECT s.job_id, s.queue_name, s.priority FROM {self.table(ScheduledExecution)} s "
            f"{self.index_hint('quebec_scheduled_dispatch')} WHERE s.scheduled_at <= %s "
            f"ORDER BY s.scheduled_at, s.priority, s.job_id LIMIT %s {self.lock_clause(skip_locked)}"
        )
        return self._fetch(sql, [self._datetime(now), limit])

    def _fetch(self, sql, params):
        with self.connection.cursor() as cursor:
            cursor.execute(sql, params)
            return [tuple(row) for row in cursor.fetchall()]

    def _datetime(self, value, connection=None):
        return Job._meta.get_field("created_at").get_db_prep_save(value, connection or self.connection)

    # -- Transitions ----------------------------------------------------------------------------

    def enqueues_alone(self, jobs):
        """Whether ``insert_jobs`` writes these new jobs, which no participant concerns, as a
        transaction of its own when called outside one: the enqueue then opens none around it."""
        return False

    def insert_jobs(self, jobs, placement):
        """INSERT new jobs and the execution rows ``placement`` puts them in."""
        self.insert_new_jobs(jobs, placement.now)
        self.insert_executions(placement)

    def insert_new_jobs(self, jobs, now, batch_size=500):
        """INSERT unsaved ``Job`` rows (``job_rows``' columns) and set their ids and times."""
        connection = self.connection
        sent = job_rows.sent_columns(jobs)
        values = self._job_values(sent, now)
        returning = connection.features.can_return_rows_from_bulk_insert
        for start in range(0, len(jobs), batch_size if returning else 1):
            batch = jobs[start : start + batch_size] if returning else jobs[start : start + 1]
            sql = self._insert_jobs_sql(sent, len(batch), returning)
            params = [value for job in batch for value in values(job)]
            if returning:
                ids = [job_id for (job_id,) in send(connection, sql, params)]
            else:  # MySQL hands back only the id of a single-row insert
                ids = [send(connection, sql, params, returning=False)]
            for job, job_id in zip(batch, ids, strict=True):
                job.pk = job_id
        for job in jobs:
            job.created_at = job.updated_at = now
            job._state.adding, job._state.db = False, self.using

    def _job_values(self, sent, now):
        """A function giving a job's parameters for the columns of ``_insert_jobs_sql``."""
        connection = self.connection
        to_uuid = job_rows.uuid_converter(connection)
        converters = [(field.attname, self._job_converter(field)) for field in job_rows.fields(sent)]
        db_now = self._datetime(now, connection)
        arguments_text = job_rows.arguments_text

        def values(job):
            return (
                job.queue_name,
                job.class_name,
                arguments_text(job),
                job.priority,
                to_uuid(job.active_job_id),
                *[convert(getattr(job, name)) for name, convert in converters],
                db_now,
                db_now,
            )

        return values

    def _job_converter(self, field):
        if job_rows.is_json(field):
            return json_converter(field, self.connection)
        return value_converter(field, self.connection)

    def _insert_jobs_sql(self, sent, rows, returning):
        """INSERT of ``rows`` new jobs sending the columns of ``PER_JOB``, ``sent`` and the time."""
        key = (sent, rows, returning)
        try:
            return self._job_statements[key]
        except KeyError:
            pass
        job_rows.check_columns()
        defaults = [name for name in job_rows.UNLESS_DEFAULT if name not in sent]
        names = [*job_rows.PER_JOB, *sent, *job_rows.ENQUEUE_TIME, *defaults]
        columns = ", ".join(self.quote(Job._meta.get_field(name).column) for name in names)
        sent_count = len(job_rows.PER_JOB) + len(sent) + len(job_rows.ENQUEUE_TIME)
        row = f"({', '.join([*['%s'] * sent_count, *map(job_rows.literal, defaults)])})"
        suffix = f" RETURNING {self.quote('id')}" if returning else ""
        sql = f"INSERT INTO {self.table(Job)} ({columns}) VALUES {', '.join([row] * rows)}{suffix}"
        if len(self._job_statements) > 64:
            self._job_statements.clear()
        self._job_statements[key] = sql
        return sql

    def insert_executions(self, placement, wake=True):
        """The ready, scheduled and blocked rows of saved jobs, a statement per table; ``wake``:
        see ``insert_ready``."""
        now = timezone.now()
        self.insert_ready([(job.pk, job.queue_name, job.priority) for job in placement.ready], now, wake)
        self.insert_rows(
            ScheduledExecution,
            [
                new_row(
                    ScheduledExecution,
                    job_id=job.pk,
                    queue_name=job.queue_name,
                    priority=job.priority,
                    scheduled_at=job.scheduled_at,
                    reason=placement.reasons.get(job.pk, ""),
                    created_at=now,
                )
                for job in placement.scheduled
            ],
        )
        self.insert_rows(
            BlockedExecution,
            [
                new_row(
                    BlockedExecution,
                    job_id=job.pk,
                    queue_name=job.queue_name,
                    priority=job.priority,
                    concurrency_key=job.concurrency_key,
                    expires_at=expires_at,
                    created_at=now,
                )
                for job, expires_at in placement.blocked
            ],
        )

    def insert_ready(self, rows, now, wake=True):
        """Ready rows for (job id, queue name, priority) ``rows``, and a wake-up for the workers
        once the transaction commits; without ``wake`` the caller, which commits by hand, wakes
        them after (``notify_ready``)."""
        if not rows:
            return
        db_now = self._datetime(now)
        columns = f"{self.table(ReadyExecution)} (job_id, queue_name, priority, created_at)"
        for chunk in chunks(rows, 500):
            params = [
                value for job_id, queue_name, priority in chunk for value in (job_id, queue_name, priority, db_now)
            ]
            sql = f"INSERT INTO {columns} VALUES {', '.join(['(%s, %s, %s, %s)'] * len(chunk))}"
            send(self.connection, sql, params, returning=False)
        if wake:
            self.notify_ready()

    def insert_failures(self, jobs, errors):
        """The failed execution rows of ``jobs``, each with its error's description."""
        now = timezone.now()
        self.insert_rows(
            FailedExecution,
            [
                new_row(FailedExecution, job_id=job.pk, created_at=now, attempt=job.executions, **errors[job.pk])
                for job in jobs
            ],
        )

    def notify_ready(self):
        """Wake the idle workers of this host once the transaction commits (``quebec.db.wakeup``;
        PostgreSQL sends a NOTIFY instead). One wake-up per transaction, however many jobs."""
        if not conf.get().use_listen_notify:
            return
        connection = self.connection
        if connection.in_atomic_block and any(isinstance(hook, _WakeUp) for _, hook, _ in connection.run_on_commit):
            return  # this transaction wakes them already
        after_commit(_WakeUp(self.using), self.using, robust=True)

    def worth_claiming(self, selectors):
        """Whether a claim may find anything: a look at the ready table without a lock or a
        transaction, one statement per selector, cheaper than an empty claim (on SQLite, a
        claim takes the only write lock). An idle worker looks before it claims."""
        ready = ReadyExecution.objects.using(self.using).exclude(
            queue_name__in=Pause.objects.using(self.using).values("queue_name")
        )
        return any(ready.for_queues(selector).exists() for selector in selectors)

    def claim(self, selectors, limit, process_id, skip_locked, gate=None):
        """Move up to ``limit`` ready jobs into claims of ``process_id``; returns their ``Job``
        rows in claim order. ``gate(rows)`` keeps the locked rows allowed to run now (queue
        limits) and ``gate.full_queues()`` names queues to leave out."""
        locked = []
        skip_queues = gate.full_queues() if gate else ()
        for selector in selectors:
            locked += self.lock_ready(
                selector, limit - len(locked), skip_locked, skip_queues, [job_id for job_id, _ in locked]
            )
            if len(locked) >= limit:
                break
        job_ids = gate(locked) if gate else [job_id for job_id, _ in locked]
        if not job_ids:
            return []
        self.insert_claims(job_ids, process_id, timezone.now())
        self.delete_by_pk(ReadyExecution, job_ids)
        return self.load_jobs(job_ids)

    def load_jobs(self, job_ids, batch_size=500):
        """The jobs of ``job_ids``, in that order, loaded without the ORM's per-row work
        (``loaded_rows``)."""
        columns = job_columns(self.using)
        by_id = {}
        with self.connection.cursor() as cursor:
            for chunk in chunks(job_ids, batch_size):
                placeholders = ", ".join(["%s"] * len(chunk))
                cursor.execute(f"SELECT {columns} FROM {self.table(Job)} WHERE id IN ({placeholders})", chunk)
                by_id.update((job.pk, job) for job in loaded_rows(Job, cursor.fetchall(), self.connection))
        return [by_id[job_id] for job_id in job_ids]

    def insert_claims(self, job_ids, process_id, now, batch_size=500):
        """Claims of ``process_id`` on ``job_ids``: rows of plain values, no model instance per job."""
        table, created_at = self.table(ClaimedExecution), self._datetime(now)
        columns = ", ".join(self.quote(name) for name in ("job_id", "process_id", "created_at"))
        with self.connection.cursor() as cursor:
            for chunk in chunks(job_ids, batch_size):
                values = ", ".join(["(%s, %s, %s)"] * len(chunk))
                params = [value for job_id in chunk for value in (job_id, process_id, created_at)]
                cursor.execute(f"INSERT INTO {table} ({columns}) VALUES {values}", params)

    def end_claimed(self, written, deleted, process_id):
        """Remove the claims ``process_id`` holds on these jobs, then write the row of each job
        in ``written`` (its ``END_FIELDS``) and delete those in ``deleted``; returns the ids
        whose claims were still ours. Jobs whose claims were not are left untouched."""
        owned = self.delete_claims([job.pk for job in (*written, *deleted)], process_id)
        self.update_rows(Job, [job for job in written if job.pk in owned], END_FIELDS)
        self.delete_by_pk(Job, [job.pk for job in deleted if job.pk in owned])
        return owned

    def end_and_claim(self, written, deleted, process_id, selectors, limit, skip_locked, gate=None, rollups=()):
        """``end_claimed`` then ``claim``, in the caller's transaction; returns (owned ids, jobs).
        ``rollups`` (rows for ``add_job_stats``) are for a one-statement end, which adds them;
        here the lifecycle adds them itself, last."""
        owned = self.end_claimed(written, deleted, process_id) if written or deleted else set()
        claimed = self.claim(selectors, limit, process_id, skip_locked, gate) if limit > 0 else []
        return owned, claimed

    def ends_and_claims_in_one_statement(self, selectors, gate):
        """Whether ``end_and_claim`` is a single statement, which needs no transaction around it."""
        return False

    # -- Rollups ---------------------------------------------------------------------------------

    def add_job_stats(self, rows):
        """Add each (minute, queue, class, *values of ``SUMMED``) of ``rows`` to its group's row
        of ``JobStat``, creating it if needed: one statement, whatever the number of groups."""
        self.add_sums(JobStat, ("minute", "queue_name", "class_name"), rows)

    def add_sums(self, model, keys, rows, replaced=()):
        """Upsert ``rows`` of (*``keys``, *``replaced``, *``SUMMED``) values into ``model``, whose
        unique constraint is ``keys``: a row found gets the ``replaced`` values and each
        ``SUMMED`` value added to its column. One statement per 200 rows.

        Only the sums that are not zero in some row are written (the others are 0 by the
        column's default, and adding 0 changes nothing): a batch of quick jobs touches a handful
        of its columns. They go into the text as numbers, which costs the driver nothing to
        quote; they are ints and floats this module made, never text."""
        fields = [model._meta.get_field(name) for name in (*keys, *replaced)]
        connection = self.connection
        with connection.cursor() as cursor:
            for chunk in chunks(rows, 200):
                first = len(fields)
                summed = sorted({index for row in chunk for index, value in enumerate(row[first:]) if value})
                if not summed and not replaced:
                    continue  # nothing to add (runs measured by nothing: a resumed run of a dead process)
                names = [*(field.column for field in fields), *(SUMMED[index] for index in summed)]
                values = []
                params = []
                for row in chunk:
                    params += [field.get_db_prep_save(value, connection) for field, value in zip(fields, row)]
                    numbers = [_number(SUMMED[index], row[first + index]) for index in summed]
                    values.append(f"({', '.join(['%s'] * len(fields) + numbers)})")
                head = f"INSERT INTO {self.table(model)} ({', '.join(self.quote(name) for name in names)})"
                tail = self.sums_clause(model, keys, replaced, [SUMMED[index] for index in summed])
                cursor.execute(f"{head} VALUES {', '.join(values)} {tail}", params)

    def sums_clause(self, model, keys, replaced, summed):
        """The upsert's tail: on the row found, replace the ``replaced`` columns and add to the ``summed`` ones."""
        table, quote = self.table(model), self.quote
        changes = [f"{quote(name)} = excluded.{quote(name)}" for name in replaced]
        changes += [f"{quote(name)} = {table}.{quote(name)} + excluded.{quote(name)}" for name in summed]
        return f"ON CONFLICT ({', '.join(quote(name) for name in keys)}) DO UPDATE SET {', '.join(changes)}"

    # -- Semaphores -------------------------------------------------------------------------------

    def lock_blocked(self, key_counts):
        """Lock, for each (key, count), the next ``count`` jobs blocked on that key; returns
        (job id, queue, priority, key). SKIP LOCKED: a blocked job another process is moving
        right now is theirs."""
        locked = []
        for key, count in key_counts:
            sql = (
                f"SELECT b.job_id, b.queue_name, b.priority, b.concurrency_key FROM {self.table(BlockedExecution)} b "
                f"{self.index_hint('quebec_blocked_release')} WHERE b.concurrency_key = %s "
                f"ORDER BY b.priority, b.job_id LIMIT %s {self.lock_clause(True)}"
            )
            locked += self._fetch(sql, [key, count])
        return locked

    def lock_semaphores(self, keys):
        """Lock the semaphores of ``keys`` in key order; returns {key: free slots} of those that exist."""
        placeholders = ", ".join(["%s"] * len(keys))
        sql = (
            f"SELECT s.{self.quote('key')}, s.value FROM {self.table(Semaphore)} s "
            f"WHERE s.{self.quote('key')} IN ({placeholders}) ORDER BY s.{self.quote('key')} {self.lock_clause(False)}"
        )
        return dict(self._fetch(sql, list(keys)))

    def pass_slots(self, ending, now):
        """Give back the slots of ended jobs and let in as many jobs blocked on their keys as now
        fit; ``ending`` is (key, jobs ended, limit, new expiry) in key order. Returns the keys
        that have no semaphore (it expired meanwhile), for the caller to handle.

        The same as giving each slot back and then releasing blocked jobs one by one: the keys'
        semaphores are locked in key order (two batches cannot deadlock), the blocked jobs that
        fit are locked with SKIP LOCKED (one another process is moving is left to it) and moved
        to ready, and each semaphore is set to what is left.
        """
        values = self.lock_semaphores([key for key, *_ in ending])
        # A slot given back never lifts a key above its limit; an unblocked job's override may
        # have left it below zero, and then nobody waiting gets in until it is positive again.
        free = {
            key: max(min(values[key] + count, limit), values[key]) for key, count, limit, _ in ending if key in values
        }
        handed = self.lock_blocked([(key, free[key]) for key, *_ in ending if free.get(key, 0) > 0])
        per_key = collections.Counter(key for *_, key in handed)
        changes = collections.defaultdict(list)
        for key, _, _, expires_at in ending:
            if key in values:
                changes[free[key] - per_key[key] - values[key], expires_at].append(key)
        for (delta, expires_at), keys in sorted(changes.items()):
            self.update_semaphores(keys, delta, now, expires_at)
        self.move_to_ready(handed, now)
        return [key for key, *_ in ending if key not in values]

    def move_to_ready(self, blocked, now):
        """Move locked (job id, queue, priority, key) blocked rows to ready."""
        if blocked:
            self.delete_by_pk(BlockedExecution, [job_id for job_id, *_ in blocked])
            self.insert_ready([(job_id, queue, priority) for job_id, queue, priority, _ in blocked], now)

    def update_semaphores(self, keys, delta, now, expires_at):
        """Change the free slots of the locked semaphores of ``keys`` by ``delta`` and extend their expiry."""
        Semaphore.objects.using(self.using).filter(key__in=keys).update(
            value=F("value") + delta, updated_at=now, expires_at=expires_at
        )

    # -- Unique keys ------------------------------------------------------------------------------

    def take_unique_keys(self, rows, now):
        """Take each (key, active job id, expires at) of ``rows`` (distinct keys, in key order)
        that is free or held past its expiry; returns {key: active job id of its holder} for
        every key, taken or not.

        The key's primary key decides: of two transactions taking one key, the second waits for
        the first and then finds the key held. Rows are written in key order, so two batches
        cannot deadlock.
        """
        table, key = self.table(UniqueKey), self.quote("key")
        convert = self._unique_converters()
        with self.connection.cursor() as cursor:
            for chunk in chunks(rows, 500):
                values = ", ".join(["(%s, %s, %s, %s)"] * len(chunk))
                params = [value for row in chunk for value in self._unique_values(row, now, convert)]
                cursor.execute(
                    f"INSERT INTO {table} ({key}, active_job_id, expires_at, created_at) VALUES {values} "
                    f"ON CONFLICT ({key}) DO UPDATE SET active_job_id = excluded.active_job_id, "
                    f"expires_at = excluded.expires_at, created_at = excluded.created_at "
                    f"WHERE {table}.expires_at < %s",
                    [*params, self._datetime(now)],
                )
        return self.unique_holders([row[0] for row in rows])

    def unique_holders(self, keys, now=None):
        """{key: active job id} of the holders of ``keys``: all of them, or with ``now`` only
        those not past their expiry. Without ``now`` the rows are locked: they were just written
        or found taken, and must stay so until the enqueue commits."""
        table, key = self.table(UniqueKey), self.quote("key")
        to_uuid = UniqueKey._meta.get_field("active_job_id").to_python
        holders = {}
        for chunk in chunks(keys, 500):
            sql = f"SELECT u.{key}, u.active_job_id FROM {table} u WHERE u.{key} IN ({', '.join(['%s'] * len(chunk))})"
            params = list(chunk)
            if now is None:
                sql += f" {self.lock_clause(False)}"
            else:
                sql += " AND (u.expires_at IS NULL OR u.expires_at >= %s)"
                params.append(self._datetime(now))
            holders.update((row_key, to_uuid(holder)) for row_key, holder in self._fetch(sql, params))
        return holders

    def release_unique_keys(self, pairs):
        """Give back the keys of (key, active job id) ``pairs``: each only if that job still holds
        it (past ``unique_for`` another job may have taken it over)."""
        if not pairs:
            return
        field = UniqueKey._meta.get_field("active_job_id")
        with self.connection.cursor() as cursor:
            for chunk in chunks(sorted(pairs), 200):
                condition = " OR ".join([f"({self.quote('key')} = %s AND active_job_id = %s)"] * len(chunk))
                params = [
                    value for key, holder in chunk for value in (key, field.get_db_prep_save(holder, self.connection))
                ]
                cursor.execute(f"DELETE FROM {self.table(UniqueKey)} WHERE {condition}", params)

    def _unique_converters(self):
        fields = UniqueKey._meta
        return [value_converter(fields.get_field(name), self.connection) for name in ("active_job_id", "expires_at")]

    def _unique_values(self, row, now, convert):
        key, holder, expires_at = row
        return key, convert[0](holder), convert[1](expires_at), self._datetime(now)

    # -- Batches ------------------------------------------------------------------------------

    # Whether an UPDATE can return the rows it changed (MariaDB's cannot).
    update_returning = False
    # Whether ``end_count_and_claim`` exists: the one-statement end and claim also counts the
    # ended members of one batch.
    counts_batch_in_statement = False
    # Whether a worker may end and claim on a second connection while its first waits (see
    # ``Worker._second_loop_run``): not where writers queue for one lock (SQLite).
    claims_alongside = True

    def count_batch_ends(self, counts, now):
        """Take ended members off their batches: ``counts`` is [(batch id, completed, failed)]
        in id order (one UPDATE each, row locks taken in that order). Returns the ids of the
        batches that run with no member pending now, whose rows this transaction holds locked."""
        table = self.table(Batch)
        sql = (
            f"UPDATE {table} SET pending_jobs = pending_jobs - %s, completed_jobs = completed_jobs + %s, "
            "failed_jobs = failed_jobs + %s, updated_at = %s WHERE id = %s AND finished_at IS NULL"
        )
        db_now = self._datetime(now)
        due = []
        with self.connection.cursor() as cursor:
            for batch_id, completed, failed in counts:
                params = [completed + failed, completed, failed, db_now, batch_id]
                if self.update_returning:
                    cursor.execute(sql + " RETURNING status, pending_jobs", params)
                    row = cursor.fetchone()
                    if row is not None and row[0] == "running" and row[1] <= 0:
                        due.append(batch_id)
                else:
                    # Most ends leave members pending: then this UPDATE is all, with no read after.
                    cursor.execute(sql + " AND pending_jobs > %s", [*params, completed + failed])
                    if not cursor.rowcount:
                        cursor.execute(sql, params)
                        if cursor.rowcount:
                            due.append(batch_id)
            if due and not self.update_returning:
                # Read after our own UPDATE, under its lock: what it left.
                marks = ", ".join(["%s"] * len(due))
                cursor.execute(
                    f"SELECT id FROM {table} WHERE id IN ({marks}) AND status = 'running' AND pending_jobs <= 0",
                    due,
                )
                due = sorted(batch_id for (batch_id,) in cursor.fetchall())
        return due


class _WakeUp:
    """The commit hook that wakes this host's workers; its type lets a transaction register only one."""

    def __init__(self, using):
        self.using = using

    def __call__(self):
        wakeup.wake_workers(self.using)


@functools.lru_cache(maxsize=16)
def job_columns(using, prefix=""):
    """The job table's columns, each after ``prefix`` (a table alias and a dot), in the order of
    the model's concrete fields, which ``loaded_rows`` reads them in."""
    quote = connections[using].ops.quote_name
    return ", ".join(f"{prefix}{quote(field.column)}" for field in Job._meta.concrete_fields)
