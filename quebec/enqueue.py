"""Enqueueing: ``JobClass.set(...)``, built jobs, ``perform_all_later`` and the handles returned."""

import contextlib
import functools
import itertools
import logging
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, Self

from django.conf import settings
from django.utils import timezone

from quebec import batches, conf, tracing
from quebec.db import write_transaction
from quebec.db.connection import after_commit, in_transaction_by_hand
from quebec.serialization import serialize_arguments
from quebec.storable import MAX_KEY_LENGTH, check_jobs
from quebec.errors import AbortEnqueue
from quebec.unique import DuplicateJob, UniqueConflict

if TYPE_CHECKING:
    from quebec.base_class import BaseClass
    from quebec.db.rows import RowTemplate
    from quebec.models import Job
    from quebec.registry import Quebec

# A built job and the handle perform_all_later returns for it.
Pair = tuple["PendingJob", "JobHandle"]
# Where a unique key is held: (database alias, stored key).
KeyPlace = tuple[str, str | None]

logger = logging.getLogger("quebec.enqueue")
PRIORITY_RANGE = (-(2**31), 2**31 - 1)
MAX_QUEUE_NAME = MAX_KEY_LENGTH  # one length for every name and key the database stores


class JobIdentity(NamedTuple):
    """What a handle keeps of its job's row: the columns it shows, not the row (a bulk enqueue's
    handles then cost a few hundred bytes each, not a row with its arguments)."""

    id: int
    active_job_id: uuid.UUID
    class_name: str
    queue_name: str
    priority: int
    scheduled_at: datetime | None
    created_at: datetime

    @classmethod
    def of(cls, row: "Job | None") -> "JobIdentity | None":
        if row is None:
            return None
        return cls(
            row.pk, row.active_job_id, row.class_name, row.queue_name, row.priority, row.scheduled_at, row.created_at
        )


class JobHandle:
    """What ``perform_later`` returns: the job's identity, and its status read from the database."""

    __slots__ = ("_identity", "_twin", "_using", "aborted", "abort_reason", "duplicate")

    def __init__(self, using: str = "default") -> None:
        self._identity: JobIdentity | None = None
        self._twin: "JobHandle | None" = None  # the handle of the same call whose job this one duplicates
        self._using = using
        self.aborted = False  # before_enqueue raised AbortEnqueue
        self.abort_reason: str | None = None
        self.duplicate = False  # a unique job's key was held: nothing was written, this is the holder

    def __repr__(self) -> str:
        if self.aborted:
            return f"<JobHandle aborted: {self.abort_reason}>"
        duplicate = " duplicate" if self.duplicate else ""
        return f"<JobHandle{duplicate} {self.class_name} id={self.id} queue={self.queue_name!r}>"

    @property
    def _job(self) -> JobIdentity | None:
        """The job's identity: its own, or for a duplicate the holder's."""
        if self._identity is None and self._twin is not None:
            return self._twin._job
        return self._identity

    def __bool__(self) -> bool:
        return not self.aborted

    # The job's columns; None while it is not written (aborted, or enqueued after commit).
    @property
    def id(self) -> int | None:
        return self._job.id if self._job else None

    @property
    def active_job_id(self) -> uuid.UUID | None:
        return self._job.active_job_id if self._job else None

    @property
    def class_name(self) -> str | None:
        return self._job.class_name if self._job else None

    @property
    def queue_name(self) -> str | None:
        return self._job.queue_name if self._job else None

    @property
    def priority(self) -> int | None:
        return self._job.priority if self._job else None

    @property
    def scheduled_at(self) -> datetime | None:
        return self._job.scheduled_at if self._job else None

    @property
    def enqueued(self) -> bool:
        return self.id is not None

    @property
    def status(self) -> str | None:
        """ready, scheduled, claimed, failed, finished or discarded; None until written."""
        if self._job is None:
            return None
        from quebec.models import Job

        status = Job.objects.using(self._using).with_status().filter(pk=self.id).values_list("status", flat=True)
        # With preserve_finished_jobs off, a job's row is deleted once it has run.
        return status.first() or "finished"

    @property
    def progress(self) -> dict[str, Any] | None:
        """The last progress the job reported, ``{"done", "total", "message", "at"}``, or None."""
        if self._job is None:
            return None
        from quebec.models import Job

        return Job.objects.using(self._using).filter(pk=self.id).values_list("progress", flat=True).first()

    def cancel(self, by: str = "code") -> Literal["discarded", "requested"] | None:
        """``quebec.cancel(handle.id)``: see there."""
        from quebec.lifecycle.cancelling import cancel

        job = self._job
        return cancel(job.id, by=by, using=self._using) if job is not None else None

    def refresh(self) -> Self:
        """Re-read the job's row (its priority and when it is due may have changed); returns self."""
        job = self._job
        if job is not None:
            from quebec.models import Job

            row = Job.objects.using(self._using).filter(pk=job.id).first()
            if row is not None:
                self._identity, self._twin = JobIdentity.of(row), None
        return self


