"""Quebec as a backend of Django's Tasks framework (``django.tasks``).

    TASKS = {"default": {"BACKEND": "quebec.backends.QuebecBackend", "QUEUES": ["default"]}}

A ``@task`` function becomes a job like any other: ``enqueue()`` writes a ``Job`` row on the
caller's connection (inside the caller's transaction), Quebec's workers run it, and the
dashboard shows it. Each task gets a generated ``BaseClass`` subclass, named by the task's
module path, so retries, limits and timeouts work through the same machinery as for job classes.
That class is registered when the task is defined (Django validates every ``Task`` with its
backend as it is made), so workers find it without importing what a row names; Quebec's app
imports each installed app's ``tasks`` module at start, as it does ``jobs``.

Django orders tasks by ``priority`` from -100 to 100, larger first; Quebec runs smaller numbers
first, so a task's priority is stored negated. A ``TaskResult``'s id is the job's id.
"""

import dataclasses
import inspect
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, cast

from django.apps import apps
from django.conf import settings
from django.core import checks
from django.tasks import Task, TaskContext, TaskResult, TaskResultStatus
from django.tasks.backends.base import BaseTaskBackend
from django.tasks.base import TaskError
from django.tasks.exceptions import InvalidTask, TaskResultDoesNotExist
from django.tasks.signals import task_enqueued, task_finished, task_started
from django.utils import timezone
from django.utils.json import normalize_json

from quebec import queue_selectors, registry
from quebec.enqueue import MAX_QUEUE_NAME
from quebec.errors import describe_error
from quebec.base_class import BaseClass
from quebec.strategies import DiscardStrategy, RescueStrategy, RetryStrategy
from quebec.lifecycle import progress
from quebec.lifecycle.status import JobStatus

if TYPE_CHECKING:
    from quebec.enqueue import JobIdentity

OPTIONS = ("database",)

# Where each of Quebec's job states stands in Django's four.
STATUSES = {
    JobStatus.READY: TaskResultStatus.READY,
    JobStatus.SCHEDULED: TaskResultStatus.READY,
    JobStatus.BLOCKED: TaskResultStatus.READY,
    JobStatus.CLAIMED: TaskResultStatus.RUNNING,
    JobStatus.FINISHED: TaskResultStatus.SUCCESSFUL,
    JobStatus.FAILED: TaskResultStatus.FAILED,
    JobStatus.DISCARDED: TaskResultStatus.FAILED,
}


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class QuebecTask(Task):  # type: ignore[type-arg]  # Task is generic in django-stubs only
    """A ``Task`` that takes Quebec's job options as ``@task(...)`` keyword arguments.

    They mean what the ``BaseClass`` attributes of the same names mean; ``concurrency_key`` and
    ``rate_limit_key`` are a string or a function of the task's arguments, and so is
    ``unique_key``, which makes the task unique until it finishes unless ``unique_until`` says
    ``"started"``.
    """

    retry_on: tuple[RetryStrategy, ...] = ()
    discard_on: tuple[DiscardStrategy, ...] = ()
    rescue_from: tuple[RescueStrategy, ...] = ()
    timeout: float | None = None
    concurrency_key: object = None
    concurrency_limit: int | None = None
    concurrency_duration: float | None = None
    concurrency_on_conflict: object = None
    rate_limit_key: object = None
    rate_limit_max: int | None = None
    rate_limit_duration: object = None
    rate_limit_on_throttle: object = None
    exclusive: bool = False
    unique_key: object = None
    unique_until: str | None = None
    unique_for: object = None
    unique_on_conflict: object = None


class TaskJob(BaseClass):
    """Runs one ``django.tasks`` task; ``job_class_for`` makes a subclass per task function."""

    task: ClassVar["Task[..., Any]"] = None  # type: ignore[assignment]  # set on each generated subclass

    @classmethod
    def job_name(cls) -> str:
        return cls.task.module_path

    def perform(self, *args: Any, **kwargs: Any) -> Any:
        result = _started(self)
        try:
            value = self.task.call(*_context(self.task, result), *args, **kwargs)
            # Stored as JSON, as Django's other stores do; anything else fails the task.
            value = normalize_json(value)
        except BaseException as error:
            _finished(result, error=error)
            raise
        _finished(result, value=value)
        return value


