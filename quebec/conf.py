"""Quebec's settings: one frozen, validated config object.

Sources, each overriding the one before: built-in defaults, the ``QUEBEC`` dict in Django
settings, ``queue.yml`` (``QUEBEC_CONFIG``, ``./queue.yml`` or ``./config/queue.yml``, keyed by
``QUEBEC_ENV`` or flat), and ``QUEBEC_<KEY>`` environment variables.
"""

import dataclasses
import difflib
import os
from collections.abc import Callable, Iterable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver

from quebec.settings_values import (
    _alias_map,
    _bool,
    _bool_or_auto,
    _death_policy,
    _log_format,
    _mapping,
    _non_negative_int,
    _optional_positive_int,
    _switch_interval,
    _override_queue,
    _polling_interval,
    _positive_duration,
    _positive_int,
    _queue_limits,
    optional_queues,
    parse_duration,
    parse_queues,
    sanitize_queue_name,  # noqa: F401  (part of this module's interface)
)

CONFIG_LOOKUP = ("queue.yml", "config/queue.yml")
ALIASES = {"experimental_queue_concurrency": "queue_concurrency"}


class ConfigError(ImproperlyConfigured):
    """A setting has a wrong name or value; the message names the key and where it came from."""


SETTINGS: dict[str, tuple[Any, Callable[[Any], Any]]] = {
    # key: (default, parser)
    "worker_threads": (3, _positive_int),
    "worker_polling_interval": (0.1, _polling_interval),
    "worker_claim_ahead": (40, _non_negative_int),
    "worker_switch_interval": (None, _switch_interval),
    "dispatcher_polling_interval": (1.0, _polling_interval),
    "dispatcher_batch_size": (500, _positive_int),
    "dispatcher_concurrency_maintenance_interval": (600.0, _positive_duration),
    "process_heartbeat_interval": (60.0, _positive_duration),
    "process_alive_threshold": (300.0, _positive_duration),
    "shutdown_timeout": (5.0, parse_duration),
    "preserve_finished_jobs": (True, _bool),
    "clear_finished_jobs_after": (86400.0, parse_duration),
    "use_skip_locked": (True, _bool),
    "use_listen_notify": (True, _bool),
    "listen_databases": ({}, _alias_map),
    "prepared_statements": ("auto", _bool_or_auto),
    "quiet_then_exit": (False, _bool),
    "force_override_queue": (None, _override_queue),
    "queue_concurrency": ({}, _queue_limits),
    "worker_max_rss_mb": (None, _optional_positive_int),
    "worker_memory_recycle_confirmations": (3, _positive_int),
    "worker_memory_check_interval": (5.0, _positive_duration),
    "enqueue_after_commit": (False, _bool),
    "max_arguments_bytes": (1024 * 1024, _positive_int),
    "recurring": ({}, _mapping),
    "on_process_death": ("fail", _death_policy),
    "monitoring_token": (None, lambda value: str(value) if value not in (None, "") else None),
    "dashboard_debug": (False, _bool),
    "log_format": ("text", _log_format),  # of quebec_run's own output (quebec/logger.py)
    # Rollups per minute, queue and class (quebec.models.stats), and how long they are kept.
    "stats": (True, _bool),
    "stats_retention": (14 * 86400.0, _positive_duration),
    # The queues of the one worker group, for when queue.yml would hold only that.
    "queues": (None, optional_queues),
}
PROCESS_LISTS = ("workers", "dispatchers")


@dataclasses.dataclass(frozen=True)
class WorkerConfig:
    queues: tuple[str, ...] = ("*",)
    threads: int = 3
    polling_interval: float = 0.1
    processes: int = 1


@dataclasses.dataclass(frozen=True)
class DispatcherConfig:
    polling_interval: float = 1.0
    batch_size: int = 500
    concurrency_maintenance_interval: float = 600.0
    processes: int = 1


PROCESS_FIELDS = {
    "workers": {
        "queues": parse_queues,
        "threads": _positive_int,
        "polling_interval": _polling_interval,
        "processes": _positive_int,
    },
    "dispatchers": {
        "polling_interval": _polling_interval,
        "batch_size": _positive_int,
        "concurrency_maintenance_interval": _positive_duration,
        "processes": _positive_int,
    },
}


