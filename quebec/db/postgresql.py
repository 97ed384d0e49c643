"""PostgreSQL: whole transitions as single statements of data-modifying CTEs.

A single statement is a transaction by itself: an enqueue, a claim, or the end of a batch of
runs with the next claim costs one round trip and one commit, where the general path takes
four or five. Statement texts do not grow with the batch: many rows travel as one JSON document.
"""

import functools
import json

from django.db import connections, models, transaction
from django.utils import timezone

from quebec import conf
from quebec.db.base import END_FIELDS, Operations as BaseOperations
from quebec.db.connection import READY_CHANNEL
from quebec.db.rows import value_converter
from quebec.models.stats import SUMMED
from quebec.models import (
    BlockedExecution,
    ClaimedExecution,
    Job,
    JobStat,
    ReadyExecution,
    ScheduledExecution,
    Semaphore,
    UniqueKey,
)

# How the one-statement enqueue fills each column of a new job: from the job's values, or with
# the same value for every row (SQL text, or the time of the enqueue). The columns only a job
# with a concurrency or unique key can fill are sent only when a job of the batch has one: fewer
# parameters to adapt for every other enqueue.
PER_JOB_COLUMNS = (
    "queue_name",
    "class_name",
    "arguments",
    "priority",
    "active_job_id",
    "executions",
    "exception_executions",
    "scheduled_at",
)
KEYED_COLUMNS = ("concurrency_key", "finished_at", "discarded_at")
UNIQUE_COLUMNS = ("unique_key",)
SAME_FOR_EVERY_JOB = {
    "attempts": "'[]'::jsonb",
    "return_value": "NULL",
    "created_at": "%s",
    "updated_at": "%s",
    "progress": "NULL",
    "continuation": "NULL",
    "cancel_requested_at": "NULL",
    "cancel_requested_by": "''",
}


