"""SQLite: one writer at a time, no row locks.

The write transaction (``BEGIN IMMEDIATE``, see ``write_transaction``) serialises writers, so a
locking read needs no FOR UPDATE: nothing else changes the rows until the transaction ends.
"""

from quebec.db.base import Operations as BaseOperations
from quebec.db.connection import send
from quebec.models import BlockedExecution, ClaimedExecution


class Operations(BaseOperations):
    vendor = "sqlite"
    claims_alongside = False  # one writer at a time: a second claim would only queue
    like_escape = " ESCAPE '\\'"
    update_returning = True  # SQLite 3.35 and later

    def enqueues_alone(self, jobs):
        return True  # see insert_jobs

    def insert_jobs(self, jobs, placement):
        """Outside a transaction: ``BEGIN IMMEDIATE``, the rows and ``COMMIT`` sent straight to
        the driver, and the workers woken once committed. Django's atomic block around the two
        INSERTs (autocommit off and back on, its bookkeeping, its commit hooks) cost a single
        enqueue as much Python as all the rest of it."""
        connection = self.connection
        # Autocommit is off inside an atomic block, and in a transaction opened by hand.
        if not connection.get_autocommit():
            return super().insert_jobs(jobs, placement)
        send(connection, "BEGIN IMMEDIATE", [], returning=False)
        try:
            self.insert_new_jobs(jobs, placement.now)
            self.insert_executions(placement, wake=False)
            send(connection, "COMMIT", [], returning=False)
        except BaseException:
            self._roll_back(connection)
            raise
        if placement.ready:
            self.notify_ready()  # outside a transaction: at once

    def _roll_back(self, connection):
        driver = connection.connection
        if driver is None or not driver.in_transaction:
            return  # BEGIN failed (the database stayed locked), or the connection is gone
        try:
            driver.rollback()
        except Exception:
            connection.close()

    def lock_clause(self, skip_locked):
        return ""

    def delete_claims(self, job_ids, process_id):
        if self.connection.features.can_return_columns_from_insert:  # such versions have DELETE ... RETURNING
            return super().delete_claims(job_ids, process_id)
        # An old SQLite: the write transaction holds the only write lock, so nothing changes
        # between the read and the delete.
        claims = ClaimedExecution.objects.using(self.using).filter(process_id=process_id, job_id__in=job_ids)
        owned = set(claims.values_list("job_id", flat=True))
        claims.delete()
        return owned

    def lock_blocked(self, key_counts):
        """All keys in one statement: a sub-select per key, joined by UNION ALL."""
        if not key_counts:
            return []
        select = (
            f"SELECT * FROM (SELECT b.job_id, b.queue_name, b.priority, b.concurrency_key "
            f"FROM {self.table(BlockedExecution)} b WHERE b.concurrency_key = %s ORDER BY b.priority, b.job_id LIMIT %s)"
        )
        return self._fetch(
            " UNION ALL ".join([select] * len(key_counts)),
            [value for key, count in key_counts for value in (key, count)],
        )