@dataclasses.dataclass(frozen=True)
class Config:
    workers: tuple[WorkerConfig, ...]
    dispatchers: tuple[DispatcherConfig, ...]
    config_file: str | None = None
    worker_threads: int = 3
    worker_polling_interval: float = 0.1
    worker_claim_ahead: int = 40
    # How long a thread of a process running workers keeps the GIL while others wait for it
    # (``sys.setswitchinterval``): seconds, or None for Python's 5 ms. See quebec.processes.runner.
    worker_switch_interval: float | None = None
    dispatcher_polling_interval: float = 1.0
    dispatcher_batch_size: int = 500
    dispatcher_concurrency_maintenance_interval: float = 600.0
    process_heartbeat_interval: float = 60.0
    process_alive_threshold: float = 300.0
    shutdown_timeout: float = 5.0
    preserve_finished_jobs: bool = True
    clear_finished_jobs_after: float = 86400.0
    use_skip_locked: bool = True
    use_listen_notify: bool = True
    # Quebec's alias -> the alias a worker LISTENs on: a direct connection beside a pooled one.
    listen_databases: dict[str, str] = dataclasses.field(default_factory=dict)
    prepared_statements: bool | str = "auto"  # True, False or "auto": see quebec.db.postgresql
    quiet_then_exit: bool = False
    force_override_queue: str | None = None
    queue_concurrency: dict[str, int] = dataclasses.field(default_factory=dict)
    worker_max_rss_mb: int | None = None
    worker_memory_recycle_confirmations: int = 3
    worker_memory_check_interval: float = 5.0
    enqueue_after_commit: bool = False
    max_arguments_bytes: int = 1024 * 1024
    recurring: dict[str, Any] = dataclasses.field(default_factory=dict)
    on_process_death: str = "fail"
    monitoring_token: str | None = dataclasses.field(default=None, repr=False)  # a secret: kept out of reprs
    dashboard_debug: bool = False
    log_format: str = "text"
    stats: bool = True
    stats_retention: float = 14 * 86400.0
    queues: tuple[str, ...] | None = None