class Operations(BaseOperations):
    vendor = "postgresql"

    def insert_rows(self, model, objects, batch_size=500):
        if len(objects) > 1:
            # Django inserts many rows here with one array per column (UNNEST): fewer parameters
            # to adapt than a VALUES list.
            model._default_manager.using(self.using).bulk_create(objects)
            return
        super().insert_rows(model, objects, batch_size)

    def notify_ready(self):
        """One NOTIFY per transaction however many jobs it made ready, sent after the commit so
        that a woken worker finds them. A failed NOTIFY is only logged: workers poll as well."""
        if not conf.get().use_listen_notify:
            return
        connection = self.connection
        if connection.in_atomic_block and any(isinstance(hook, _Notify) for _, hook, _ in connection.run_on_commit):
            return  # this transaction notifies already
        transaction.on_commit(_Notify(self.using), using=self.using, robust=True)

    def insert_jobs(self, jobs, placement):
        """The jobs, their ready and scheduled rows and the NOTIFY in one statement. Jobs the
        lifecycle blocked need their concurrency key's row as well: those take the general path."""
        if placement.blocked:
            return super().insert_jobs(jobs, placement)
        connection = self.connection
        now = placement.now
        db_now = self._datetime(now, connection)
        notify = conf.get().use_listen_notify and bool(placement.ready)
        keyed = (
            *(KEYED_COLUMNS if any(job.concurrency_key for job in jobs) else ()),
            *(UNIQUE_COLUMNS if any(job.unique_key for job in jobs) else ()),
        )
        fields = [Job._meta.get_field(name) for name in (*PER_JOB_COLUMNS, *keyed)]
        # The times: created_at and updated_at (in the SELECT), then the ready and scheduled rows'.
        if len(jobs) == 1:
            sql = _enqueue_sql(self.using, "one", notify, keyed)
            params = [
                *(value_converter(field, connection)(getattr(jobs[0], field.attname)) for field in fields),
                *[db_now] * 6,
            ]
        else:  # the rows come after the SELECT's two times, in its FROM
            sql = _enqueue_sql(self.using, "many", notify, keyed)
            params = [db_now, db_now, json_rows(fields, jobs, connection), *[db_now] * 4]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            # Rows are inserted in the order of the jobs (ORDER BY position), and the id sequence
            # hands out increasing numbers within the statement.
            ids = sorted(job_id for (job_id,) in cursor.fetchall())
        for job, job_id in zip(jobs, ids, strict=True):
            job.pk = job_id
            job.created_at = job.updated_at = now
            job._state.adding, job._state.db = False, self.using

    def claim(self, selectors, limit, process_id, skip_locked, gate=None):
        """Without queue limits, one statement per selector locks the next ready rows, deletes
        them, inserts their claims and reads their jobs. Same order and locking as the general path."""
        if gate is not None:
            return super().claim(selectors, limit, process_id, skip_locked, gate)
        jobs = []
        for selector in selectors:
            # Rows this transaction already moved are gone from its view of the ready table.
            claim_sql, params = self._claim_ctes(selector, limit - len(jobs), process_id, skip_locked)
            sql = f"WITH {claim_sql} SELECT j.* FROM {self.table(Job)} j WHERE j.id IN (SELECT job_id FROM claims)"
            jobs += sorted(Job.objects.using(self.using).raw(sql, params), key=lambda job: (job.priority, job.pk))
            if len(jobs) >= limit:
                break
        return jobs

    def _claim_ctes(self, selector, limit, process_id, skip_locked):
        """The CTEs ``locked``, ``moved`` and ``claims`` of a one-statement claim."""
        conditions, params = self.ready_conditions(selector)
        ready, claimed = self.table(ReadyExecution), self.table(ClaimedExecution)
        lock = "FOR UPDATE OF r SKIP LOCKED" if skip_locked else "FOR UPDATE OF r"
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
        return sql, [*params, limit, process_id, self._datetime(timezone.now())]

    def ends_and_claims_in_one_statement(self, selectors, gate):
        return len(selectors) == 1 and gate is None

    def end_and_claim(self, written, deleted, process_id, selectors, limit, skip_locked, gate=None, rollups=()):
        """The end of a batch of runs and the next claim as one statement (``end_claimed`` and
        ``claim`` of the general path, with the same ownership check and locking), adding
        ``rollups`` when every claim was still ours."""
        if not self.ends_and_claims_in_one_statement(selectors, gate):
            return super().end_and_claim(written, deleted, process_id, selectors, limit, skip_locked, gate)
        jobs, claimed = self.table(Job), self.table(ClaimedExecution)
        ids = [job.pk for job in (*written, *deleted)]
        # updated_at is the same for the whole batch: one parameter, not a value per row.
        fields = [Job._meta.get_field(name) for name in ("id", *END_FIELDS) if name != "updated_at"]
        assignments = ", ".join(f"{self.quote(field.column)} = v.{self.quote(field.column)}" for field in fields[1:])
        claim_sql, claim_params = self._claim_ctes(selectors[0], limit, process_id, skip_locked)
        ctes = [
            f"owned AS (DELETE FROM {claimed} c WHERE c.process_id = %s AND c.job_id = ANY(%s::bigint[]) "
            "RETURNING c.job_id)"
        ]
        params = [process_id, ids]
        if written:
            ctes.append(f"""written AS (
                UPDATE {jobs} j SET {assignments}, updated_at = %s FROM {json_rows_sql(fields, self.connection)}
                WHERE j.id = v.id AND j.id IN (SELECT job_id FROM owned) RETURNING j.id)""")
            params += [self._datetime(written[0].updated_at), json_rows(fields, written, self.connection)]
        if deleted:
            ctes.append(f"""deleted AS (DELETE FROM {jobs} j WHERE j.id = ANY(%s::bigint[])
                AND j.id IN (SELECT job_id FROM owned) RETURNING j.id)""")
            params.append([job.pk for job in deleted])
        if rollups:
            summed = _summed(rollups)
            ctes.append(self._job_stats_cte(len(ids), summed, one=len(rollups) == 1))
            if len(rollups) == 1:  # the usual batch: plain parameters, no document to parse
                positions = [3 + SUMMED.index(name) for name in summed]
                params += [*rollups[0][:3], *(rollups[0][p] for p in positions)]
            else:
                params.append(_job_stats_document(rollups, summed))
        # One row at least, carrying the ids whose claims were ours, then the claimed jobs'
        # columns (NULL when nothing was claimed).
        sql = f"""WITH {", ".join(ctes)}, {claim_sql}
            SELECT (SELECT array_agg(job_id) FROM owned) AS owned_ids, j.* FROM (SELECT 1) one
            LEFT JOIN {jobs} j ON j.id IN (SELECT job_id FROM claims)"""
        params += claim_params
        rows = list(Job.objects.using(self.using).raw(sql, params))
        owned = set(rows[0].owned_ids or [])
        return owned, sorted((job for job in rows if job.pk is not None), key=lambda job: (job.priority, job.pk))

    def add_job_stats(self, rows):
        with self.connection.cursor() as cursor:
            summed = _summed(rows)
            cursor.execute(_job_stats_sql(self.using, summed), [_job_stats_document(rows, summed)])

    def _job_stats_cte(self, ended, summed, one=False):
        """The CTE adding rollups (one group's values, or one JSON document of groups) when all
        ``ended`` claims were ours."""
        condition = f"(SELECT count(*) FROM owned) = {int(ended)}"
        return f"""stats AS ({(_job_stats_row_sql if one else _job_stats_sql)(self.using, summed, condition)})"""

    def lock_blocked(self, key_counts):
        """All keys in one statement: a locking sub-select per key, as a LATERAL join."""
        if not key_counts:
            return []
        sql = f"""SELECT b.job_id, b.queue_name, b.priority, k.key
            FROM unnest(%s::text[], %s::int[]) AS k(key, n) CROSS JOIN LATERAL (
                SELECT job_id, queue_name, priority FROM {self.table(BlockedExecution)}
                WHERE concurrency_key = k.key ORDER BY priority, job_id LIMIT k.n FOR UPDATE SKIP LOCKED
            ) b"""
        return self._fetch(sql, [[key for key, _ in key_counts], [count for _, count in key_counts]])

    def pass_slots(self, ending, now):
        """The general path's five statements as one (see ``Operations.pass_slots``)."""
        semaphores, blocked, ready = self.table(Semaphore), self.table(BlockedExecution), self.table(ReadyExecution)
        sql = f"""WITH ending AS (
                SELECT * FROM unnest(%s::text[], %s::int[], %s::int[], %s::timestamptz[]) AS e(key, n, lim, expires_at)
            ), sem AS (
                SELECT s.id, s.key, s.value, s.expires_at AS expired_at, e.expires_at,
                    GREATEST(LEAST(s.value + e.n, e.lim), s.value) AS free
                FROM {semaphores} s JOIN ending e ON e.key = s.key ORDER BY s.key FOR UPDATE OF s
            ), handed AS (
                SELECT b.job_id, b.queue_name, b.priority, sem.key FROM sem CROSS JOIN LATERAL (
                    SELECT job_id, queue_name, priority FROM {blocked} WHERE concurrency_key = sem.key
                    ORDER BY priority, job_id LIMIT GREATEST(sem.free, 0) FOR UPDATE SKIP LOCKED
                ) b
            ), left_over AS (
                SELECT sem.id, sem.expires_at, sem.free - count(handed.job_id) AS value,
                    -- Unchanged but for its expiry: rewritten only once half its time to live is gone,
                    -- so a key whose slot passes from job to job is not rewritten for every job.
                    sem.free - count(handed.job_id) = sem.value
                        AND sem.expired_at > %s + (sem.expires_at - %s) / 2 AS unchanged
                FROM sem LEFT JOIN handed ON handed.key = sem.key
                GROUP BY sem.id, sem.value, sem.expired_at, sem.expires_at, sem.free
            ), updated AS (
                UPDATE {semaphores} s SET value = left_over.value, updated_at = %s, expires_at = left_over.expires_at
                FROM left_over WHERE s.id = left_over.id AND NOT left_over.unchanged
            ), unblocked AS (
                DELETE FROM {blocked} WHERE job_id = ANY(ARRAY(SELECT job_id FROM handed))
            ), made_ready AS (
                INSERT INTO {ready} (job_id, queue_name, priority, created_at)
                SELECT job_id, queue_name, priority, %s FROM handed
            )
            SELECT EXISTS (SELECT 1 FROM handed),
                ARRAY(SELECT e.key FROM ending e WHERE NOT EXISTS (SELECT 1 FROM sem WHERE sem.key = e.key) ORDER BY e.key)"""
        db_now = self._datetime(now)
        params = [
            [key for key, *_ in ending],
            [count for _, count, _, _ in ending],
            [limit for _, _, limit, _ in ending],
            [self._datetime(expires_at) for *_, expires_at in ending],
            db_now,
            db_now,
            db_now,
            db_now,
        ]
        [(any_ready, missing)] = self._fetch(sql, params)
        if any_ready:
            self.notify_ready()
        return missing

    def lock_semaphores(self, keys):
        sql = f"SELECT key, value FROM {self.table(Semaphore)} WHERE key = ANY(%s) ORDER BY key FOR UPDATE"
        return dict(self._fetch(sql, [list(keys)]))

    def update_semaphores(self, keys, delta, now, expires_at):
        sql = f"UPDATE {self.table(Semaphore)} SET value = value + %s, updated_at = %s, expires_at = %s WHERE key = ANY(%s)"
        with self.connection.cursor() as cursor:
            cursor.execute(sql, [delta, self._datetime(now), self._datetime(expires_at), list(keys)])

    def take_unique_keys(self, rows, now):
        """All keys in one statement, sent as one JSON document whatever their number; the
        holders of the keys it did not take are read by a second, whose snapshot sees the
        transactions it waited for."""
        table = self.table(UniqueKey)
        sql = f"""INSERT INTO {table} (key, active_job_id, expires_at, created_at)
            SELECT k.key, k.holder, k.expires_at, %s
                FROM jsonb_to_recordset(%s::jsonb) AS k(key text, holder uuid, expires_at timestamptz)
                ORDER BY k.key
            ON CONFLICT (key) DO UPDATE SET active_job_id = excluded.active_job_id,
                expires_at = excluded.expires_at, created_at = excluded.created_at
            WHERE {table}.expires_at < %s
            RETURNING key"""
        db_now = self._datetime(now)
        document = json.dumps(
            [
                {"key": key, "holder": str(holder), "expires_at": expires_at and self._datetime(expires_at).isoformat()}
                for key, holder, expires_at in rows
            ]
        )
        taken = {key for (key,) in self._fetch(sql, [db_now, document, db_now])}
        holders = {key: holder for key, holder, _ in rows if key in taken}
        if len(taken) < len(rows):
            holders.update(self.unique_holders([key for key, _, _ in rows if key not in taken]))
        return holders

    def unique_holders(self, keys, now=None):
        if now is not None:
            sql = (
                f"SELECT key, active_job_id FROM {self.table(UniqueKey)} WHERE key = ANY(%s) "
                "AND (expires_at IS NULL OR expires_at >= %s)"
            )
            return dict(self._fetch(sql, [list(keys), self._datetime(now)]))
        sql = f"SELECT key, active_job_id FROM {self.table(UniqueKey)} WHERE key = ANY(%s) FOR UPDATE"
        return dict(self._fetch(sql, [list(keys)]))

    def release_unique_keys(self, pairs):
        if pairs:
            sql = (
                f"DELETE FROM {self.table(UniqueKey)} u USING unnest(%s::text[], %s::uuid[]) AS r(key, holder) "
                "WHERE u.key = r.key AND u.active_job_id = r.holder"
            )
            with self.connection.cursor() as cursor:
                cursor.execute(sql, [[key for key, _ in pairs], [holder for _, holder in pairs]])


