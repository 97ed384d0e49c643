"""Quebec's settings: one frozen, validated config object.

Sources, each overriding the one before: built-in defaults, the ``QUEBEC`` dict in Django
settings, ``queue.yml`` (``QUEBEC_CONFIG``, ``./queue.yml`` or ``./config/queue.yml``, keyed by
``QUEBEC_ENV`` or flat), and ``QUEBEC_<KEY>`` environment variables.
"""

import dataclasses
import difflib
import json
import os
import re
from datetime import timedelta
from functools import cache
from pathlib import Path

import yaml
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver

from quebec import queue_selectors

CONFIG_LOOKUP = ("queue.yml", "config/queue.yml")
ALIASES = {"experimental_queue_concurrency": "queue_concurrency"}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}
_QUEUE_HOSTILE = re.compile(r"[^A-Za-z0-9_.~\-]")


class ConfigError(ImproperlyConfigured):
    """A setting has a wrong name or value; the message names the key and where it came from."""


# Value parsers: each takes the raw value and returns the clean one or raises ValueError
# with the reason, which `_parse` wraps with the key and the source.


def parse_duration(value):
    """Seconds from a number, a timedelta or a string such as ``"5s"``, ``"2m"`` or ``"1h"``."""
    if isinstance(value, bool):
        raise ValueError("must be a duration (seconds, or a string like '5s', '2m', '1h')")
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION.match(value)):
        seconds = float(match[1]) * _DURATION_UNITS[match[2]]
    else:
        raise ValueError("must be a duration (seconds, or a string like '5s', '2m', '1h')")
    if seconds < 0:
        raise ValueError("must not be negative")
    return seconds


def _int_at_least(value, minimum, description):
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"must be {description}")
    return value


def _positive_int(value):
    return _int_at_least(value, 1, "a positive integer")


def _non_negative_int(value):
    return _int_at_least(value, 0, "a whole number, 0 or more")


def _optional_positive_int(value):
    return None if value in (None, "") else _positive_int(value)


def _bool(value):
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("must be true or false")


def sanitize_queue_name(name):
    """Replace characters that do not belong in a URL with ``-``."""
    return _QUEUE_HOSTILE.sub("-", name.strip())


def _override_queue(value):
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise ValueError("must be a queue name")
    return sanitize_queue_name(value)


def _mapping(value):
    if isinstance(value, str):
        value = json.loads(value) if value.strip() else {}
    if not isinstance(value, dict):
        raise ValueError("must be a mapping")
    return value


def _queue_limits(value):
    limits = _mapping(value)
    for queue, limit in limits.items():
        try:
            _positive_int(limit)
        except ValueError:
            raise ValueError(f"limit for queue {queue!r} must be a positive integer") from None
    return {str(queue): int(limit) for queue, limit in limits.items()}


def _death_policy(value):
    if value not in ("fail", "release"):
        raise ValueError("must be 'fail' (record the job as failed, so retry_on can retry it) or 'release'")
    return value


def parse_queues(value):
    """A tuple of queue selectors: ``"*"``, exact names and ``"prefix*"`` patterns."""
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",")]
    if not isinstance(value, (list, tuple)) or not value:
        raise ValueError("must be a queue name, '*', 'prefix*', or a list of them")
    for selector in value:
        queue_selectors.check(selector)
    return tuple(value)


SETTINGS = {
    # key: (default, parser)
    "worker_threads": (3, _positive_int),
    "worker_polling_interval": (0.1, parse_duration),
    "worker_claim_ahead": (40, _non_negative_int),
    "dispatcher_polling_interval": (1.0, parse_duration),
    "dispatcher_batch_size": (500, _positive_int),
    "dispatcher_concurrency_maintenance_interval": (600.0, parse_duration),
    "process_heartbeat_interval": (60.0, parse_duration),
    "process_alive_threshold": (300.0, parse_duration),
    "shutdown_timeout": (5.0, parse_duration),
    "preserve_finished_jobs": (True, _bool),
    "clear_finished_jobs_after": (86400.0, parse_duration),
    "use_skip_locked": (True, _bool),
    "use_listen_notify": (True, _bool),
    "quiet_then_exit": (False, _bool),
    "force_override_queue": (None, _override_queue),
    "queue_concurrency": ({}, _queue_limits),
    "worker_max_rss_mb": (None, _optional_positive_int),
    "worker_memory_recycle_confirmations": (3, _positive_int),
    "worker_memory_check_interval": (5.0, parse_duration),
    "enqueue_after_commit": (False, _bool),
    "max_arguments_bytes": (1024 * 1024, _positive_int),
    "recurring": ({}, _mapping),
    "on_process_death": ("fail", _death_policy),
    "monitoring_token": (None, lambda value: str(value) if value not in (None, "") else None),
    "dashboard_debug": (False, _bool),
}
PROCESS_LISTS = ("workers", "dispatchers")


