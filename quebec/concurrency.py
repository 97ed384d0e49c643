"""The vocabulary of limits on how much runs at once: what a job class declares and what it is told.

How the limits are kept is a lifecycle participant: ``quebec.lifecycle.concurrency``.
"""

import dataclasses
import enum
from datetime import timedelta


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


def seconds(value: float | timedelta) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)