class _Notify:
    """The commit hook that sends the NOTIFY; its type lets a transaction register only one."""

    def __init__(self, using):
        self.using = using

    def __call__(self):
        with connections[self.using].cursor() as cursor:
            cursor.execute(f"NOTIFY {READY_CHANNEL}")


def json_rows(fields, objects, connection):
    """``objects``' values of ``fields`` as one JSON document, a list of objects keyed by column
    plus their ``position`` (read back with ``json_rows_sql``). One string to
    send however many rows there are: json.dumps is far quicker than quoting each value of an
    array, and JSON columns go in as they are, not encoded twice."""
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


def _summed(rows):
    """The ``SUMMED`` columns not zero in some row: the only ones the upsert names (the others
    keep their default, 0), so a batch of quick jobs sends and adds a handful of columns."""
    nonzero = set()
    for row in rows:
        nonzero.update(index for index, value in enumerate(row[3:]) if value)
    return tuple(SUMMED[index] for index in sorted(nonzero))


def _job_stats_document(rows, summed):
    """Rollup rows as one JSON document of arrays: (minute, queue, class, *the ``summed`` values);
    minutes are aware datetimes, read back as timestamptz."""
    positions = [3 + SUMMED.index(name) for name in summed]
    return json.dumps([[row[0].isoformat(), row[1], row[2], *(row[p] for p in positions)] for row in rows])


