"""Recurring tasks: reading them from configuration or code, and enqueueing one run.

Static tasks come from ``recurring.yml`` (``QUEBEC_RECURRING_SCHEDULE``, ``./recurring.yml`` or
``./config/recurring.yml``, flat or keyed by ``QUEBEC_ENV``) and ``QUEBEC["recurring"]``; the
scheduler keeps the table in step with them. Dynamic tasks are added from code with
``schedule_recurring_task`` and kept until ``unschedule_recurring_task``.

A task's ``command`` runs only a callable the application allowed: one registered with
``@quebec.command``, or one the static configuration names. A row or a job argument naming any
other callable fails, and nothing is imported for it.
"""

import difflib
import inspect
import os
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from django.db import IntegrityError
from django.utils import timezone
from django.utils.module_loading import import_string

from quebec import conf
from quebec.conf import ConfigError, find_file, read_yaml_section
from quebec.db import write_transaction
from quebec.enqueue import check_priority, enqueue_now
from quebec.schedule import ScheduleError, parse
from quebec.serialization import deserialize_arguments, serialize_arguments

if TYPE_CHECKING:
    from quebec.base_class import BaseClass
    from quebec.conf import Config
    from quebec.enqueue import PendingJob
    from quebec.models import RecurringExecution, RecurringTask

FILE_LOOKUP = ("recurring.yml", "config/recurring.yml")
TASK_KEYS = {"class", "command", "args", "kwargs", "schedule", "queue", "priority", "description", "catch_up"}

_commands: dict[str, Callable[..., object]] = {}  # dotted path -> callable registered with @quebec.command


class UnknownCommand(LookupError):
    """A recurring ``command`` names a callable the application did not allow."""


def command[F: Callable[..., object]](function: F) -> F:
    """Allow ``function`` as a recurring task's ``command``, under its dotted path; a decorator.

    Define it in a module every process imports, such as an installed app's ``jobs`` module.
    """
    if not callable(function):
        raise TypeError(f"quebec.command takes a callable, got {function!r}")
    _commands[_callable_path(function)] = function
    return function


def _callable_path(function: Callable[..., object]) -> str:
    return f"{function.__module__}.{function.__qualname__}"


def find_command(path: object) -> Callable[..., Any]:
    """The callable a recurring ``command`` names; raises ``UnknownCommand`` for any other."""
    if isinstance(path, str) and path in _commands:
        return _commands[path]
    if isinstance(path, str) and path in static_commands():
        found: Callable[..., Any] = import_string(path)  # named by the application's own configuration
        return found
    raise UnknownCommand(
        f"recurring command {path!r} is not allowed: it is neither registered with @quebec.command nor "
        "named in the static recurring configuration (recurring.yml or QUEBEC['recurring']), and "
        "Quebec runs no other callable a row or a job argument names"
    )


def static_commands() -> set[str]:
    """The ``command`` paths of the static recurring configuration."""
    return {fields["command"] for fields in load_static_tasks(conf.get()).values() if fields["command"]}


def task_fields(key: object, entry: object, static: bool = True) -> dict[str, Any]:
    """The ``RecurringTask`` columns for one task definition; raises ValueError saying what is wrong.

    A ``static`` definition comes from configuration, whose commands are allowed by being named
    there; a dynamic one (from code, kept in the table) may only name an allowed command.
    """
    if not isinstance(entry, dict):
        raise ValueError(f"must be a mapping with a schedule and a class or command, got {entry!r}")
    for option in entry:
        if option not in TASK_KEYS:
            raise ValueError(_unknown_option(option))
    if ("class" in entry) == ("command" in entry):
        raise ValueError("needs exactly one of 'class' (a job class) or 'command' (a callable)")
    schedule = entry.get("schedule")
    try:
        parse(schedule)
    except ScheduleError as error:
        raise ValueError(f"schedule {schedule!r}: {error}") from None
    args, kwargs = entry.get("args", []), entry.get("kwargs", {})
    if not isinstance(args, (list, tuple)) or not isinstance(kwargs, dict):
        raise ValueError("args must be a list and kwargs a mapping")
    priority = entry.get("priority")
    if priority is not None:
        check_priority(priority, "priority")
    return {
        "schedule": schedule,
        "class_name": _job_class_path(entry["class"]) if "class" in entry else "",
        "command": _command_path(entry["command"], static) if "command" in entry else "",
        "arguments": serialize_arguments(args, kwargs),
        "queue_name": entry.get("queue") or "",
        "priority": priority,
        "description": entry.get("description") or "",
        "catch_up": bool(entry.get("catch_up", False)),
    }


def _unknown_option(option: object) -> str:
    close = difflib.get_close_matches(str(option), TASK_KEYS, n=1)
    hint = f"did you mean {close[0]!r}?" if close else f"the options are {', '.join(sorted(TASK_KEYS))}"
    return f"unknown option {option!r}; {hint}"


def _job_class_path(value: "str | type[BaseClass]") -> str:
    from quebec.base_class import BaseClass

    job_class = value if inspect.isclass(value) else _import(value, "class")
    if not (inspect.isclass(job_class) and issubclass(job_class, BaseClass)):
        raise ValueError(f"class {value!r} is not a quebec.BaseClass subclass")
    return job_class.job_name()


def _command_path(value: Any, static: bool) -> str:  # a dotted path, or (from code) a callable
    if static:
        if not callable(_import(value, "command")):
            raise ValueError(f"command {value!r} is not callable")
        return str(value)  # a dotted path: import_string took it
    path = _callable_path(value) if callable(value) else value
    try:
        find_command(path)
    except UnknownCommand as error:
        raise ValueError(f"{error}; decorate it with @quebec.command") from None
    return path


