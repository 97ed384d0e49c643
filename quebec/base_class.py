"""``BaseClass``: what users subclass to define a job."""

import functools
import logging
import uuid
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Self

from quebec import batches, conf, execution, tracing
from quebec.concurrency import DEFAULT_DURATION, ConcurrencyConflict, RateLimitConflict
from quebec.enqueue import ConfiguredJob, JobHandle, PendingJob, check_priority, perform_all_later
from quebec.lifecycle import progress as run_progress
from quebec.strategies import DiscardStrategy, RescueStrategy, RetryStrategy, check_strategies
from quebec.unique import UniqueConflict, check_unique, default_key

if TYPE_CHECKING:
    from quebec.models import Batch, Job
    from quebec.registry import Quebec


class JobLogger(logging.LoggerAdapter[logging.Logger]):
    """``self.logger``: records carry the job's id, class, queue and attempt, and the message
    names the job. Read as each record is written: the id comes once the job is stored."""

    def __init__(self, logger: logging.Logger, job: "BaseClass") -> None:
        super().__init__(logger)
        self.job = job

    @property
    def context(self) -> dict[str, Any]:
        job = self.job
        return {
            "job_id": job.id,
            "job_class": type(job).__qualname__,
            "queue_name": job.queue_name,
            "attempt": job.executions,
        }

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, MutableMapping[str, Any]]:
        context = self.context
        kwargs["extra"] = {**kwargs.get("extra", {}), **context}
        job = f"{context['job_class']} #{context['job_id']} {context['queue_name']}, attempt {context['attempt']}"
        return f"[{job}] {msg}", kwargs


