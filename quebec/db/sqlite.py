"""SQLite: one writer at a time, no row locks.

The write transaction (``BEGIN IMMEDIATE``, see ``write_transaction``) serialises writers, so a
locking read needs no FOR UPDATE: nothing else changes the rows until the transaction ends.
"""

from quebec.db.base import Operations as BaseOperations
from quebec.models import BlockedExecution, ClaimedExecution


class Operations(BaseOperations):
    vendor = "sqlite"
    claims_alongside = False  # one writer at a time: a second claim would only queue
    like_escape = " ESCAPE '\\'"
    update_returning = True  # SQLite 3.35 and later

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
