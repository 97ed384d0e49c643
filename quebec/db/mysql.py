"""MySQL and MariaDB: statements that lock only the rows they mean to.

On a small table InnoDB's optimizer may read every row and sort, locking all it read, not just
the rows a statement returns or changes: one claimer takes every ready row and the others find
nothing, and two workers deleting by a list of keys deadlock. So locking reads name the index
that matches their ORDER BY, and statements over a list of keys reach each row through its
unique index from a derived table of the keys.
"""

from quebec.db import job_rows
from quebec.db.base import Operations as BaseOperations
from quebec.db.rows import chunks
from quebec.models import BlockedExecution, ClaimedExecution, ReadyExecution, ScheduledExecution, Semaphore, UniqueKey

# Keys per statement when rows are reached through a list of keys: bounds the statement's size.
KEYS_PER_STATEMENT = 500


def keyed_join(keys, table, column):
    """A table reference and params reaching each row of ``table`` whose ``column`` is in ``keys``
    through that column's unique index: the keys are a derived table, and STRAIGHT_JOIN makes it
    the driving side, so each row is found by one index lookup and only matching rows are locked."""
    derived = " UNION ALL ".join(["SELECT %s AS k"] + ["SELECT %s"] * (len(keys) - 1))
    return f"({derived}) AS keyed STRAIGHT_JOIN {table} AS t ON t.{column} = keyed.k", list(keys)