class ConfiguredJob:
    """A job class with per-call options, as returned by ``JobClass.set(...)``."""

    def __init__(
        self,
        job_class: "type[BaseClass]",
        *,
        wait: float | timedelta | None = None,
        wait_until: datetime | None = None,
        queue: str | None = None,
        priority: int | None = None,
    ) -> None:
        if wait is not None and wait_until is not None:
            raise ValueError("pass either wait or wait_until, not both")
        self.job_class = job_class
        self.wait = wait
        self.wait_until = wait_until
        self.queue = queue
        self.priority = priority

    def perform_later(self, *args: Any, **kwargs: Any) -> JobHandle:
        """Enqueue the job on the caller's database connection and return its handle."""
        return perform_all_later([self.build(*args, **kwargs)])[0]

    def build(self, *args: Any, **kwargs: Any) -> "PendingJob":
        """Prepare an enqueue without writing it, for ``quebec.perform_all_later``."""
        instance, args = _split_instance(self.job_class, args)
        arguments = serialize_arguments(args, kwargs)
        job = self.job_class()
        job.bind(
            job_id=None,
            active_job_id=uuid.uuid4(),
            queue_name=self._queue_name(args, kwargs),
            priority=self._priority(),
            executions=0,
            arguments=(list(args), kwargs),
            enqueued_at=None,
        )
        job.scheduled_at = self._scheduled_at()
        job.stored_key = self.job_class.stored_concurrency_key(job, args, kwargs)
        job.stored_unique_key = self.job_class.stored_unique_key_for(job, args, kwargs, arguments)
        return PendingJob(job, instance, arguments)

    def _queue_name(self, args: Sequence[Any], kwargs: dict[str, Any]) -> str:
        override = conf.get().force_override_queue
        if override:
            return override
        name = self.job_class.queue_as if self.queue is None else self.queue
        if callable(name):
            name = name(*args, **kwargs)
        if not isinstance(name, str) or not name or len(name) > MAX_QUEUE_NAME:
            raise ValueError(
                f"{self.job_class.__qualname__}: queue name must be a non-empty string of at most "
                f"{MAX_QUEUE_NAME} characters, got {name!r}"
            )
        return name

    def _priority(self) -> int:
        priority = self.job_class.priority if self.priority is None else self.priority
        check_priority(priority, self.job_class.__qualname__)
        return priority

    def _scheduled_at(self) -> datetime | None:
        if self.wait is not None:
            if isinstance(self.wait, bool) or not isinstance(self.wait, (int, float, timedelta)):
                raise TypeError(f"wait must be seconds or a timedelta, got {self.wait!r}")
            wait = self.wait if isinstance(self.wait, timedelta) else timedelta(seconds=self.wait)
            return timezone.now() + wait
        if self.wait_until is not None:
            if not isinstance(self.wait_until, datetime):
                raise TypeError(f"wait_until must be a datetime, got {self.wait_until!r}")
            if settings.USE_TZ and timezone.is_naive(self.wait_until):
                return timezone.make_aware(self.wait_until)
            return self.wait_until
        return None


def check_priority(priority: object, owner: str) -> None:
    low, high = PRIORITY_RANGE
    if isinstance(priority, bool) or not isinstance(priority, int) or not low <= priority <= high:
        raise ValueError(f"{owner}: priority must be an integer between {low} and {high}, got {priority!r}")