@dataclasses.dataclass(frozen=True)
class WorkerConfig:
    queues: tuple = ("*",)
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
        "polling_interval": parse_duration,
        "processes": _positive_int,
    },
    "dispatchers": {
        "polling_interval": parse_duration,
        "batch_size": _positive_int,
        "concurrency_maintenance_interval": parse_duration,
        "processes": _positive_int,
    },
}


@dataclasses.dataclass(frozen=True)
class Config:
    workers: tuple
    dispatchers: tuple
    config_file: str | None = None
    worker_threads: int = 3
    worker_polling_interval: float = 0.1
    worker_claim_ahead: int = 40
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
    quiet_then_exit: bool = False
    force_override_queue: str | None = None
    queue_concurrency: dict = dataclasses.field(default_factory=dict)
    worker_max_rss_mb: int | None = None
    worker_memory_recycle_confirmations: int = 3
    worker_memory_check_interval: float = 5.0
    enqueue_after_commit: bool = False
    max_arguments_bytes: int = 1024 * 1024
    recurring: dict = dataclasses.field(default_factory=dict)
    on_process_death: str = "fail"
    monitoring_token: str | None = dataclasses.field(default=None, repr=False)  # a secret: kept out of reprs
    dashboard_debug: bool = False


def _unknown_key(key, source, known):
    close = difflib.get_close_matches(key, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return ConfigError(f"{source}: unknown key {key!r}{hint}")


def _parse(key, value, parser, source):
    try:
        return parser(value)
    except (ValueError, TypeError) as error:
        raise ConfigError(f"{source}: {key} {error}, got {value!r}") from None


def _merge_settings(values, raw, source):
    """Validate the keys of one source and merge them into ``values``."""
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


def _parse_process_list(kind, entries, source):
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


def find_file(explicit, lookup, what):
    """``explicit`` if given (it must exist), else the first of ``lookup`` that exists, else None."""
    if explicit:
        if not Path(explicit).is_file():
            raise ConfigError(f"{what} {explicit} does not exist")
        return Path(explicit)
    return next((Path(name) for name in lookup if Path(name).is_file()), None)


def read_yaml_section(path, is_flat, required):
    """The part of a YAML file that applies here, and a description of where it came from.

    A flat file (``is_flat(document)``) applies whole; otherwise its section named by
    ``QUEBEC_ENV`` (default development) does. A missing section is an error when ``required``.
    """
    try:
        document = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: invalid YAML: {error}") from None
    if not isinstance(document, dict):
        raise ConfigError(f"{path}: must be a mapping at the top level")
    if not document or is_flat(document):
        return document, str(path)
    environment = os.environ.get("QUEBEC_ENV", "development")
    source = f"{path} (environment {environment!r})"
    if environment not in document and required:
        raise ConfigError(
            f"{path}: has no section for environment {environment!r} "
            f"(sections: {', '.join(map(str, document))}); set QUEBEC_ENV or add the section"
        )
    return document.get(environment) or {}, source


def find_config_file(path=None):
    """The queue.yml to read: ``path``, else ``QUEBEC_CONFIG``, else the usual places."""
    return find_file(path or os.environ.get("QUEBEC_CONFIG"), CONFIG_LOOKUP, "queue config file")


def _read_config_file(path):
    known = {*SETTINGS, *PROCESS_LISTS, *ALIASES}
    return read_yaml_section(path, lambda document: any(key in known for key in document), required=True)


def _environment_settings():
    prefix = "QUEBEC_"
    raw = {}
    for name, value in os.environ.items():
        key = name[len(prefix) :].lower()
        if name.startswith(prefix) and ALIASES.get(key, key) in SETTINGS:
            raw[key] = value
    return raw


def _process_configs(values):
    """Worker and dispatcher entries, filled from the flat settings where they are silent."""
    worker_defaults = {
        "threads": values["worker_threads"],
        "polling_interval": values["worker_polling_interval"],
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


def load(config_file=None):
    """Build the config from every source, validating each; raises ``ConfigError``."""
    from django.conf import settings

    values = {key: default for key, (default, _) in SETTINGS.items()}
    _merge_settings(values, getattr(settings, "QUEBEC", {}) or {}, "settings.QUEBEC")
    path = find_config_file(config_file)
    if path is not None:
        document, source = _read_config_file(path)
        _merge_settings(values, document, source)
    env = _environment_settings()
    for key, value in env.items():
        key = ALIASES.get(key, key)
        values[key] = _parse(key, value, SETTINGS[key][1], f"environment variable QUEBEC_{key.upper()}")
    # The environment wins over queue.yml, for every worker entry.
    for entry in values.get("workers") or []:
        if "worker_threads" in env:
            entry["threads"] = values["worker_threads"]
        if "worker_polling_interval" in env:
            entry["polling_interval"] = values["worker_polling_interval"]
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
def _cached():
    return load()


_override = None


def get():
    """The config in force: the one ``use()`` installed, else one built from the sources."""
    return _override or _cached()


def use(config):
    """Install ``config`` for this process (``quebec_run --config`` does this at start)."""
    global _override
    _override = config


@receiver(setting_changed)
def _reset(*, setting, **kwargs):
    if setting == "QUEBEC":
        _cached.cache_clear()
