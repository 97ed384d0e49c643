"""PostgreSQL: whole transitions as single statements of data-modifying CTEs.

A single statement is a transaction by itself: an enqueue, a claim, or the end of a batch of
runs with the next claim costs one round trip and one commit, where the general path takes
four or five. Statement texts do not grow with the batch: many rows travel as one JSON document
or, for an enqueue, one array per column.
"""

import functools
import json

from django.db import connections, models, transaction
from django.utils import timezone

from quebec import conf
from quebec.db import job_rows
from quebec.db.base import END_FIELDS, Operations as BaseOperations, job_columns
from quebec.db.connection import READY_CHANNEL, after_commit, send, transaction_pooled
from quebec.db.rows import loaded_rows, value_converter
from quebec.models.stats import SUMMED
from quebec.models import (
    Batch,
    BlockedExecution,
    ClaimedExecution,
    Job,
    JobStat,
    ReadyExecution,
    ScheduledExecution,
    Semaphore,
    UniqueKey,
)

# Jobs per enqueue statement: a bulk enqueue of any size sends statements of bounded size.
ENQUEUE_CHUNK = 1000


class Operations(BaseOperations):
    vendor = "postgresql"
    update_returning = True
    counts_batch_in_statement = True

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
        after_commit(_Notify(self.using), self.using, robust=True)

    def worth_claiming(self, selectors):
        """An empty claim is one statement that locks nothing: no cheaper than a look."""
        return True

    def enqueues_alone(self, jobs):
        return True  # one statement is one transaction

    def insert_jobs(self, jobs, placement):
        """The jobs, their ready and scheduled rows and the NOTIFY in one statement per
        ``ENQUEUE_CHUNK`` jobs. Jobs the lifecycle blocked need their concurrency key's row as
        well: those take the general path."""
        if placement.blocked:
            return super().insert_jobs(jobs, placement)
        connection = self.connection
        if len(jobs) > ENQUEUE_CHUNK and not connection.in_atomic_block:
            with transaction.atomic(using=self.using):
                return self.insert_jobs(jobs, placement)
        notify = conf.get().use_listen_notify and bool(placement.ready)
        sent = job_rows.sent_columns(jobs)
        values = self._job_values(sent, placement.now)
        prepare = self.prepares()
        for start in range(0, len(jobs), ENQUEUE_CHUNK):
            chunk = jobs[start : start + ENQUEUE_CHUNK]
            if len(chunk) == 1:
                params = values(chunk[0])[:-1]  # the time once
            else:  # the time, then one array per column
                rows = [values(job) for job in chunk]
                params = [rows[0][-1], *map(list, zip(*[row[:-2] for row in rows], strict=True))]
            sql = _enqueue_sql(self.using, len(chunk) > 1, notify, sent)
            # Rows are inserted in the order of the jobs (ORDER BY position), and the id sequence
            # hands out increasing numbers within the statement.
            ids = sorted(job_id for (job_id,) in send(connection, sql, params, prepare=prepare))
            for job, job_id in zip(chunk, ids, strict=True):
                job.pk = job_id
        for job in jobs:
            job.created_at = job.updated_at = placement.now
            job._state.adding, job._state.db = False, self.using

    def _job_converter(self, field):
        # JSON columns go as text, cast by the statement: no adapter object per value.
        if job_rows.is_json(field):
            return lambda value: None if value is None else json.dumps(value, cls=field.encoder)
        return value_converter(field, self.connection)

    def prepares(self):
        """Whether the enqueue's statements are prepared on the server (planned once per
        connection): the ``prepared_statements`` setting, where "auto" means unless the alias
        sets ``DISABLE_SERVER_SIDE_CURSORS``, Django's own sign of a pooler in transaction mode
        (PgBouncer before 1.21 there cannot keep a prepared statement from one transaction to
        the next)."""
        setting = conf.get().prepared_statements
        if setting == "auto":
            return not transaction_pooled(self.connection)
        return setting

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
        ``rollups``."""
        if not self.ends_and_claims_in_one_statement(selectors, gate):
            return super().end_and_claim(written, deleted, process_id, selectors, limit, skip_locked, gate)
        owned, claimed, _ = self.end_count_and_claim(
            written, deleted, process_id, selectors, limit, skip_locked, rollups=rollups
        )
        return owned, claimed

    def end_count_and_claim(self, written, deleted, process_id, selectors, limit, skip_locked, batch=None, rollups=()):
        """``end_and_claim``'s one statement, which also takes the ended members of batch
        ``batch`` (a (batch id, member job ids) pair; each one that ends completes) off its
        counters and adds ``rollups`` (of runs already recorded); returns (owned ids, jobs,
        whether the batch now runs with none pending)."""
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
        due = "NULL"
        if batch is not None:
            # One batch's row, locked by this UPDATE until the statement commits.
            ctes.append(f"""counted AS (
                UPDATE {self.table(Batch)} b SET pending_jobs = b.pending_jobs - m.n,
                    completed_jobs = b.completed_jobs + m.n, updated_at = %s
                FROM (SELECT count(*) AS n FROM owned WHERE job_id = ANY(%s::bigint[])) m
                WHERE b.id = %s AND m.n > 0 AND b.finished_at IS NULL RETURNING b.status, b.pending_jobs)""")
            params += [self._datetime(timezone.now()), batch[1], batch[0]]
            due = "(SELECT status = 'running' AND pending_jobs <= 0 FROM counted)"
        if rollups:
            summed = _summed(rollups)
            one = len(rollups) == 1
            ctes.append(f"stats AS ({(_job_stats_row_sql if one else _job_stats_sql)(self.using, summed)})")
            if one:  # the usual write: plain parameters, no document to parse
                positions = [3 + SUMMED.index(name) for name in summed]
                params += [*rollups[0][:3], *(rollups[0][p] for p in positions)]
            else:
                params.append(_job_stats_document(rollups, summed))
        # One row at least, carrying the ids whose claims were ours, then the claimed jobs'
        # columns (NULL when nothing was claimed).
        sql = f"""WITH {", ".join(ctes)}, {claim_sql}
            SELECT (SELECT array_agg(job_id) FROM owned), {due}, {job_columns(self.using, "j.")} FROM (SELECT 1) one
            LEFT JOIN {jobs} j ON j.id IN (SELECT job_id FROM claims)"""
        params += claim_params
        with self.connection.cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        owned = set(rows[0][0] or [])
        claimed_jobs = loaded_rows(Job, (row[2:] for row in rows if row[2] is not None), self.connection)
        claimed_jobs.sort(key=lambda job: (job.priority, job.pk))
        return owned, claimed_jobs, bool(rows[0][1])

    def add_job_stats(self, rows):
        with self.connection.cursor() as cursor:
            summed = _summed(rows)
            cursor.execute(_job_stats_sql(self.using, summed), [_job_stats_document(rows, summed)])

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
def _job_stats_row_sql(using, summed):
    """The upsert of one group's rollups, its values as parameters: (minute, queue, class,
    *the ``summed`` values)."""
    quote = connections[using].ops.quote_name
    table = quote(JobStat._meta.db_table)
    columns = ", ".join(quote(name) for name in ("minute", "queue_name", "class_name", *summed))
    values = "".join(f", %s::{'float8' if name.endswith('_sum') else 'bigint'}" for name in summed)
    additions = ", ".join(f"{quote(name)} = {table}.{quote(name)} + excluded.{quote(name)}" for name in summed)
    conflict = f"DO UPDATE SET {additions}" if summed else "DO NOTHING"
    return f"""INSERT INTO {table} ({columns})
        SELECT %s::timestamptz, %s::text, %s::text{values}
        ON CONFLICT (minute, queue_name, class_name) {conflict}"""


@functools.lru_cache(maxsize=256)
def _job_stats_sql(using, summed):
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
        FROM jsonb_array_elements(%s::jsonb) AS e(r)
        ORDER BY 1, 2, 3
        ON CONFLICT (minute, queue_name, class_name) {conflict}"""