def _import(path: str, what: str) -> Any:
    try:
        return import_string(path)
    except (ImportError, TypeError):
        raise ValueError(
            f"{what} {path!r} cannot be imported (use a dotted path like 'myapp.jobs.CleanupJob')"
        ) from None


def load_static_tasks(config: "Config") -> dict[str, dict[str, Any]]:
    """Every configured task, validated: key -> ``RecurringTask`` columns. Raises ``ConfigError``."""
    sources = [("settings.QUEBEC['recurring']", config.recurring)]
    path = find_schedule_file()
    if path is not None:
        sources.append(_read_file(path))
    tasks = {}
    for source, entries in sources:
        if not isinstance(entries, dict):
            raise ConfigError(f"{source}: must be a mapping of task keys to tasks, got {entries!r}")
        for key, entry in entries.items():
            try:
                tasks[str(key)] = task_fields(key, entry)
            except (ValueError, TypeError) as error:
                raise ConfigError(f"{source}: recurring task {key!r}: {error}") from None
    return tasks


def find_schedule_file() -> Path | None:
    return find_file(os.environ.get("QUEBEC_RECURRING_SCHEDULE"), FILE_LOOKUP, "recurring schedule file")


def is_flat_schedule(document: dict[Any, Any]) -> bool:
    """Whether a recurring.yml document is tasks, rather than sections keyed by environment.

    Sections hold tasks, which are mappings; a task's own options are mostly not. So a task with
    a misspelt option (``schedul:``) is still read as a task and fails naming the option.
    """
    return not all(
        isinstance(section, dict | None) and all(isinstance(task, dict | None) for task in (section or {}).values())
        for section in document.values()
    )


def _read_file(path: Path) -> tuple[str, Any]:
    # A file with no section for this environment has no tasks here (development need not run
    # production's cron); the configuration checks warn about it.
    document, source = read_yaml_section(path, is_flat_schedule)
    return source, document


def enqueue_run(task: "RecurringTask", run_at: datetime) -> "RecurringExecution | None":
    """Enqueue ``task``'s run at ``run_at`` once across every scheduler; None if it already was."""
    from quebec.models import RecurringExecution

    using = cast(str, task._state.db)  # a task read from the database knows which
    pending = build_job(task)
    try:
        with write_transaction(using):
            # The unique (task_key, run_at) row is taken first: a second scheduler fails here
            # and its whole transaction, job included, rolls back.
            execution: RecurringExecution = RecurringExecution.objects.using(using).create(
                task_key=task.key, run_at=run_at
            )
            [handle] = enqueue_now([pending], using)
            if handle.id is not None:
                execution.job_id = handle.id
                execution.save(update_fields=["job"])
    except IntegrityError:
        return None
    return execution


def build_job(task: "RecurringTask") -> "PendingJob":
    from quebec.jobs import RecurringCommandJob
    from quebec.registry import find_job_class

    args, kwargs = deserialize_arguments(task.arguments)
    options: dict[str, Any] = {"queue": task.queue_name or None, "priority": task.priority}
    if task.command:
        # Checked again when the job runs; the worker is where it matters.
        return RecurringCommandJob.set(**options).build(task.command, args, kwargs)
    return find_job_class(task.class_name).set(**options).build(*args, **kwargs)


def schedule_recurring_task(
    key: str,
    *,
    schedule: str,
    job_class: "str | type[BaseClass] | None" = None,
    command: str | Callable[..., object] | None = None,
    args: Iterable[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
    queue: str | None = None,
    priority: int | None = None,
    description: str = "",
    catch_up: bool = False,
    using: str | None = None,
) -> "RecurringTask":
    """Add or change a task from code; it is kept across restarts until unscheduled.

    ``job_class`` is a class or its dotted path; ``command`` a callable registered with
    ``@quebec.command`` (or named in the static configuration), or its dotted path. ``using``:
    the database alias whose scheduler runs it (default: that of ``quebec.routing.use()``, else
    the default database).
    """
    from quebec.models import RecurringTask

    entry: dict[str, Any] = {
        "schedule": schedule,
        "args": list(args),
        "kwargs": kwargs or {},
        "queue": queue,
        "priority": priority,
        "description": description,
        "catch_up": catch_up,
    }
    entry.update({"class": job_class} if job_class is not None else {"command": command} if command else {})
    try:
        fields = task_fields(key, entry, static=False)
    except (ValueError, TypeError) as error:
        raise ValueError(f"recurring task {key!r}: {error}") from None
    if RecurringTask.objects.db_manager(using).filter(key=key, static=True).exists():
        raise ValueError(f"recurring task {key!r} comes from configuration; change it there")
    defaults = {**fields, "static": False, "updated_at": timezone.now()}
    task: RecurringTask
    task, _ = RecurringTask.objects.db_manager(using).update_or_create(key=key, defaults=defaults)
    _wake_local_schedulers()
    return task


def _wake_local_schedulers() -> None:
    # Schedulers in other processes see the change within their longest sleep (five seconds).
    from quebec.processes.scheduler import Scheduler

    Scheduler.wake_all()


def unschedule_recurring_task(key: str, using: str | None = None) -> bool:
    """Remove a task added with ``schedule_recurring_task``; returns whether there was one."""
    from quebec.models import RecurringTask

    if RecurringTask.objects.db_manager(using).filter(key=key, static=True).exists():
        raise ValueError(f"recurring task {key!r} comes from configuration; remove it there")
    removed = RecurringTask.objects.db_manager(using).filter(key=key, static=False).delete()[0] > 0
    _wake_local_schedulers()
    return removed
