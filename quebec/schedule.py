"""Recurring schedules: cron (5 fields, or 6 with seconds first), ``@hourly``-style aliases, and
plain English (``every 10 seconds``, ``every day at 9am``, ``every monday at 8:30``), each with an
optional IANA time zone at the end (``every day at 9am Europe/Paris``).

English forms are translated to cron; croniter does the cron arithmetic and cron-descriptor
puts any schedule back into words for the dashboard.
"""

import re
import zoneinfo
from datetime import datetime

from cron_descriptor import get_description
from croniter import CroniterError, croniter
from django.conf import settings
from django.utils import timezone

ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
DAYS = {
    "sunday": "0", "monday": "1", "tuesday": "2", "wednesday": "3", "thursday": "4", "friday": "5",
    "saturday": "6", "weekday": "1-5", "weekend": "0,6", "day": "*",
}  # fmt: skip
UNITS = {"second": 60, "minute": 60, "hour": 24}
PARENT = {"second": "a minute", "minute": "an hour", "hour": "a day"}
_ZONE = re.compile(r"^(UTC|GMT|[A-Za-z][A-Za-z_+\-]*(/[A-Za-z0-9_+\-]+)+)$")
_EVERY_N = re.compile(r"^every\s+(?:(\d+)\s+)?(second|minute|hour)s?$")
_EVERY_DAY = re.compile(r"^every\s+(\w+?)s?(?:\s+at\s+(.+))?$")
_TIME = re.compile(r"^(\d{1,2})(?::(\d{2}))?\s*(am|pm)?$")


class ScheduleError(ValueError):
    """A schedule that cannot be understood; the message says why."""


class Schedule:
    """A parsed schedule: ``next_after(moment)`` gives the first run strictly after it."""

    def __init__(self, text, cron, tz):
        self.text = text
        self.cron = cron
        self.tz = tz
        self._with_seconds = len(cron.split()) == 6

    def __repr__(self):
        return f"<Schedule {self.text!r} = {self.cron!r} {self.tz.key}>"

    def __eq__(self, other):
        return isinstance(other, Schedule) and (self.cron, self.tz) == (other.cron, other.tz)

    def describe(self):
        """The schedule in words, e.g. "At 09:00, Monday through Friday (Europe/Paris)"."""
        words = get_description(self.cron)  # cron-descriptor: 6 fields are read seconds first
        return f"{words} ({self.tz.key})"

    def next_after(self, moment):
        local = moment.astimezone(self.tz)
        cron = croniter(self.cron, local, second_at_beginning=self._with_seconds)
        return cron.get_next(datetime).astimezone(moment.tzinfo)

    def previous_before(self, moment):
        """The latest run at or before ``moment``."""
        local = moment.astimezone(self.tz)
        cron = croniter(self.cron, local, second_at_beginning=self._with_seconds)
        return cron.get_prev(datetime).astimezone(moment.tzinfo)


def parse(text, default_tz=None):
    """Parse ``text``; raises ``ScheduleError`` saying what is wrong."""
    if not isinstance(text, str) or not text.strip():
        raise ScheduleError("a schedule must be a non-empty string")
    words = text.strip().split()
    tz = _time_zone(words[-1]) if _ZONE.match(words[-1]) else None
    if tz is not None:
        words = words[:-1]
    body = " ".join(words).lower()
    cron = ALIASES.get(body) or (_english(body) if body.startswith("every") else body)
    if len(cron.split()) not in (5, 6):
        raise ScheduleError(
            f"{text!r} is not a schedule: expected 5 cron fields (minute hour day month weekday), "
            "6 with seconds first, an alias like @hourly, or English like 'every 5 minutes'"
        )
    try:
        croniter(cron, second_at_beginning=len(cron.split()) == 6)
    except CroniterError as error:
        raise ScheduleError(f"{text!r} is not a valid cron expression: {error}") from None
    schedule = Schedule(text, cron, tz or default_tz or _default_tz())
    try:
        schedule.next_after(timezone.now())
    except CroniterError:
        raise ScheduleError(f"{text!r} never matches a date") from None
    return schedule


def _time_zone(name):
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(f"unknown time zone {name!r}") from None


def _default_tz():
    return zoneinfo.ZoneInfo(settings.TIME_ZONE) if settings.TIME_ZONE else timezone.get_default_timezone()


def _english(body):
    if match := _EVERY_N.match(body):
        return _every_n(int(match[1] or 1), match[2])
    if match := _EVERY_DAY.match(body):
        day, at = match[1], match[2]
        if day not in DAYS:
            raise ScheduleError(f"{body!r}: {day!r} is not a day (monday..sunday, weekday, weekend or day)")
        hour, minute = _clock(at) if at else (0, 0)
        return f"{minute} {hour} * * {DAYS[day]}"
    raise ScheduleError(
        f"{body!r} is not a schedule Quebec understands; try 'every 10 seconds', 'every 5 minutes', "
        "'every hour', 'every day at 9am' or 'every monday at 8:30'"
    )


def _every_n(count, unit):
    size = UNITS[unit]
    if count < 1 or count >= size or size % count:
        choices = ", ".join(str(n) for n in range(1, size) if size % n == 0)
        raise ScheduleError(
            f"'every {count} {unit}s' does not divide {PARENT[unit]} evenly; use one of {choices}, or a cron expression"
        )
    step = "*" if count == 1 else f"*/{count}"
    return {"second": f"{step} * * * * *", "minute": f"{step} * * * *", "hour": f"0 {step} * * *"}[unit]


def _clock(text):
    text = text.strip()
    if text in ("noon", "midday"):
        return 12, 0
    if text == "midnight":
        return 0, 0
    match = _TIME.match(text)
    if not match:
        raise ScheduleError(f"{text!r} is not a time of day (like 9am, 8:30, 17:45 or 6:15pm)")
    hour, minute, meridiem = int(match[1]), int(match[2] or 0), match[3]
    if meridiem:
        if not 1 <= hour <= 12:
            raise ScheduleError(f"{text!r}: the hour must be 1 to 12 with am/pm")
        hour = hour % 12 + (12 if meridiem == "pm" else 0)
    if hour > 23 or minute > 59:
        raise ScheduleError(f"{text!r} is not a time of day")
    return hour, minute