def _split_instance(job_class: "type[BaseClass]", args: tuple[Any, ...]) -> "tuple[Quebec, tuple[Any, ...]]":
    """The Quebec instance to enqueue through: an explicit first argument, or the class's binding."""
    from quebec.registry import Quebec, instance_for

    if args and isinstance(args[0], Quebec):
        return args[0], args[1:]
    return instance_for(job_class), args


class PendingJob:
    """A built, validated job not yet written; ``perform_all_later`` writes it."""

    def __init__(self, job: "BaseClass", quebec: "Quebec", arguments: Any) -> None:
        self.job = job  # the BaseClass instance the enqueue callbacks see
        self.quebec = quebec
        self.arguments = arguments
        self.encoded_arguments: str | None = None  # their JSON text, once the enqueue checks made it

    def __repr__(self) -> str:
        return f"<PendingJob {type(self.job).__qualname__} queue={self.job.queue_name!r}>"

    @property
    def after_commit(self) -> bool:
        # A batch's members are written with it (its counters are kept in the same transaction).
        return batches.current() is None and type(self.job).wants_enqueue_after_commit()

    def to_model(self, using: str | None = None, now: datetime | None = None) -> "Job":
        """The job's row, unsaved; ``now`` (one time for a batch of rows) until the enqueue
        writes its own."""
        job = self.job
        now = now or timezone.now()
        model: Job = _new_job_row().new(
            queue_name=job.queue_name,
            class_name=type(job).job_name(),
            arguments=self.arguments,
            priority=job.priority,
            active_job_id=job.active_job_id,
            executions=job.executions,
            exception_executions=job.exception_executions,
            attempts=[],
            concurrency_key=job.stored_key,
            unique_key=job.stored_unique_key,
            scheduled_at=job.scheduled_at,
            created_at=now,
            updated_at=now,
            batch_id=_batch_id(using or self.quebec.using),
        )
        # The class itself rides along, so that its limits are read inside the enqueue's
        # transaction without looking a class up by name (which may import code); so does the
        # arguments' JSON text, which the INSERT sends as it is.
        model.job_class = type(job)  # type: ignore[attr-defined]  # an attribute, not a field
        model.encoded_arguments = self.encoded_arguments  # type: ignore[attr-defined]
        return model


@functools.cache
def _new_job_row() -> "RowTemplate":
    # Read once: this module is loaded with ``quebec`` itself, before Django's models are.
    from quebec.db.job_rows import NEW_JOB

    return NEW_JOB


def _batch_id(using: str) -> int | None:
    """The batch a job written now into ``using`` joins: the one of ``quebec.batch()``, of
    ``Batch.enqueue()`` or of the member running in this thread; None outside them."""
    scope = batches.current()
    if scope is None:
        return None
    if scope.using != using:
        raise ValueError(
            f"a job enqueued into database {using!r} cannot join batch #{scope.batch_id} of database {scope.using!r}"
        )
    return scope.batch_id


# How many built jobs ``perform_all_later`` reads, checks and writes at a time: what it holds
# besides the handles it returns (a ``JobIdentity`` each), whatever the number of jobs.
ENQUEUE_CHUNK = 1000


def perform_all_later(pending_jobs: Iterable["PendingJob"]) -> list[JobHandle]:
    """Enqueue many built jobs, one transaction per database; returns their handles in order.

    Each job's ``before_enqueue`` runs first (``AbortEnqueue`` skips that job and marks its
    handle ``aborted``), ``after_enqueue`` once it is written. Neither runs for a unique job
    whose key is held (see ``_accept``). Jobs whose class enqueues after
    commit are written when the surrounding transaction commits; their handles get an id then.

    ``pending_jobs`` may be a generator: the jobs are read, checked and written
    ``ENQUEUE_CHUNK`` at a time, so that a call of a million jobs holds a chunk of them, not a
    million. Up to one chunk, nothing is written or called back before every job is checked.
    Past it, a job found wrong rolls the whole call back, but the ``before_enqueue`` of the
    jobs read before it has run; ``after_enqueue`` runs once every job is written.
    """
    chunks = itertools.batched(pending_jobs, ENQUEUE_CHUNK)
    first = next(chunks, ())
    second = next(chunks, None)
    if second is None:
        return _enqueue_chunk(first)
    handles: list[JobHandle] = []
    written: list[PendingJob] = []  # whose after_enqueue runs once all are written
    taking: dict[KeyPlace, JobHandle] = {}  # unique keys this call's earlier chunks took
    deferred: dict[str, list[Pair]] = {}
    with contextlib.ExitStack() as transactions:
        opened: set[str] = set()
        for chunk in itertools.chain((first, second), chunks):
            for using in {pending.quebec.using for pending in _built(chunk)} - opened:
                transactions.enter_context(write_transaction(using))
                opened.add(using)
            handles += _enqueue_chunk(chunk, taking, written, deferred)
    for pending in written:
        pending.job.after_enqueue()
    for using, group in deferred.items():
        _write_on_commit(group, using)
    return handles