def _unknown_key(key: Any, source: str, known: Iterable[str]) -> ConfigError:
    close = difflib.get_close_matches(key, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return ConfigError(f"{source}: unknown key {key!r}{hint}")


def _parse(key: str, value: Any, parser: Callable[[Any], Any], source: str) -> Any:
    try:
        return parser(value)
    except (ValueError, TypeError) as error:
        raise ConfigError(f"{source}: {key} {error}, got {value!r}") from None


def _merge_settings(values: dict[str, Any], origins: dict[str, str], raw: object, source: str) -> None:
    """Validate the keys of one source and merge them into ``values``, noting where each came from."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: must be a mapping of setting names to values")
    for key, value in raw.items():
        key = ALIASES.get(key, key)
        if key in PROCESS_LISTS:
            values[key] = _parse_process_list(key, value, source)
        elif key in SETTINGS:
            values[key] = _parse(key, value, SETTINGS[key][1], source)
        else:
            raise _unknown_key(key, source, [*SETTINGS, *PROCESS_LISTS, *ALIASES])
        origins[key] = f"from {source}"


def _parse_process_list(kind: str, entries: object, source: str) -> list[dict[str, Any]]:
    if isinstance(entries, dict):
        entries = [entries]
    if not isinstance(entries, list):
        raise ConfigError(f"{source}: {kind} must be a list of mappings")
    fields = PROCESS_FIELDS[kind]
    parsed = []
    for index, entry in enumerate(entries):
        where = f"{source}: {kind}[{index}]"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where} must be a mapping, got {entry!r}")
        for key in entry:
            if key not in fields:
                raise _unknown_key(key, where, fields)
        parsed.append({key: _parse(key, value, fields[key], where) for key, value in entry.items()})
    return parsed


def find_file(explicit: str | os.PathLike[str] | None, lookup: Iterable[str], what: str) -> Path | None:
    """``explicit`` if given (it must exist), else the first of ``lookup`` that exists, else None."""
    if explicit:
        if not Path(explicit).is_file():
            raise ConfigError(f"{what} {explicit} does not exist")
        return Path(explicit)
    return next((Path(name) for name in lookup if Path(name).is_file()), None)


def current_environment() -> str:
    return os.environ.get("QUEBEC_ENV", "development")


def _read_yaml(path: Path) -> dict[Any, Any]:
    try:
        document = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: invalid YAML: {error}") from None
    if not isinstance(document, dict):
        raise ConfigError(f"{path}: must be a mapping at the top level")
    return document


def read_yaml_section(path: Path, is_flat: Callable[[dict[Any, Any]], bool]) -> tuple[Any, str]:
    """The part of a YAML file that applies here, and a description of where it came from.

    A flat file (``is_flat(document)``) applies whole; otherwise its section named by
    ``QUEBEC_ENV`` (default development) does, and a file without that section gives nothing
    (``missing_environment_section`` says so, as a warning).
    """
    document = _read_yaml(path)
    if not document or is_flat(document):
        return document, str(path)
    environment = current_environment()
    return document.get(environment) or {}, f"{path} (environment {environment!r})"


def missing_environment_section(path: Path, is_flat: Callable[[dict[Any, Any]], bool]) -> str | None:
    """What to warn about when ``path`` is keyed by environments and lacks this one, else None."""
    document = _read_yaml(path)
    environment = current_environment()
    if not document or is_flat(document) or environment in document:
        return None
    found = ", ".join(repr(str(name)) for name in document)
    return f"{path} has no section for environment {environment!r} (QUEBEC_ENV); its sections are {found}"


def find_config_file(path: str | os.PathLike[str] | None = None) -> Path | None:
    """The queue.yml to read: ``path``, else ``QUEBEC_CONFIG``, else the usual places."""
    return find_file(path or os.environ.get("QUEBEC_CONFIG"), CONFIG_LOOKUP, "queue config file")


def is_flat_config(document: dict[Any, Any]) -> bool:
    """Whether a queue.yml document is settings, rather than sections keyed by environment.

    It is keyed by environment only when every value is a mapping and no key is, or looks like a
    misspelling of, a setting: a flat file with a misspelt key then fails naming the key instead
    of passing for another environment's section.
    """
    known = [*SETTINGS, *PROCESS_LISTS, *ALIASES]
    return any(
        not isinstance(value, dict | None) or difflib.get_close_matches(str(key), known, n=1)
        for key, value in document.items()
    )


def _environment_settings() -> dict[str, str]:
    prefix = "QUEBEC_"
    raw = {}
    for name, value in os.environ.items():
        key = name[len(prefix) :].lower()
        if name.startswith(prefix) and ALIASES.get(key, key) in SETTINGS:
            raw[key] = value
    return raw


def _process_configs(values: dict[str, Any]) -> tuple[tuple[WorkerConfig, ...], tuple[DispatcherConfig, ...]]:
    """Worker and dispatcher entries, filled from the flat settings where they are silent."""
    worker_defaults = {
        "threads": values["worker_threads"],
        "polling_interval": values["worker_polling_interval"],
        **({"queues": values["queues"]} if values["queues"] else {}),
    }
    dispatcher_defaults = {
        "polling_interval": values["dispatcher_polling_interval"],
        "batch_size": values["dispatcher_batch_size"],
        "concurrency_maintenance_interval": values["dispatcher_concurrency_maintenance_interval"],
    }
    workers = [{**worker_defaults, **entry} for entry in values.get("workers") or [{}]]
    dispatchers = [{**dispatcher_defaults, **e} for e in values.get("dispatchers") or [{}]]
    if values["force_override_queue"]:
        workers = [{**entry, "queues": (values["force_override_queue"],)} for entry in workers]
    return (
        tuple(WorkerConfig(**entry) for entry in workers),
        tuple(DispatcherConfig(**entry) for entry in dispatchers),
    )


# The longest the scheduler sleeps between looks at its tasks (MAX_SLEEP in
# processes/scheduler.py; a test keeps the two equal). It heartbeats only when it wakes.
SCHEDULER_LONGEST_SLEEP = 5.0


def _pauses_between_polls(values: dict[str, Any], origins: dict[str, str]) -> Iterator[tuple[float, str]]:
    """(seconds, description) of the longest pause of every kind of process between two polls."""
    for kind, flat in (("workers", "worker_polling_interval"), ("dispatchers", "dispatcher_polling_interval")):
        for index, entry in enumerate(values.get(kind) or [{}]):
            if "polling_interval" in entry:
                name, seconds, origin = f"{kind}[{index}].polling_interval", entry["polling_interval"], origins[kind]
            else:
                name, seconds, origin = flat, values[flat], origins[flat]
            yield seconds, f"{name}, {seconds:g}s, {origin}"
    yield SCHEDULER_LONGEST_SLEEP, f"the scheduler's, {SCHEDULER_LONGEST_SLEEP:g}s"


def _check_alive_threshold(values: dict[str, Any], origins: dict[str, str]) -> None:
    """Refuse an alive threshold that could get a live process pruned.

    A process heartbeats between polls, so its beats are up to one heartbeat interval plus its
    longest pause between polls apart. The threshold must be at least twice that, so that a
    process whose heartbeat is late or fails once (a slow or briefly unreachable database) is
    not presumed dead, its running jobs failed with ProcessPrunedError and the process stopped.
    """
    heartbeat, threshold = values["process_heartbeat_interval"], values["process_alive_threshold"]
    pause, pause_description = max(_pauses_between_polls(values, origins))
    needed = 2 * (heartbeat + pause)
    if threshold < needed:
        raise ConfigError(
            f"process_alive_threshold ({threshold:g}s, {origins['process_alive_threshold']}) must be at least "
            f"{needed:g}s: twice process_heartbeat_interval ({heartbeat:g}s, {origins['process_heartbeat_interval']}) "
            f"plus the longest pause between polls ({pause_description}), so that one late or failed heartbeat "
            "does not get a live process pruned. Raise process_alive_threshold or lower process_heartbeat_interval."
        )


def _override_worker_fields(values: dict[str, Any], origins: dict[str, str], overridden: set[str]) -> None:
    """Settings given in the environment or on the command line (``overridden``) win over
    queue.yml for every worker entry: the entries drop their own value and take the flat one.

    ``queues`` names the queues of one worker group; overriding several groups' queues with one
    list would make them all read the same queues, which is refused.
    """
    workers = values.get("workers") or []
    if "queues" in overridden and len(workers) > 1:
        raise ConfigError(
            f"queues ({','.join(values['queues'])}, {origins['queues']}) sets the queues of one worker group, "
            f"but workers ({origins['workers']}) has {len(workers)}: set queues in each workers entry instead"
        )
    for entry in workers:
        for flat, field in (
            ("worker_threads", "threads"),
            ("worker_polling_interval", "polling_interval"),
            ("queues", "queues"),
        ):
            if flat in overridden:
                entry.pop(field, None)


def load(config_file: str | os.PathLike[str] | None = None, command_line: dict[str, Any] | None = None) -> Config:
    """Build the config from every source, validating each; raises ``ConfigError``.

    ``command_line`` holds settings given to ``quebec_run`` as options (``{"queues": "a,b"}``),
    which win over every other source."""
    from django.conf import settings

    values = {key: default for key, (default, _) in SETTINGS.items()}
    origins = dict.fromkeys([*SETTINGS, *PROCESS_LISTS], "default")
    _merge_settings(values, origins, getattr(settings, "QUEBEC", {}) or {}, "settings.QUEBEC")
    path = find_config_file(config_file)
    if path is not None:
        document, source = read_yaml_section(path, is_flat_config)
        _merge_settings(values, origins, document, source)
    overridden = set()
    sources = [
        (name, value, f"environment variable QUEBEC_{name.upper()}") for name, value in _environment_settings().items()
    ]
    sources += [(name, value, f"quebec_run --{name}") for name, value in (command_line or {}).items()]
    for name, value, source in sources:
        key = ALIASES.get(name, name)
        values[key] = _parse(key, value, SETTINGS[key][1], source)
        origins[key] = f"from {source}"
        overridden.add(key)
    _override_worker_fields(values, origins, overridden)
    _check_alive_threshold(values, origins)
    workers, dispatchers = _process_configs(values)
    values.pop("workers", None)
    values.pop("dispatchers", None)
    return Config(
        workers=workers,
        dispatchers=dispatchers,
        config_file=str(path) if path else None,
        **values,
    )


@cache
def _cached() -> Config:
    return load()


_override: Config | None = None


def get() -> Config:
    """The config in force: the one ``use()`` installed, else one built from the sources."""
    return _override or _cached()


def use(config: Config | None) -> None:
    """Install ``config`` for this process (``quebec_run --config`` does this at start)."""
    global _override
    _override = config


@receiver(setting_changed)
def _reset(*, setting: str, **kwargs: Any) -> None:
    if setting == "QUEBEC":
        _cached.cache_clear()
