"""The job API users write against: ``BaseClass``, ``set()``, ``perform_later`` and friends."""

import functools
import inspect
import logging
from datetime import datetime, timedelta

from asgiref.sync import async_to_sync
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from quebec import conf
from quebec.serialization import serialize_arguments

logger = logging.getLogger("quebec.enqueue")
PRIORITY_RANGE = (-(2**31), 2**31 - 1)
MAX_QUEUE_NAME = 255


class JobLogger(logging.LoggerAdapter):
    """``self.logger``: records carry the job's id and queue, and the message names the job."""

    def process(self, msg, kwargs):
        kwargs.setdefault("extra", {}).update(self.extra)
        return f"[{self.extra['job_class']} #{self.extra['job_id']} {self.extra['queue_name']}] {msg}", kwargs


class JobHandle:
    """What ``perform_later`` returns: the job's identity, and its status read from the database."""

    def __init__(self, job=None, using="default"):
        self._job = job
        self._using = using

    def __repr__(self):
        return f"<JobHandle {self.class_name} id={self.id} queue={self.queue_name!r}>"

    id = property(lambda self: self._job.pk if self._job else None)
    active_job_id = property(lambda self: self._job.active_job_id if self._job else None)
    class_name = property(lambda self: self._job.class_name if self._job else None)
    queue_name = property(lambda self: self._job.queue_name if self._job else None)
    priority = property(lambda self: self._job.priority if self._job else None)
    scheduled_at = property(lambda self: self._job.scheduled_at if self._job else None)
    enqueued = property(lambda self: self.id is not None)

    @property
    def status(self):
        """Current state: ready, scheduled, blocked, claimed, failed or finished (None before commit)."""
        if self._job is None:
            return None
        from quebec.models import Job

        status = Job.objects.using(self._using).with_status().filter(pk=self.id).values_list("status", flat=True)
        # With preserve_finished_jobs off, a job's row is deleted once it has run.
        return status.first() or "finished"

    def refresh(self):
        """Re-read the job's row; returns self."""
        if self._job is not None:
            self._job.refresh_from_db()
        return self


class ConfiguredJob:
    """A job class with per-call options, as returned by ``JobClass.set(...)``."""

    def __init__(self, job_class, *, wait=None, wait_until=None, queue=None, priority=None):
        if wait is not None and wait_until is not None:
            raise ValueError("pass either wait or wait_until, not both")
        self.job_class = job_class
        self.wait = wait
        self.wait_until = wait_until
        self.queue = queue
        self.priority = priority

    def perform_later(self, *args, **kwargs):
        """Enqueue the job on the caller's database connection and return its handle."""
        pending = self.build(*args, **kwargs)
        return pending.enqueue()

    def build(self, *args, **kwargs):
        """Prepare an enqueue without writing it, for ``quebec.perform_all_later``."""
        instance, args = _split_instance(self.job_class, args)
        return PendingJob(
            job_class=self.job_class,
            quebec=instance,
            queue_name=self._queue_name(args, kwargs),
            priority=self._priority(),
            scheduled_at=self._scheduled_at(),
            arguments=serialize_arguments(args, kwargs),
        )

    def _queue_name(self, args, kwargs):
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

    def _priority(self):
        priority = self.job_class.priority if self.priority is None else self.priority
        low, high = PRIORITY_RANGE
        if isinstance(priority, bool) or not isinstance(priority, int) or not low <= priority <= high:
            raise ValueError(
                f"{self.job_class.__qualname__}: priority must be an integer between {low} and {high}, got {priority!r}"
            )
        return priority

    def _scheduled_at(self):
        if self.wait is not None:
            wait = self.wait if isinstance(self.wait, timedelta) else timedelta(seconds=_seconds(self.wait))
            return timezone.now() + wait
        if self.wait_until is not None:
            if not isinstance(self.wait_until, datetime):
                raise TypeError(f"wait_until must be a datetime, got {self.wait_until!r}")
            if settings.USE_TZ and timezone.is_naive(self.wait_until):
                return timezone.make_aware(self.wait_until)
            return self.wait_until
        return None


def _seconds(wait):
    if isinstance(wait, bool) or not isinstance(wait, (int, float)):
        raise TypeError(f"wait must be seconds or a timedelta, got {wait!r}")
    return wait


def _split_instance(job_class, args):
    """The Quebec instance to enqueue through: an explicit first argument, or the class's binding."""
    from quebec.registry import Quebec, instance_for

    if args and isinstance(args[0], Quebec):
        return args[0], args[1:]
    return instance_for(job_class), args


class PendingJob:
    """A built, validated job not yet written; ``enqueue()`` or ``perform_all_later`` writes it."""

    def __init__(self, job_class, quebec, queue_name, priority, scheduled_at, arguments):
        self.job_class = job_class
        self.quebec = quebec
        self.queue_name = queue_name
        self.priority = priority
        self.scheduled_at = scheduled_at
        self.arguments = arguments

    def to_model(self):
        from quebec.models import Job

        return Job(
            queue_name=self.queue_name,
            class_name=self.job_class.job_name(),
            arguments=self.arguments,
            priority=self.priority,
            scheduled_at=self.scheduled_at,
        )

    def enqueue(self):
        """Write the job now, or at commit when ``enqueue_after_commit`` is on."""
        return perform_all_later([self])[0]


