"""``BaseClass``: what users subclass to define a job."""

import logging
from datetime import timedelta

from quebec import conf, execution
from quebec.enqueue import ConfiguredJob, check_priority, perform_all_later
from quebec.strategies import check_strategies


class JobLogger(logging.LoggerAdapter):
    """``self.logger``: records carry the job's id and queue, and the message names the job."""

    def process(self, msg, kwargs):
        kwargs.setdefault("extra", {}).update(self.extra)
        return f"[{self.extra['job_class']} #{self.extra['job_id']} {self.extra['queue_name']}] {msg}", kwargs


class BaseClass:
    """Base class of every job: subclass it and define ``perform``.

    Class attributes say how it is queued (``queue_as``, ``priority``, ``enqueue_after_commit``)
    and what happens when it raises (``retry_on``, ``discard_on``, ``rescue_from``, ``timeout``).
    The callback methods below do nothing unless overridden.
    """

    queue_as = "default"
    priority = 0
    enqueue_after_commit = None  # None: follow the enqueue_after_commit setting
    retry_on = []
    discard_on = []
    rescue_from = []
    timeout = None  # seconds or timedelta
    around_perform = None  # a generator method (yield once) or a method returning a context manager

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        check_strategies(cls)
        check_priority(cls.priority, cls.__qualname__)
        timeout = cls.timeout
        seconds = timeout.total_seconds() if isinstance(timeout, timedelta) else timeout
        if seconds is not None and (isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds <= 0):
            raise TypeError(f"{cls.__qualname__}.timeout must be positive seconds or a timedelta, got {timeout!r}")

    def perform(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__qualname__} must define perform()")

    def before_enqueue(self):
        """Runs before the job is written; raise ``quebec.AbortEnqueue`` to skip it."""

    def after_enqueue(self):
        """Runs once the job is written (after commit, for jobs that enqueue after commit)."""

    def before_perform(self):
        """Runs in the worker before ``perform``."""

    def after_perform(self):
        """Runs in the worker after ``perform`` returned."""

    def after_discard(self, error):
        """Runs when the job is dropped: discarded, or failed for good after its retries."""

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
        """Run the job in the caller, with its callbacks and error handling; no row in the queue.

        Returns what ``perform`` returns. An error the class does not handle is raised; one it
        retries is enqueued to run later, as the worker would.
        """
        pending = cls.set().build(*args, **kwargs)
        job = pending.job
        job.executions = 1
        outcome = execution.perform(job, *job.arguments)
        if outcome.state == execution.FAILED:
            raise outcome.error
        if outcome.state == execution.RETRY:
            job.scheduled_at = outcome.retry_at
            perform_all_later([pending])
        return outcome.result

    def bind(self, *, job_id, active_job_id, queue_name, priority, executions, arguments, enqueued_at,
             exception_executions=None):
        """Set the attributes ``perform`` and the callbacks see."""
        self.id = job_id
        self.active_job_id = active_job_id
        self.queue_name = queue_name
        self.priority = priority
        self.executions = executions
        self.exception_executions = dict(exception_executions or {})
        self.arguments = arguments
        self.enqueued_at = enqueued_at
        self.scheduled_at = None
        self.logger = JobLogger(
            logging.getLogger("quebec.job"),
            {"job_id": job_id, "job_class": type(self).__qualname__, "queue_name": queue_name},
        )

    @classmethod
    def for_job(cls, job, args, kwargs):
        """An instance ready to run the stored ``job`` (a ``quebec.models.Job``)."""
        instance = cls()
        instance.bind(
            job_id=job.pk,
            active_job_id=job.active_job_id,
            queue_name=job.queue_name,
            priority=job.priority,
            executions=job.executions,
            arguments=(args, kwargs),
            enqueued_at=job.created_at,
            exception_executions=job.exception_executions,
        )
        return instance