@functools.lru_cache(maxsize=256)
def _job_stats_row_sql(using, summed, condition):
    """The upsert of one group's rollups, its values as parameters: (minute, queue, class,
    *the ``summed`` values)."""
    quote = connections[using].ops.quote_name
    table = quote(JobStat._meta.db_table)
    columns = ", ".join(quote(name) for name in ("minute", "queue_name", "class_name", *summed))
    values = "".join(f", %s::{'float8' if name.endswith('_sum') else 'bigint'}" for name in summed)
    additions = ", ".join(f"{quote(name)} = {table}.{quote(name)} + excluded.{quote(name)}" for name in summed)
    conflict = f"DO UPDATE SET {additions}" if summed else "DO NOTHING"
    return f"""INSERT INTO {table} ({columns})
        SELECT %s::timestamptz, %s::text, %s::text{values} WHERE {condition}
        ON CONFLICT (minute, queue_name, class_name) {conflict}"""


@functools.lru_cache(maxsize=256)
def _job_stats_sql(using, summed, condition="true"):
    """The upsert of rollups read from one JSON document of arrays (``_job_stats_document``):
    each group's ``summed`` values added to its row, groups in key order. (A handful of column
    sets recur: quick jobs that finish fill the same few buckets.)"""
    quote = connections[using].ops.quote_name
    table = quote(JobStat._meta.db_table)
    columns = ", ".join(quote(name) for name in ("minute", "queue_name", "class_name", *summed))
    values = "".join(
        f", (r->>{index + 3})::{'float8' if name.endswith('_sum') else 'bigint'}" for index, name in enumerate(summed)
    )
    additions = ", ".join(f"{quote(name)} = {table}.{quote(name)} + excluded.{quote(name)}" for name in summed)
    conflict = f"DO UPDATE SET {additions}" if summed else "DO NOTHING"
    return f"""INSERT INTO {table} ({columns})
        SELECT (r->>0)::timestamptz, r->>1, r->>2{values}
        FROM jsonb_array_elements(%s::jsonb) AS e(r) WHERE {condition}
        ORDER BY 1, 2, 3
        ON CONFLICT (minute, queue_name, class_name) {conflict}"""