class BaseClass:
    """Base class of every job: subclass it and define ``perform``.

    Class attributes say how it is queued (``queue_as``, ``priority``, ``enqueue_after_commit``)
    and what happens when it raises (``retry_on``, ``discard_on``, ``rescue_from``, ``timeout``).
    The callback methods below do nothing unless overridden.
    """

    # A queue name, or a function of perform's arguments returning one.
    queue_as: ClassVar[str | Callable[..., str]] = "default"
    priority: int = 0  # the class's default; bind() sets the instance's own
    enqueue_after_commit: ClassVar[bool | None] = None  # None: follow the enqueue_after_commit setting
    retry_on: ClassVar[Sequence[RetryStrategy]] = []
    discard_on: ClassVar[Sequence[DiscardStrategy]] = []
    rescue_from: ClassVar[Sequence[RescueStrategy]] = []
    timeout: ClassVar[float | timedelta | None] = None  # seconds or timedelta
    # A generator method (yield once) or a method returning a context manager.
    around_perform: ClassVar[Callable[[Any], object] | None] = None
    # Limits (see quebec.concurrency).
    concurrency_limit: ClassVar[int | None] = None  # slots per key; 1 when concurrency_key is defined
    concurrency_duration: ClassVar[float | timedelta] = DEFAULT_DURATION  # a held slot's safety TTL
    concurrency_group: ClassVar[str | None] = None  # replaces the class name in the stored key
    concurrency_on_conflict: ClassVar[ConcurrencyConflict] = ConcurrencyConflict.Block
    rate_limit_max: ClassVar[int | None] = None
    rate_limit_duration: ClassVar[timedelta | None] = None  # at least one second
    rate_limit_on_throttle: ClassVar[RateLimitConflict] = RateLimitConflict.Reschedule
    exclusive: ClassVar[bool] = False  # run alone in its worker process
    # Unique jobs (see quebec.unique): setting unique_until makes a class unique.
    unique_until: ClassVar[Literal["finished", "started"] | None] = None  # when the key is given back
    unique_for: ClassVar[float | timedelta | None] = None  # the key is held at most this long
    unique_on_conflict: ClassVar[UniqueConflict] = UniqueConflict.Skip

    # The instance the class is bound to (unset until registered: quebec.default then).
    _quebec: ClassVar["Quebec"]

    # What perform and the callbacks see, set by bind().
    id: int | None
    active_job_id: uuid.UUID
    queue_name: str
    executions: int
    exception_executions: dict[str, int]
    arguments: tuple[list[Any], dict[str, Any]]
    enqueued_at: datetime | None
    scheduled_at: datetime | None
    # The keys as stored, set by build().
    stored_key: str | None
    stored_unique_key: str | None
    # The batch this job is a member of, or a callback of (set for a stored job).
    batch_id: int | None = None
    _batch_using: str = "default"
    _batch: "Batch | None" = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        check_strategies(cls)
        check_priority(cls.priority, cls.__qualname__)
        _check_positive(cls, "timeout", allow_none=True)
        _check_positive(cls, "concurrency_duration")
        _check_limits(cls)
        check_unique(cls)

    def concurrency_key(self, *args: Any, **kwargs: Any) -> object:
        """Jobs with the same key share ``concurrency_limit`` slots; None means no limit."""
        return None

    def rate_limit_key(self, *args: Any, **kwargs: Any) -> object:
        """The rate limit bucket of these arguments (default: one bucket for the class)."""
        return type(self).__qualname__

    @classmethod
    def stored_concurrency_key(cls, job: "BaseClass", args: Sequence[Any], kwargs: Mapping[str, Any]) -> str | None:
        key = job.concurrency_key(*args, **kwargs)
        return None if key is None else f"{cls.concurrency_group or cls.__qualname__}/{key}"

    def unique_key(self, *args: Any, **kwargs: Any) -> object:
        """Jobs with the same key are never queued twice (with ``unique_until`` set); None means
        this job is not unique. The default, the class name and the arguments, is given by
        ``stored_unique_key_for``."""
        return None

    @classmethod
    def stored_unique_key_for(
        cls, job: "BaseClass", args: Sequence[Any], kwargs: Mapping[str, Any], arguments: Any
    ) -> str | None:
        """``"ClassName/<key>"``, or None when the class (or this call) is not unique."""
        if cls.unique_until is None:
            return None
        if cls.unique_key is BaseClass.unique_key:
            return f"{cls.__qualname__}/{default_key(cls.__qualname__, arguments)}"
        key = job.unique_key(*args, **kwargs)
        return None if key is None else f"{cls.__qualname__}/{key}"

    def perform(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__qualname__} must define perform()")

    def before_enqueue(self) -> None:
        """Runs before the job is written; raise ``quebec.AbortEnqueue`` to skip it."""

    def after_enqueue(self) -> None:
        """Runs once the job is written (after commit, for jobs that enqueue after commit)."""

    def before_perform(self) -> None:
        """Runs in the worker before ``perform``."""

    def after_perform(self) -> None:
        """Runs in the worker after ``perform`` returned."""

    def after_discard(self, error: BaseException) -> None:
        """Runs when the job is dropped: discarded, or failed for good after its retries."""

    def progress(self, done: object, total: object = None, message: str | None = None) -> None:
        """Report how far the job got (``done`` of ``total``, JSON values); stored about once a
        second and shown on the job's page. Raises ``quebec.JobCancelled`` once the job was
        cancelled. Does nothing outside a worker (``perform_now``)."""
        context = run_progress.current()
        if context is not None:
            context.report(done, total, message)

    @property
    def batch(self) -> "Batch | None":
        """The batch this job is a member of, or the callback of (``quebec.Batch``, read at the
        first access; ``refresh()`` it for later counts); None for any other job."""
        if self.batch_id is None:
            return None
        if self._batch is None:
            from quebec.models import Batch

            self._batch = Batch.objects.using(self._batch_using).get(pk=self.batch_id)
        return self._batch

    @property
    def cancel_requested(self) -> bool:
        """Whether ``quebec.cancel()`` was asked for this running job (read at most once a second)."""
        context = run_progress.current()
        return context is not None and context.cancel_requested()

    @classmethod
    def job_name(cls) -> str:
        """The name stored in ``Job.class_name``: the dotted path workers look up among registered
        classes. A class of a script (``__main__``) keeps its bare name, which another process
        running the same jobs can match."""
        if cls.__module__ == "__main__":
            return cls.__qualname__
        return f"{cls.__module__}.{cls.__qualname__}"

    @classmethod
    def wants_enqueue_after_commit(cls) -> bool:
        if cls.enqueue_after_commit is None:
            return conf.get().enqueue_after_commit
        return cls.enqueue_after_commit

    @classmethod
    def set(
        cls,
        *,
        wait: float | timedelta | None = None,
        wait_until: datetime | None = None,
        queue: str | None = None,
        priority: int | None = None,
    ) -> ConfiguredJob:
        return ConfiguredJob(cls, wait=wait, wait_until=wait_until, queue=queue, priority=priority)

    @classmethod
    def perform_later(cls, *args: Any, **kwargs: Any) -> JobHandle:
        return cls.set().perform_later(*args, **kwargs)

    @classmethod
    def build(cls, *args: Any, **kwargs: Any) -> PendingJob:
        return cls.set().build(*args, **kwargs)

    @classmethod
    def perform_now(cls, *args: Any, **kwargs: Any) -> Any:
        """Run the job in the caller, with its callbacks and error handling; no row in the queue.

        Returns what ``perform`` returns. An error the class does not handle is raised; one it
        retries is enqueued to run later, as the worker would.
        """
        pending = cls.set().build(*args, **kwargs)
        job = pending.job
        job.executions = 1
        with tracing.running(cls.job_name(), job.queue_name, job.executions) as traced:
            outcome = execution.perform(job, *job.arguments)
            traced.ended(outcome)
            if outcome.state == execution.RETRY:  # the retry's enqueue is a child of this run
                job.scheduled_at = outcome.retry_at
                perform_all_later([pending])
        if outcome.state == execution.FAILED:
            raise outcome.error
        return outcome.result

    def bind(
        self,
        *,
        job_id: int | None,
        active_job_id: uuid.UUID,
        queue_name: str,
        priority: int,
        executions: int,
        arguments: tuple[list[Any], dict[str, Any]],
        enqueued_at: datetime | None,
        exception_executions: Mapping[str, int] | None = None,
    ) -> None:
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
        self.__dict__.pop("logger", None)

    @functools.cached_property
    def logger(self) -> JobLogger:
        """Records carry the job's id, class, queue and attempt, read as each line is written.
        Made on first use: most jobs built to be enqueued never log."""
        return JobLogger(logging.getLogger("quebec.job"), self)

    @classmethod
    def for_job(cls, job: "Job", args: list[Any], kwargs: dict[str, Any]) -> Self:
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
        instance.batch_id = batches.batch_of(job)
        instance._batch_using = job._state.db or "default"
        return instance


