"""Limits on how much runs at once: concurrency keys, per-queue limits and rate limits.

Concurrency keys and queue limits are semaphores: a row per key counting free slots, taken and
given back only by guarded single-statement updates. A job that finds no slot for its key waits
as a blocked execution and is released when a holder finishes. Rate limits keep the start
times of each bucket's recent runs and admit a run only while the window has room.
"""

import dataclasses
import enum
from datetime import timedelta

from django.utils import timezone

DEFAULT_DURATION = 180.0  # seconds: the semaphore's safety TTL, as Solid Queue's 3 minutes
QUEUE_KEY = "queue:{}"
RATE_KEY = "rate:{}"


class ConcurrencyConflict(enum.Enum):
    """What a job does when its concurrency key has no free slot."""

    Block = "block"  # wait as a blocked execution until a slot frees
    Discard = "discard"  # drop the job, visibly discarded


class RateLimitConflict(enum.Enum):
    """What a job does when its rate limit window is full."""

    Reschedule = "reschedule"  # run again once the window has room
    Discard = "discard"


class RateLimitExceeded(Exception):
    """Recorded on jobs discarded by ``rate_limit_on_throttle = Discard``."""


class ConcurrencyLimitReached(Exception):
    """Recorded on jobs discarded by ``concurrency_on_conflict = Discard``."""


@dataclasses.dataclass(frozen=True)
class Limit:
    limit: int = 1
    duration: float = DEFAULT_DURATION
    discard: bool = False


def seconds(value):
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def limit_for(class_name):
    """The concurrency limit of a stored job's class (defaults if the class is unknown here)."""
    from quebec.registry import UnknownJobClass, find_job_class

    try:
        job_class = find_job_class(class_name)
    except UnknownJobClass:
        return Limit()
    return Limit(
        limit=job_class.concurrency_limit or 1,
        duration=seconds(job_class.concurrency_duration),
        discard=job_class.concurrency_on_conflict == ConcurrencyConflict.Discard,
    )


def queue_limits():
    from quebec import conf

    return conf.get().queue_concurrency


def release_slots(job, using):
    """Give back what a job held once its run ends: its key's slot (letting the next blocked
    job in) and its queue's slot."""
    from quebec.models import BlockedExecution, Semaphore

    if job.concurrency_key:
        limit = limit_for(job.class_name)
        Semaphore.objects.using(using).signal(job.concurrency_key, limit.limit, limit.duration)
        BlockedExecution.objects.using(using).release_one(job.concurrency_key)
    release_queue_slots([job.queue_name], using)


def release_queue_slots(queue_names, using):
    from quebec.models import Semaphore

    limits = queue_limits()
    for queue_name in sorted(queue_names):
        if queue_name in limits:
            Semaphore.objects.using(using).signal(QUEUE_KEY.format(queue_name), limits[queue_name], None)


def rate_limit_delay(job, args, kwargs, using):
    """None when ``job`` may start now (its start is recorded); else (bucket, when the window has room)."""
    from quebec.models import RateLimitStart

    job_class = type(job)
    if not job_class.rate_limit_max:
        return None
    bucket = f"{job_class.__qualname__}/{job.rate_limit_key(*args, **kwargs)}"
    until = RateLimitStart.objects.using(using).admit(
        bucket, job_class.rate_limit_max, job_class.rate_limit_duration, timezone.now()
    )
    return None if until is None else (bucket, until)