class Operations(BaseOperations):
    vendor = "mysql"

    def index_hint(self, index):
        return f"FORCE INDEX ({self.quote(index)})"

    def enqueues_alone(self, jobs):
        """One job: see ``insert_jobs``. The driver must send several statements at once, as
        mysqlclient does unless its ``multi_statements`` option is turned off."""
        return len(jobs) == 1 and self.connection.settings_dict["OPTIONS"].get("multi_statements", True)

    def insert_jobs(self, jobs, placement):
        """Outside a transaction, one job's row, its ready or scheduled row and their transaction
        in one round trip instead of five (autocommit off, two INSERTs, COMMIT, autocommit on):
        the round trips were most of a single enqueue's time."""
        # Autocommit is off inside an atomic block and in a transaction the caller opened by
        # hand; START TRANSACTION there would commit the caller's work.
        alone = self.connection.get_autocommit() and self.enqueues_alone(jobs)
        if not alone or placement.blocked:
            return super().insert_jobs(jobs, placement)
        [job] = jobs
        sent = job_rows.sent_columns(jobs)
        db_now = self._datetime(placement.now)
        if placement.ready:
            line = f"{self.table(ReadyExecution)} (job_id, queue_name, priority, created_at)"
            line_params = [job.queue_name, job.priority, db_now]
        else:
            line = f"{self.table(ScheduledExecution)} (job_id, queue_name, priority, scheduled_at, reason, created_at)"
            line_params = [job.queue_name, job.priority, self._datetime(job.scheduled_at), "", db_now]
        placeholders = ", ".join(["%s"] * len(line_params))
        sql = (
            f"START TRANSACTION; {self._insert_jobs_sql(sent, 1, returning=False)}; "
            f"INSERT INTO {line} VALUES (LAST_INSERT_ID(), {placeholders}); SELECT LAST_INSERT_ID(); COMMIT"
        )
        job.pk = self._send_transaction(sql, [*self._job_values(sent, placement.now)(job), *line_params])
        job.created_at = job.updated_at = placement.now
        job._state.adding, job._state.db = False, self.using
        if placement.ready:
            self.notify_ready()

    def _send_transaction(self, sql, params):
        """Run ``sql``, statements from START TRANSACTION to COMMIT, and return the value of its
        one SELECT. The server stops at a failing statement with the transaction open: it is
        rolled back before the error is raised."""
        selected = None
        with self.connection.cursor() as cursor:
            try:
                cursor.execute(sql, params)
                while True:  # every statement's result must be read before the next query
                    if cursor.description:
                        selected = cursor.fetchone()[0]
                    if not cursor.nextset():
                        break
            except BaseException:
                self._roll_back_after_failure(cursor)
                raise
        return selected

    def _roll_back_after_failure(self, cursor):
        try:
            while cursor.nextset():  # the statements after the failing one are not run
                pass
        except Exception:
            pass
        try:
            cursor.execute("ROLLBACK")
        except Exception:  # a lost connection: the server rolled back when it dropped the session
            self.connection.close()

    def update_rows(self, model, objects, fields):
        """One UPDATE with a CASE per column: the driver would send executemany's statements one
        by one. Only the primary key is read, and InnoDB's semi-consistent read lets an UPDATE
        pass rows others have locked, so this locks no more than the statements one by one."""
        if len(objects) < 2:
            return super().update_rows(model, objects, fields)
        columns = [model._meta.get_field(name) for name in fields]
        rows = self._row_values(columns, objects)
        pk = self.quote(model._meta.pk.column)
        whens = " ".join(["WHEN %s THEN %s"] * len(rows))
        sets = ", ".join(f"{self.quote(field.column)} = CASE {pk} {whens} END" for field in columns)
        sql = f"UPDATE {self.table(model)} SET {sets} WHERE {pk} IN ({', '.join(['%s'] * len(rows))})"
        params = [value for index in range(len(columns)) for row in rows for value in (row[-1], row[index])]
        with self.connection.cursor() as cursor:
            cursor.execute(sql, [*params, *(row[-1] for row in rows)])

    def delete_by_pk(self, model, pks):
        table, pk = self.table(model), self.quote(model._meta.pk.column)
        deleted = 0
        with self.connection.cursor() as cursor:  # without the ORM's delete machinery
            for chunk in chunks(pks, KEYS_PER_STATEMENT):
                join, params = keyed_join(chunk, table, pk)
                cursor.execute(f"DELETE t FROM {join}", params)
                deleted += cursor.rowcount
        return deleted

    def delete_claims(self, job_ids, process_id):
        """A multi-table DELETE returns no rows: lock the claims still ours, then delete exactly those."""
        owned = set()
        with self.connection.cursor() as cursor:
            for chunk in chunks(job_ids, KEYS_PER_STATEMENT):
                join, params = keyed_join(chunk, self.table(ClaimedExecution), "job_id")
                owner = "t.process_id IS NULL" if process_id is None else "t.process_id = %s"
                cursor.execute(
                    f"SELECT t.job_id FROM {join} WHERE {owner} FOR UPDATE",
                    [*params, *([] if process_id is None else [process_id])],
                )
                owned.update(row[0] for row in cursor.fetchall())
        self.delete_by_pk(ClaimedExecution, sorted(owned))  # a claim's primary key is its job
        return owned

    def lock_blocked(self, key_counts):
        """All keys in one statement: a locking SELECT per key, joined by UNION ALL."""
        locked = []
        for chunk in chunks(key_counts, KEYS_PER_STATEMENT):
            select = (
                f"(SELECT b.job_id, b.queue_name, b.priority, b.concurrency_key FROM {self.table(BlockedExecution)} b "
                f"{self.index_hint('quebec_blocked_release')} WHERE b.concurrency_key = %s "
                f"ORDER BY b.priority, b.job_id LIMIT %s FOR UPDATE SKIP LOCKED)"
            )
            locked += self._fetch(
                " UNION ALL ".join([select] * len(chunk)), [value for key, count in chunk for value in (key, count)]
            )
        return locked

    def lock_semaphores(self, keys):
        """Through the key's unique index (``keyed_join``, keys in order), so only these rows are locked."""
        values = {}
        for chunk in chunks(keys, KEYS_PER_STATEMENT):
            join, params = keyed_join(chunk, self.table(Semaphore), self.quote("key"))
            values.update(self._fetch(f"SELECT t.{self.quote('key')}, t.value FROM {join} FOR UPDATE", params))
        return values

    def update_semaphores(self, keys, delta, now, expires_at):
        with self.connection.cursor() as cursor:
            for chunk in chunks(keys, KEYS_PER_STATEMENT):
                join, params = keyed_join(chunk, self.table(Semaphore), self.quote("key"))
                cursor.execute(
                    f"UPDATE {join} SET t.value = t.value + %s, t.updated_at = %s, t.expires_at = %s",
                    [*params, delta, self._datetime(now), self._datetime(expires_at)],
                )

    def sums_clause(self, model, keys, replaced, summed):
        quote = self.quote
        changes = [f"{quote(name)} = VALUES({quote(name)})" for name in replaced]
        changes += [f"{quote(name)} = {quote(name)} + VALUES({quote(name)})" for name in summed]
        return f"ON DUPLICATE KEY UPDATE {', '.join(changes)}"

    def take_unique_keys(self, rows, now):
        """ON DUPLICATE KEY UPDATE takes over only an expired key. Its assignments run left to
        right, each seeing the ones before: ``expires_at``, which the others test, comes last.
        MariaDB returns every row as it is after the statement, so each key's holder comes back
        with it; MySQL has no RETURNING, and the holders are read by a second statement."""
        table, key = self.table(UniqueKey), self.quote("key")
        convert = self._unique_converters()
        returning = self.connection.features.can_return_rows_from_bulk_insert
        expired = "expires_at < %s"
        to_uuid = UniqueKey._meta.get_field("active_job_id").to_python
        holders = {}
        for chunk in chunks(rows, KEYS_PER_STATEMENT):
            values = ", ".join(["(%s, %s, %s, %s)"] * len(chunk))
            params = [value for row in chunk for value in self._unique_values(row, now, convert)]
            db_now = self._datetime(now)
            sql = (
                f"INSERT INTO {table} ({key}, active_job_id, expires_at, created_at) VALUES {values} "
                f"ON DUPLICATE KEY UPDATE active_job_id = IF({expired}, VALUES(active_job_id), active_job_id), "
                f"created_at = IF({expired}, VALUES(created_at), created_at), "
                f"expires_at = IF({expired}, VALUES(expires_at), expires_at)"
            )
            if returning:
                found = self._fetch(f"{sql} RETURNING {key}, active_job_id", [*params, db_now, db_now, db_now])
                holders.update((row_key, to_uuid(holder)) for row_key, holder in found)
            else:
                with self.connection.cursor() as cursor:
                    cursor.execute(sql, [*params, db_now, db_now, db_now])
        return holders if returning else self.unique_holders([row[0] for row in rows])