def _built(chunk: Sequence[Any]) -> Sequence["PendingJob"]:
    for pending in chunk:
        if not isinstance(pending, PendingJob):
            raise TypeError(f"perform_all_later takes jobs made with JobClass.build(...), got {pending!r}")
    return chunk


def _enqueue_chunk(
    chunk: Sequence["PendingJob"],
    taking: "dict[KeyPlace, JobHandle] | None" = None,
    written: "list[PendingJob] | None" = None,
    deferred: "dict[str, list[Pair]] | None" = None,
) -> list[JobHandle]:
    """``perform_all_later`` of one chunk; with ``written`` and ``deferred``, one of many, which
    leaves the ``after_enqueue`` calls and the writes after commit to the caller."""
    pending_jobs = _built(chunk)
    # Refused before any callback runs or any transaction (or commit hook) is touched.
    databases = {pending.quebec.using for pending in pending_jobs}
    for using in databases:
        check_jobs([pending for pending in pending_jobs if pending.quebec.using == using], using)
    pairs = [(pending, JobHandle(using=pending.quebec.using)) for pending in pending_jobs]
    accepted = _accept(pairs, taking=taking)
    now: list[Pair] = []
    later: list[Pair] = []
    for pair in accepted:
        (later if pair[0].after_commit else now).append(pair)
    for using, group in _by_database(now).items():
        _write(group, using, written)
    for using, group in _by_database(later).items():
        if deferred is None:
            _write_on_commit(group, using)
        else:
            deferred.setdefault(using, []).extend(group)
    return [handle for _, handle in pairs]


def _write_on_commit(group: list[Pair], using: str) -> None:
    if in_transaction_by_hand(using):
        # Django runs no commit hook when such a transaction commits, only once autocommit is
        # back on, and drops it with any rollback before that, even of later work. Written into
        # it, the jobs commit or roll back with it, which is what waiting for the commit promises.
        _write(group, using)
        return
    # robust: a failure is logged and does not drop the transaction's other commit hooks.
    after_commit(functools.partial(_write_after_commit, group, using), using, robust=True)


def _accept(
    pairs: list[Pair], using: str | None = None, taking: "dict[KeyPlace, JobHandle] | None" = None
) -> list[Pair]:
    """The builds to write: ``before_enqueue`` runs for each, except unique jobs whose key is
    held by a job already written or by an earlier build of this call, which become duplicates.

    Whether a key is held is read here, before the callbacks, so that a duplicate runs none;
    the enqueue's transaction decides for good (``quebec.lifecycle.unique``). A build that loses
    a race between this read and that transaction has run ``before_enqueue`` but not
    ``after_enqueue``, and is a duplicate all the same. Classes without a ``before_enqueue``
    are left to the transaction alone: the read would change nothing for them. ``taking`` holds
    the keys taken by the builds before ``pairs`` in the same call.
    """
    held = _holders([pair for pair in pairs if _has_before_enqueue(pair[0])], using)
    taking = {} if taking is None else taking
    accepted = []
    for pending, handle in pairs:
        where = (using or pending.quebec.using, pending.job.stored_unique_key)
        if where[1] is not None and (where in held or where in taking):
            _duplicate(pending, handle, held.get(where), taking.get(where))
            continue
        if _before_enqueue(pending, handle):
            accepted.append((pending, handle))
            if where[1] is not None:
                taking[where] = handle
    return accepted


def _has_before_enqueue(pending: "PendingJob") -> bool:
    from quebec.base_class import BaseClass

    return type(pending.job).before_enqueue is not BaseClass.before_enqueue