def _check_positive(cls: type[BaseClass], name: str, allow_none: bool = False) -> None:
    value = getattr(cls, name)
    seconds = value.total_seconds() if isinstance(value, timedelta) else value
    if seconds is None and allow_none:
        return
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds <= 0:
        raise TypeError(f"{cls.__qualname__}.{name} must be positive seconds or a timedelta, got {value!r}")


def _check_limits(cls: type[BaseClass]) -> None:
    """Refuse, at class definition, limits that cannot work."""
    name = cls.__qualname__
    if cls.concurrency_limit is not None:
        if (
            isinstance(cls.concurrency_limit, bool)
            or not isinstance(cls.concurrency_limit, int)
            or cls.concurrency_limit < 1
        ):
            raise TypeError(f"{name}.concurrency_limit must be a positive integer, got {cls.concurrency_limit!r}")
        if cls.concurrency_key is BaseClass.concurrency_key:
            raise TypeError(
                f"{name} sets concurrency_limit but no concurrency_key(self, *args, **kwargs); "
                "define it to say which jobs share the limit"
            )
    if not isinstance(cls.concurrency_on_conflict, ConcurrencyConflict):
        raise TypeError(f"{name}.concurrency_on_conflict must be quebec.ConcurrencyConflict.Block or .Discard")
    if not isinstance(cls.rate_limit_on_throttle, RateLimitConflict):
        raise TypeError(f"{name}.rate_limit_on_throttle must be quebec.RateLimitConflict.Reschedule or .Discard")
    if (cls.rate_limit_max is None) != (cls.rate_limit_duration is None):
        raise TypeError(f"{name} needs both rate_limit_max and rate_limit_duration, or neither")
    if cls.rate_limit_max is not None:
        if isinstance(cls.rate_limit_max, bool) or not isinstance(cls.rate_limit_max, int) or cls.rate_limit_max < 1:
            raise TypeError(f"{name}.rate_limit_max must be a positive integer, got {cls.rate_limit_max!r}")
        duration = cls.rate_limit_duration
        if not isinstance(duration, timedelta) or duration < timedelta(seconds=1):
            raise TypeError(
                f"{name}.rate_limit_duration must be a datetime.timedelta of at least one second, got {duration!r}"
            )