class AsyncTaskJob(TaskJob):
    """The same for a coroutine task: awaited by the worker, so its timeout can cancel it."""

    async def perform(self, *args: Any, **kwargs: Any) -> Any:
        from asgiref.sync import sync_to_async

        result = await sync_to_async(_started)(self)
        try:
            value = normalize_json(await self.task.func(*_context(self.task, result), *args, **kwargs))
        except BaseException as error:
            _finished(result, error=error)
            raise
        _finished(result, value=value)
        return value


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class QuebecTaskContext(TaskContext):  # type: ignore[type-arg, misc]  # generic and not frozen in django-stubs only
    """``TaskContext`` with what Quebec's jobs have: ``progress()``, ``checkpoint()`` and
    ``cancel_requested`` (see ``BaseClass.progress``)."""

    def progress(self, done: object, total: object = None, message: str | None = None) -> None:
        """Report progress (stored about once a second); raises ``quebec.JobCancelled`` once
        the task was cancelled."""
        context = progress.current()
        if context is not None:
            context.report(done, total, message)

    def checkpoint(self) -> None:
        """Raise ``quebec.JobCancelled`` if the task was cancelled (checked about once a second)."""
        context = progress.current()
        if context is not None and context.cancel_requested():
            context.raise_if_cancelled()

    @property
    def cancel_requested(self) -> bool:
        context = progress.current()
        return context is not None and context.cancel_requested()


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class QuebecTaskResult(TaskResult):  # type: ignore[type-arg, misc]  # generic and not frozen in django-stubs only
    """``TaskResult`` with the last ``progress`` the task reported (a dict, or None)."""

    progress: dict[str, Any] | None = None


def _context(task: "Task[..., Any]", result: "TaskResult[..., Any]") -> tuple[QuebecTaskContext, ...]:
    return (QuebecTaskContext(task_result=result),) if task.takes_context else ()


def _started(job: TaskJob) -> "TaskResult[..., Any]":
    """The task's result as it starts (RUNNING, this attempt counted), announced by ``task_started``."""
    backend = job.task.get_backend()
    result = backend.get_result(str(job.id))
    task_started.send(sender=type(backend), task_result=result)
    return result


def _finished(result: "TaskResult[..., Any]", value: object = None, error: BaseException | None = None) -> None:
    now = timezone.now()
    object.__setattr__(result, "finished_at", now)
    if error is None:
        object.__setattr__(result, "status", TaskResultStatus.SUCCESSFUL)
        object.__setattr__(result, "_return_value", value)
    else:
        object.__setattr__(result, "status", TaskResultStatus.FAILED)
        described = describe_error(error)
        result.errors.append(
            TaskError(exception_class_path=described["exception_class"], traceback=described["backtrace"])
        )
    task_finished.send(sender=type(result.task.get_backend()), task_result=result)


_job_classes: dict[str, type[TaskJob]] = {}


def job_class_for(task: "Task[..., Any]") -> type[TaskJob]:
    """The ``BaseClass`` subclass that runs ``task``, made once per task function."""
    job_class = _job_classes.get(task.module_path)
    if job_class is not None and job_class.task.func is task.func:
        return job_class
    base = AsyncTaskJob if inspect.iscoroutinefunction(task.func) else TaskJob
    attributes = {"task": task, "__module__": task.func.__module__, "__qualname__": task.module_path}
    options = _quebec_options(task)
    for name in ("retry_on", "discard_on", "rescue_from"):
        if options.get(name):
            attributes[name] = list(options[name])
    for name in (
        "timeout",
        "concurrency_limit",
        "concurrency_duration",
        "concurrency_on_conflict",
        "rate_limit_max",
        "rate_limit_duration",
        "rate_limit_on_throttle",
        "exclusive",
        "unique_until",
        "unique_for",
        "unique_on_conflict",
    ):
        if options.get(name) is not None:
            attributes[name] = options[name]
    for name in ("concurrency_key", "rate_limit_key", "unique_key"):
        if options.get(name) is not None:
            attributes[name] = _key_method(options[name])
    if "concurrency_key" in attributes and "concurrency_limit" not in attributes:
        attributes["concurrency_limit"] = 1
    if "unique_key" in attributes and "unique_until" not in attributes:
        attributes["unique_until"] = "finished"
    try:
        job_class = cast(type[TaskJob], type(task.func.__name__, (base,), attributes))
    except TypeError as error:
        raise InvalidTask(f"{task.module_path}: {error}") from None
    _job_classes[task.module_path] = job_class
    registry.task_jobs[job_class.job_name()] = job_class
    return job_class


