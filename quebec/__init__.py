"""Quebec: a background job queue for Django that lives in your own database."""

from quebec.concurrency import ConcurrencyConflict, RateLimitConflict
from quebec.enqueue import JobHandle, perform_all_later
from quebec.base_class import BaseClass
from quebec.batches import batch
from quebec.continuation import Continuable
from quebec.lifecycle.cancelling import cancel
from quebec.recurring import UnknownCommand, command, schedule_recurring_task, unschedule_recurring_task
from quebec.registry import AmbiguousJobClass, Quebec, UnknownJobClass, default
from quebec.errors import (
    AbortEnqueue,
    BatchAlreadyFinished,
    InvalidStepError,
    JobCancelled,
    JobTimeoutError,
    ProcessExitError,
    ProcessPrunedError,
    ResumeLimitError,
    TransactionLeftOpenError,
)
from quebec.strategies import DiscardStrategy, RescueStrategy, RetryStrategy
from quebec.unique import DuplicateJob, UniqueConflict

__all__ = [
    "AbortEnqueue",
    "AmbiguousJobClass",
    "BaseClass",
    "Batch",
    "BatchAlreadyFinished",
    "ConcurrencyConflict",
    "Continuable",
    "InvalidStepError",
    "JobCancelled",
    "ResumeLimitError",
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
    "batch",
    "cancel",
    "command",
    "default",
    "perform_all_later",
    "schedule_recurring_task",
    "unschedule_recurring_task",
]
__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    """``quebec.Batch``: the model, imported once Django's apps are ready (not with ``quebec``)."""
    if name == "Batch":
        from quebec.models import Batch

        return Batch
    raise AttributeError(f"module 'quebec' has no attribute {name!r}")
