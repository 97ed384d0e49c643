"""Value parsers for Quebec's settings.

Each takes a raw value (from the ``QUEBEC`` dict, queue.yml or a ``QUEBEC_*`` environment
variable, so often a string) and returns the clean one, or raises ValueError saying what is
wrong; ``quebec.conf`` adds the key and where the value came from.
"""

import json
import math
import re
import threading
from datetime import timedelta

from quebec import queue_selectors

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}
_QUEUE_HOSTILE = re.compile(r"[^A-Za-z0-9_.~\-]")
# The shortest polling interval: below it an idle process queries the database hundreds of
# times a second and keeps a CPU busy (0 spins one at ~100%).
MIN_POLLING_INTERVAL = 0.01


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
    if not math.isfinite(seconds):
        raise ValueError("must be a finite number of seconds")
    if seconds < 0:
        raise ValueError("must not be negative")
    if seconds > threading.TIMEOUT_MAX:  # the longest wait a thread can be asked for
        raise ValueError(f"must be at most {threading.TIMEOUT_MAX:.0f} seconds")
    return seconds


def _positive_duration(value):
    """A duration for which 0 means nothing useful (an interval between repeated actions)."""
    seconds = parse_duration(value)
    if seconds == 0:
        raise ValueError("must be more than 0 seconds")
    return seconds


def _switch_interval(value):
    """Seconds for ``sys.setswitchinterval``, or None (``""``, ``"none"``) to leave Python's."""
    if value is None or str(value).strip().lower() in ("", "none"):
        return None
    return _positive_duration(value)


def _polling_interval(value):
    seconds = parse_duration(value)
    if seconds < MIN_POLLING_INTERVAL:
        raise ValueError(f"must be at least {MIN_POLLING_INTERVAL} seconds (0 would poll without pause)")
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


def _bool_or_auto(value):
    """True, False, or "auto" (Quebec decides per database alias)."""
    if isinstance(value, str) and value.strip().lower() == "auto":
        return "auto"
    try:
        return _bool(value)
    except ValueError:
        raise ValueError("must be true, false or auto") from None


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


def _alias_map(value):
    aliases = _mapping(value)
    for alias, target in aliases.items():
        if not isinstance(target, str) or not target:
            raise ValueError(f"the alias for {alias!r} must be a database alias (a string)")
    return {str(alias): target for alias, target in aliases.items()}


def _death_policy(value):
    if value not in ("fail", "release"):
        raise ValueError("must be 'fail' (record the job as failed, so retry_on can retry it) or 'release'")
    return value


def _log_format(value):
    if not isinstance(value, str) or value.strip().lower() not in ("text", "json"):
        raise ValueError("must be 'text' (lines for people) or 'json' (one object per line, for log collectors)")
    return value.strip().lower()


def parse_queues(value):
    """A tuple of queue selectors: ``"*"``, exact names and ``"prefix*"`` patterns."""
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",")]
    if not isinstance(value, (list, tuple)) or not value:
        raise ValueError("must be a queue name, '*', 'prefix*', or a list of them")
    for selector in value:
        queue_selectors.check(selector)
    return tuple(value)


def optional_queues(value):
    """``parse_queues``, or None when unset (the ``queues`` setting, ``QUEBEC_QUEUES``)."""
    return None if value in (None, "") else parse_queues(value)