def _has_after_enqueue(pending: "PendingJob") -> bool:
    from quebec.base_class import BaseClass

    return type(pending.job).after_enqueue is not BaseClass.after_enqueue


def _holders(pairs: list[Pair], using: str | None = None) -> "dict[KeyPlace, Job]":
    """{(database, key): row of the job holding it} for the unique keys among ``pairs``."""
    from quebec.db import operations
    from quebec.models import Job

    keys: dict[str, set[str]] = {}
    for pending, _ in pairs:
        if pending.job.stored_unique_key is not None:
            keys.setdefault(using or pending.quebec.using, set()).add(pending.job.stored_unique_key)
    held: dict[KeyPlace, Job] = {}
    for database, database_keys in keys.items():
        holders = operations(database).unique_holders(sorted(database_keys), timezone.now())
        if holders:
            rows = Job.objects.using(database).filter(active_job_id__in=set(holders.values())).defer("arguments")
            by_id = {row.active_job_id: row for row in rows}
            held.update(((database, key), by_id[holder]) for key, holder in holders.items() if holder in by_id)
    return held


def _duplicate(pending: "PendingJob", handle: JobHandle, holder: "Job | None", twin: JobHandle | None) -> None:
    job_class = type(pending.job)
    if job_class.unique_on_conflict == UniqueConflict.Raise:
        key = pending.job.stored_unique_key
        where = f"job #{holder.pk}" if holder is not None else "an earlier job of the same call"
        raise DuplicateJob(
            f"{job_class.__qualname__}: unique key {key!r} is held by {where}",
            key=key,
            job_id=getattr(holder, "pk", None),
        )
    handle.duplicate = True
    handle._identity, handle._twin = JobIdentity.of(holder), twin


def _before_enqueue(pending: "PendingJob", handle: JobHandle) -> bool:
    try:
        pending.job.before_enqueue()
    except AbortEnqueue as abort:
        handle.aborted = True
        handle.abort_reason = str(abort) or "aborted by before_enqueue"
        return False
    return True


def _by_database[T](pairs: Iterable[tuple["PendingJob", T]]) -> dict[str, list[tuple["PendingJob", T]]]:
    groups: dict[str, list[tuple[PendingJob, T]]] = {}
    for pending, handle in pairs:
        groups.setdefault(pending.quebec.using, []).append((pending, handle))
    return groups


def _write(pairs: list[Pair], using: str, written: "list[PendingJob] | None" = None) -> None:
    """Insert the jobs and their ready/scheduled rows in one transaction, then fill the handles
    and call ``after_enqueue``, or leave the jobs whose class has one in ``written``."""
    from quebec.lifecycle.queueing import enqueue

    now = timezone.now()
    models = [pending.to_model(using, now) for pending, _ in pairs]
    with tracing.enqueueing(models):
        skipped = enqueue(models, using).skipped
    now_written = []
    for model, (pending, handle) in zip(models, pairs, strict=True):
        if id(model) in skipped:  # a unique job another took the key of meanwhile
            handle.duplicate = True
            handle._identity = JobIdentity.of(skipped[id(model)])
            continue
        handle._identity = JobIdentity.of(model)
        pending.job.id = model.pk
        pending.job.enqueued_at = model.created_at
        now_written.append(pending)
    if written is not None:
        written += (pending for pending in now_written if _has_after_enqueue(pending))
        return
    for pending in now_written:
        pending.job.after_enqueue()


def _write_after_commit(pairs: list[Pair], using: str) -> None:
    try:
        _write(pairs, using)
    except Exception:
        names = ", ".join(sorted({type(pending.job).__qualname__ for pending, _ in pairs}))
        logger.exception("Could not enqueue %d job(s) (%s) after their transaction committed", len(pairs), names)
        raise


def enqueue_now(pending_jobs: Sequence["PendingJob"], using: str) -> list[JobHandle]:
    """Write built jobs into ``using`` inside the caller's transaction, whatever their classes say
    about enqueueing after commit; returns their handles."""
    check_jobs(pending_jobs, using)
    pairs = [(pending, JobHandle(using=using)) for pending in pending_jobs]
    accepted = _accept(pairs, using)
    if accepted:
        _write(accepted, using)
    return [handle for _, handle in pairs]
