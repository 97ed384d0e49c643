"""Quebec: a background job queue for Django that lives in your own database."""

from quebec.concurrency import ConcurrencyConflict, RateLimitConflict
from quebec.enqueue import JobHandle, perform_all_later
from quebec.base_class import BaseClass
from quebec.recurring import UnknownCommand, command, schedule_recurring_task, unschedule_recurring_task
from quebec.registry import AmbiguousJobClass, Quebec, UnknownJobClass, default
from quebec.errors import AbortEnqueue, JobTimeoutError, ProcessExitError, ProcessPrunedError, TransactionLeftOpenError
from quebec.strategies import DiscardStrategy, RescueStrategy, RetryStrategy
from quebec.unique import DuplicateJob, UniqueConflict

__all__ = [
    "AbortEnqueue",
    "AmbiguousJobClass",
    "BaseClass",
    "ConcurrencyConflict",
    "RateLimitConflict",
    "DiscardStrategy",
    "DuplicateJob",
    "JobHandle",
    "JobTimeoutError",
    "ProcessExitError",
    "ProcessPrunedError",
    "Quebec",
    "RescueStrategy",
    "RetryStrategy",
    "TransactionLeftOpenError",
    "UnknownCommand",
    "UniqueConflict",
    "UnknownJobClass",
    "command",
    "default",
    "perform_all_later",
    "schedule_recurring_task",
    "unschedule_recurring_task",
]
__version__ = "0.1.0"
