"""A running job's progress, steps and cancellation request, as its worker thread sees them.

A worker opens a ``RunContext`` around each run. A job that never reports progress or
checkpoints costs nothing here: no statement is sent on its behalf. One that does has its
progress and steps written at most once per ``WRITE_INTERVAL`` (and when a step ends or the run
ends), and each of those writes also reads the cancellation request: the UPDATE is guarded by
``cancel_requested_at IS NULL``, so a write that matches no row is the news that the job was
cancelled. A job calling ``progress()`` 100,000 times in a minute sends about 60 statements.
"""

import contextvars
import logging
import time

from django.db import DatabaseError, connections
from django.utils import timezone

from quebec.db.connection import in_transaction_by_hand
from quebec.errors import JobCancelled

WRITE_INTERVAL = 1.0  # seconds between two writes of one job's progress

logger = logging.getLogger("quebec.worker")
_current = contextvars.ContextVar("quebec_run_context", default=None)


def current():
    """The context of the run this thread (or coroutine) performs, or None outside a worker."""
    return _current.get()


def cancelled_by():
    """Who cancelled the current run, once the job has heard of it; else None."""
    context = _current.get()
    return None if context is None else context.cancelled_by


def running(job, using, stopping=lambda: False):
    """Make ``job`` (a claimed ``Job`` row) the current run, as a context manager; what it
    reported and has not been written yet is written when the run ends. ``stopping()`` tells
    whether its worker wants continuable jobs to stop at their next checkpoint."""
    return RunContext(job, using, stopping)


class RunContext:
    def __init__(self, job, using, stopping):
        self.job = job
        self.using = using
        self.stopping = stopping
        self.cancelled_by = None  # who asked, once the job knows it was cancelled
        self._dirty = set()  # the columns with values not written yet
        self._last_write = 0.0  # monotonic time of the last write or check
        self._token = None

    def __enter__(self):
        self._token = _current.set(self)
        return self

    def __exit__(self, *exc_info):
        _current.reset(self._token)
        try:
            self.flush()
        except DatabaseError:
            # The run's outcome is still recorded; a resumed job starts from its last write.
            logger.exception("Could not store the progress of job #%s", self.job.pk)

    def report(self, done, total=None, message=None):
        """Record progress; written now if the last write is old enough. Raises ``JobCancelled``
        when that write finds the job cancelled."""
        self.raise_if_cancelled()
        self.job.progress = {"done": done, "total": total, "message": message, "at": timezone.now().isoformat()}
        self._dirty.add("progress")
        self.write_if_due()

    def save_steps(self, state, when="due"):
        """Record a continuable job's steps, written ``"now"``, when the last write is old
        enough (``"due"``), or when the run ends (``"later"``)."""
        self.job.continuation = state
        self._dirty.add("continuation")
        if when == "now" and self.outside_transaction():
            self._write(check=True)
        elif when == "due":
            self.write_if_due()

    def write_if_due(self):
        if time.monotonic() - self._last_write >= WRITE_INTERVAL and self.outside_transaction():
            self._write(check=True)

    def outside_transaction(self):
        """Whether the job's connection is outside a transaction of the job's. Inside one, a
        write would hold the job's row locked (a cancellation would wait for it) and vanish
        with a rollback: it waits for the next report or checkpoint outside."""
        return not connections[self.using].in_atomic_block and not in_transaction_by_hand(self.using)

    def cancel_requested(self):
        """Whether cancellation was asked for: read at most once per ``WRITE_INTERVAL``."""
        due = time.monotonic() - self._last_write >= WRITE_INTERVAL
        if self.cancelled_by is None and due and self.outside_transaction():
            if self._dirty:
                self._write(check=False)
            else:
                self._last_write = time.monotonic()
                self._read_cancellation()
        return self.cancelled_by is not None

    def raise_if_cancelled(self):
        if self.cancelled_by is not None:
            raise JobCancelled(f"cancelled by {self.cancelled_by}")

    def flush(self):
        """Write what was reported since the last write, cancelled or not."""
        if self._dirty:
            self._write(check=False, guarded=False)

    def _write(self, check, guarded=True):
        from quebec.models import Job

        self._last_write = time.monotonic()
        fields = {name: getattr(self.job, name) for name in self._dirty}
        rows = Job.objects.using(self.using).filter(pk=self.job.pk)
        if guarded and self.cancelled_by is None:
            rows = rows.filter(cancel_requested_at__isnull=True)
        if rows.update(**fields):
            self._dirty.clear()
            return
        if not guarded:
            return
        self._read_cancellation()
        if check:
            self.raise_if_cancelled()

    def _read_cancellation(self):
        from quebec.models import Job

        requested = Job.objects.using(self.using).filter(pk=self.job.pk, cancel_requested_at__isnull=False)
        by = requested.values_list("cancel_requested_by", flat=True).first()
        if by is not None:
            self.cancelled_by = by or "code"