@functools.lru_cache(maxsize=16)
def _enqueue_sql(using, rows, notify, keyed):
    """The text of the one-statement enqueue for one job (``rows`` "one": plain parameters) or
    many ("many": one JSON document read by ``jsonb_to_recordset``), with the columns of
    ``KEYED_COLUMNS`` and ``UNIQUE_COLUMNS`` named in ``keyed`` as parameters, the others NULL."""
    connection = connections[using]
    quote = connection.ops.quote_name
    meta = Job._meta
    per_job = (*PER_JOB_COLUMNS, *keyed)
    same = {**SAME_FOR_EVERY_JOB, **{name: "NULL" for name in (*KEYED_COLUMNS, *UNIQUE_COLUMNS) if name not in keyed}}
    fields = [meta.get_field(name) for name in per_job]
    constants = ", ".join(same.values())
    if rows == "one":
        # Character columns cast to text: a cast to varchar(n) would cut a longer value short
        # instead of letting the INSERT refuse it. The parentheses matter: parameters are
        # inlined, and -2147483648::integer would cast 2147483648 before negating it.
        casts = ["text" if isinstance(field, models.CharField) else field.db_type(connection) for field in fields]
        select = f"SELECT {', '.join(f'(%s)::{cast}' for cast in casts)}, {constants}"
    else:
        names = ", ".join(f"v.{quote(field.column)}" for field in fields)
        select = f"SELECT {names}, {constants} FROM {json_rows_sql(fields, connection)} ORDER BY position"
    columns = [*per_job, *same]
    # The schema tripwire: a column added to Job must be given a value here.
    assert len(columns) == len(meta.concrete_fields) - 1, "every column of Job but its id"
    ready, scheduled = quote(ReadyExecution._meta.db_table), quote(ScheduledExecution._meta.db_table)
    # A job the lifecycle discarded on the way in (its concurrency key was full) gets no row.
    return f"""WITH j AS (
            INSERT INTO {quote(meta.db_table)} ({", ".join(quote(meta.get_field(name).column) for name in columns)})
            {select}
            RETURNING id, queue_name, priority, scheduled_at, discarded_at
        ), r AS (
            INSERT INTO {ready} (job_id, queue_name, priority, created_at)
            SELECT id, queue_name, priority, %s FROM j
            WHERE discarded_at IS NULL AND (scheduled_at IS NULL OR scheduled_at <= %s)
        ), s AS (
            INSERT INTO {scheduled} (job_id, queue_name, priority, scheduled_at, reason, created_at)
            SELECT id, queue_name, priority, scheduled_at, '', %s FROM j WHERE discarded_at IS NULL AND scheduled_at > %s
        ){f", n AS (SELECT pg_notify('{READY_CHANNEL}', ''))" if notify else ""}
        SELECT id FROM j{" CROSS JOIN n" if notify else ""}"""