def perform_all_later(pending_jobs):
    """Enqueue many built jobs, one transaction per database; returns their handles in order.

    Jobs whose class enqueues after commit are written when the surrounding transaction
    commits (at once when there is none); their handles get an id then.
    """
    pending_jobs = list(pending_jobs)
    for pending in pending_jobs:
        if not isinstance(pending, PendingJob):
            raise TypeError(f"perform_all_later takes jobs made with JobClass.build(...), got {pending!r}")
    pairs = [(pending, JobHandle(using=pending.quebec.using)) for pending in pending_jobs]
    now = [pair for pair in pairs if not pair[0].job_class.wants_enqueue_after_commit()]
    later = [pair for pair in pairs if pair[0].job_class.wants_enqueue_after_commit()]
    for using, group in _by_database(now).items():
        _write(group, using)
    for using, group in _by_database(later).items():
        # robust: a failure here is logged by Django and does not drop the transaction's other hooks.
        transaction.on_commit(functools.partial(_write_after_commit, group, using), using=using, robust=True)
    return [handle for _, handle in pairs]


def _by_database(pairs):
    groups = {}
    for pending, handle in pairs:
        groups.setdefault(pending.quebec.using, []).append((pending, handle))
    return groups


def _write(pairs, using):
    """Insert the jobs and their ready/scheduled rows in one transaction, then fill the handles."""
    from django.db import connections

    from quebec.db import write_transaction
    from quebec.models import Job, dispatch_all

    jobs = [pending.to_model() for pending, _ in pairs]
    with write_transaction(using):
        if connections[using].features.can_return_rows_from_bulk_insert:
            Job.objects.using(using).bulk_create(jobs)
        else:  # MySQL does not hand back the ids of a multi-row insert
            for job in jobs:
                job.save(using=using)
        dispatch_all(jobs, using)
    for job, (_, handle) in zip(jobs, pairs, strict=True):
        handle._job = job


def _write_after_commit(pairs, using):
    try:
        _write(pairs, using)
    except Exception:
        names = ", ".join(sorted({pending.job_class.__qualname__ for pending, _ in pairs}))
        logger.exception("Could not enqueue %d job(s) (%s) after their transaction committed", len(pairs), names)
        raise


class BaseClass:
    """Base class of every job: subclass it and define ``perform``."""

    queue_as = "default"
    priority = 0
    enqueue_after_commit = None  # None: follow the enqueue_after_commit setting

    def perform(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__qualname__} must define perform()")

    @classmethod
    def job_name(cls):
        """The name stored in ``Job.class_name`` and looked up by workers."""
        return cls.__qualname__

    @classmethod
    def wants_enqueue_after_commit(cls):
        if cls.enqueue_after_commit is None:
            return conf.get().enqueue_after_commit
        return cls.enqueue_after_commit

    @classmethod
    def set(cls, *, wait=None, wait_until=None, queue=None, priority=None):
        return ConfiguredJob(cls, wait=wait, wait_until=wait_until, queue=queue, priority=priority)

    @classmethod
    def perform_later(cls, *args, **kwargs):
        return cls.set().perform_later(*args, **kwargs)

    @classmethod
    def build(cls, *args, **kwargs):
        return cls.set().build(*args, **kwargs)

    @classmethod
    def perform_now(cls, *args, **kwargs):
        """Run the job inline, in the caller, without a row in the queue; returns perform's result."""
        _, args = _split_instance(cls, args)
        serialize_arguments(args, kwargs)  # refuse the same arguments perform_later would
        job = cls()
        job._bind(job_id=None, active_job_id=None, queue_name=ConfiguredJob(cls)._queue_name(args, kwargs),
                  priority=cls.priority, executions=1, arguments=(args, kwargs), enqueued_at=None)
        return job.run(args, kwargs)

    # Running: used by workers and perform_now.

    def _bind(self, *, job_id, active_job_id, queue_name, priority, executions, arguments, enqueued_at):
        self.id = job_id
        self.active_job_id = active_job_id
        self.queue_name = queue_name
        self.priority = priority
        self.executions = executions
        self.arguments = arguments
        self.enqueued_at = enqueued_at
        self.logger = JobLogger(
            logging.getLogger("quebec.job"),
            {"job_id": job_id, "job_class": type(self).__qualname__, "queue_name": queue_name},
        )

    @classmethod
    def for_job(cls, job, args, kwargs):
        """An instance ready to run the stored ``job``: its attributes set for ``perform``."""
        instance = cls()
        instance._bind(
            job_id=job.pk,
            active_job_id=job.active_job_id,
            queue_name=job.queue_name,
            priority=job.priority,
            executions=job.executions,
            arguments=(args, kwargs),
            enqueued_at=job.created_at,
        )
        return instance

    def run(self, args, kwargs):
        """Call ``perform``, awaiting it when it is a coroutine function."""
        if inspect.iscoroutinefunction(self.perform):
            # async_to_sync, not asyncio.run: the ORM calls the coroutine makes through
            # sync_to_async come back to this thread and its connection, not a stray thread's.
            return async_to_sync(self.perform)(*args, **kwargs)
        return self.perform(*args, **kwargs)