def _quebec_options(task: "Task[..., Any]") -> dict[str, Any]:
    """The options ``@task(...)`` was given beyond Django's own."""
    if not isinstance(task, QuebecTask):
        return {}
    django_fields = {field.name for field in dataclasses.fields(Task)}
    return {
        field.name: getattr(task, field.name)
        for field in dataclasses.fields(QuebecTask)
        if field.name not in django_fields
    }


def _key_method(key: object) -> Callable[..., object]:
    if callable(key):
        return lambda self, *args, **kwargs: key(*args, **kwargs)
    return lambda self, *args, **kwargs: key


class QuebecBackend(BaseTaskBackend):
    task_class = QuebecTask
    supports_defer = True
    supports_async_task = True
    supports_get_result = True
    supports_priority = True

    def __init__(self, alias: str, params: dict[str, Any]) -> None:
        super().__init__(alias, params)
        self.using = self.options.get("database", "default")

    def validate_task(self, task: "Task[..., Any]") -> None:
        super().validate_task(task)
        job_class_for(task)  # refuses options that cannot work, when the task is defined

    def enqueue(self, task: "Task[..., Any]", args: list[Any], kwargs: dict[str, Any]) -> QuebecTaskResult:
        from quebec.enqueue import enqueue_now

        self.validate_task(task)
        # Django's tasks take JSON arguments; refuse anything else here, not in the worker.
        args = cast(list[Any], normalize_json(list(args)))
        kwargs = cast(dict[str, Any], normalize_json(dict(kwargs)))
        configured = job_class_for(task).set(queue=task.queue_name, priority=-task.priority, wait_until=task.run_after)
        (handle,) = enqueue_now([configured.build(*args, **kwargs)], self.using)
        if handle.duplicate:
            # Nothing was enqueued: the result is the holder's, and task_enqueued is not sent.
            return self.get_result(str(handle.id))
        job = cast("JobIdentity", handle._job)  # written: not a duplicate
        result = QuebecTaskResult(
            task=task,
            id=str(job.id),
            status=TaskResultStatus.READY,
            enqueued_at=job.created_at,
            started_at=None,
            finished_at=None,
            last_attempted_at=None,
            args=args,
            kwargs=kwargs,
            backend=self.alias,
            errors=[],
            worker_ids=[],
        )
        task_enqueued.send(sender=type(self), task_result=result)
        return result

    def get_result(self, result_id: str) -> QuebecTaskResult:
        from quebec.models import ClaimedExecution, Job
        from quebec.serialization import deserialize_arguments

        try:
            pk = int(result_id)
        except (TypeError, ValueError):
            raise TaskResultDoesNotExist(result_id) from None
        fields = (
            "class_name",
            "queue_name",
            "priority",
            "arguments",
            "attempts",
            "return_value",
            "created_at",
            "scheduled_at",
            "finished_at",
            "discarded_at",
            "status",
            "progress",
        )
        row = Job.objects.using(self.using).with_status().filter(pk=pk).values(*fields).first()
        if row is None:
            raise TaskResultDoesNotExist(result_id)
        task = self._task(row, result_id)
        status = STATUSES.get(row["status"], TaskResultStatus.READY)
        attempts = row["attempts"] or []
        worker_ids = [attempt["process"] for attempt in attempts]
        claimed_at = None
        if status == TaskResultStatus.RUNNING:
            claims = ClaimedExecution.objects.using(self.using).filter(job_id=pk).values("created_at", "process__name")
            claim = claims.first()
            if claim is not None:
                claimed_at = claim["created_at"]
                worker_ids.append(claim["process__name"] or "")
        args, kwargs = deserialize_arguments(row["arguments"])
        result = QuebecTaskResult(
            progress=row["progress"],
            task=task,
            id=str(pk),
            status=status,
            enqueued_at=row["created_at"],
            started_at=_parse(attempts[0]["started_at"]) if attempts else claimed_at,
            finished_at=self._finished_at(status, row, attempts),
            last_attempted_at=claimed_at or (_parse(attempts[-1]["started_at"]) if attempts else None),
            args=args,
            kwargs=kwargs,
            backend=self.alias,
            errors=[
                TaskError(
                    exception_class_path=attempt["error"]["exception_class"], traceback=attempt["error"]["backtrace"]
                )
                for attempt in attempts
                if "error" in attempt
            ],
            worker_ids=worker_ids,
        )
        if status == TaskResultStatus.SUCCESSFUL:
            object.__setattr__(result, "_return_value", row["return_value"])
        return result

    def _task(self, row: dict[str, Any], result_id: str) -> "Task[..., Any]":
        # Only among the tasks this process has defined: a row never makes Quebec import code.
        try:
            job_class = registry.find_job_class(row["class_name"])
        except registry.UnknownJobClass as error:
            raise TaskResultDoesNotExist(f"job {result_id}: {error}") from None
        if not issubclass(job_class, TaskJob):
            raise TaskResultDoesNotExist(f"job {result_id} ({row['class_name']}) is not a task")
        task = job_class.task
        # The options it was enqueued with; run_after is not kept apart from a retry's time.
        task = task.using(priority=max(-100, min(100, -row["priority"])), backend=self.alias)
        try:
            return task.using(queue_name=row["queue_name"])
        except InvalidTask:
            # Stored on a queue the backend does not list (QUEBEC_FORCE_OVERRIDE_QUEUE, or QUEUES
            # changed since): the result is still readable, under the task's declared queue.
            return task

    @staticmethod
    def _finished_at(status: TaskResultStatus, row: dict[str, Any], attempts: list[dict[str, Any]]) -> datetime | None:
        if status == TaskResultStatus.SUCCESSFUL:
            return cast(datetime | None, row["finished_at"])
        if status == TaskResultStatus.FAILED:
            return row["discarded_at"] or (_parse(attempts[-1]["finished_at"]) if attempts else None)
        return None

    def check(self, **kwargs: Any) -> list[checks.CheckMessage]:
        messages: list[checks.CheckMessage] = []
        if not apps.is_installed("quebec"):
            messages.append(
                checks.Error(
                    f"TASKS[{self.alias!r}] uses quebec.backends.QuebecBackend, but 'quebec' is not in INSTALLED_APPS",
                    hint="Add 'quebec' to INSTALLED_APPS and run migrate.",
                    id="quebec.E003",
                )
            )
        unknown = sorted(set(self.options) - set(OPTIONS))
        if unknown:
            messages.append(
                checks.Error(
                    f"TASKS[{self.alias!r}]['OPTIONS'] has unknown key(s) {', '.join(map(repr, unknown))}; "
                    f"QuebecBackend takes {', '.join(map(repr, OPTIONS))}",
                    id="quebec.E004",
                )
            )
        if self.using not in settings.DATABASES:
            messages.append(
                checks.Error(
                    f"TASKS[{self.alias!r}]['OPTIONS']['database'] is {self.using!r}, which is not in DATABASES",
                    id="quebec.E004",
                )
            )
        messages += self._check_queues()
        return messages

    def _check_queues(self) -> list[checks.CheckMessage]:
        from quebec import conf

        bad = [q for q in self.queues if not isinstance(q, str) or not q or len(q) > MAX_QUEUE_NAME]
        if bad:
            return [
                checks.Error(
                    f"TASKS[{self.alias!r}]['QUEUES'] has invalid queue name(s) {bad!r}: each must be a non-empty "
                    f"string of at most {MAX_QUEUE_NAME} characters",
                    id="quebec.E005",
                )
            ]
        try:
            settings_ = conf.get()
        except conf.ConfigError:
            return []  # reported by quebec.E001
        messages: list[checks.CheckMessage] = []
        selectors = [selector for worker in settings_.workers for selector in worker.queues]
        unserved = sorted(
            q for q in self.queues if not any(queue_selectors.matches(selector, q) for selector in selectors)
        )
        if unserved:
            messages.append(
                checks.Warning(
                    f"TASKS[{self.alias!r}]['QUEUES'] has queue(s) no configured worker reads: {', '.join(unserved)}",
                    hint="Add them to a worker's queues in QUEBEC / queue.yml, or use '*'.",
                    id="quebec.W002",
                )
            )
        if not settings_.preserve_finished_jobs:
            messages.append(
                checks.Warning(
                    "preserve_finished_jobs is off, so a task's row is deleted when it succeeds and get_result() "
                    "cannot find it afterwards",
                    id="quebec.W003",
                )
            )
        return messages


def _parse(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None