@functools.lru_cache(maxsize=32)
def _enqueue_sql(using, many, notify, sent):
    """The text of the one-statement enqueue: for one job (plain parameters, then the time) or
    ``many`` (the time, then one array per column, read by ``unnest``). It sends the columns of
    ``job_rows.PER_JOB`` and ``sent``; the time fills ``ENQUEUE_TIME``, and the other columns
    of ``job_rows.UNLESS_DEFAULT`` are written as their defaults."""
    job_rows.check_columns()
    connection = connections[using]
    quote = connection.ops.quote_name
    meta = Job._meta
    fields = job_rows.fields((*job_rows.PER_JOB, *sent))
    defaults = [name for name in job_rows.UNLESS_DEFAULT if name not in sent]
    # Character columns as text: a cast to varchar(n) would cut a longer value short instead of
    # letting the INSERT refuse it. JSON columns travel as text. The parentheses matter with
    # client-side binding, where parameters are inlined: -2147483648::integer would cast
    # 2147483648 before negating it.
    casts = [
        "text" if isinstance(field, (models.CharField, models.JSONField)) else field.db_type(connection)
        for field in fields
    ]
    if many:
        names = [f"c{index}" for index in range(len(fields))]
        values = [f"v.{name}::jsonb" if job_rows.is_json(field) else f"v.{name}" for name, field in zip(names, fields)]
        # Arrays in binary (%b): the text form quotes and escapes every element (the arguments'
        # JSON is full of quotes), which cost more client time than the rest of the INSERT's
        # parameters. A client-side cursor (behind a transaction pooler) inlines them as text.
        arrays = ", ".join(f"%b::{cast}[]" for cast in casts)
        source = (
            f"(SELECT %s::timestamptz AS now) t, unnest({arrays}) WITH ORDINALITY AS v({', '.join(names)}, position)"
        )
        order = " ORDER BY v.position"
    else:
        values = [
            f"(%s)::{cast}::jsonb" if job_rows.is_json(field) else f"(%s)::{cast}" for field, cast in zip(fields, casts)
        ]
        source = "(SELECT %s::timestamptz AS now) t"
        order = ""
    select = ", ".join([*values, "t.now", "t.now", *[_typed_literal(name, connection) for name in defaults]])
    columns = [*job_rows.PER_JOB, *sent, *job_rows.ENQUEUE_TIME, *defaults]
    ready, scheduled = quote(ReadyExecution._meta.db_table), quote(ScheduledExecution._meta.db_table)
    # A job the lifecycle discarded on the way in (its concurrency key was full) gets no row.
    return f"""WITH j AS (
            INSERT INTO {quote(meta.db_table)} ({", ".join(quote(meta.get_field(name).column) for name in columns)})
            SELECT {select} FROM {source}{order}
            RETURNING id, queue_name, priority, scheduled_at, discarded_at, created_at
        ), r AS (
            INSERT INTO {ready} (job_id, queue_name, priority, created_at)
            SELECT id, queue_name, priority, created_at FROM j
            WHERE discarded_at IS NULL AND (scheduled_at IS NULL OR scheduled_at <= created_at)
        ), s AS (
            INSERT INTO {scheduled} (job_id, queue_name, priority, scheduled_at, reason, created_at)
            SELECT id, queue_name, priority, scheduled_at, '', created_at FROM j
            WHERE discarded_at IS NULL AND scheduled_at > created_at
        ){f", n AS (SELECT pg_notify('{READY_CHANNEL}', ''))" if notify else ""}
        SELECT id FROM j{" CROSS JOIN n" if notify else ""}"""


def _typed_literal(name, connection):
    """A default of ``job_rows`` as SQL text with its column's type (an untyped NULL or string
    in a SELECT would be read as text)."""
    field = Job._meta.get_field(name)
    cast = "jsonb" if job_rows.is_json(field) else field.db_type(connection)
    return f"{job_rows.literal(name)}::{cast}"
