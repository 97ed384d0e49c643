"""Quebec's tables, after Solid Queue: a permanent ``Job`` row plus one small table per state.

Only the tables live here (fields, constraints, indexes, read-only querysets and small
accessors): every change of a job's state is a transition in ``quebec.lifecycle``, and the
statements behind it are in ``quebec.db``.

    jobs        Job, its five execution tables, Pause
    processes   Process
    limits      Semaphore, RateLimitStart, UniqueKey
    recurring   RecurringTask, RecurringExecution
    batches     Batch
    stats       JobStat (rollups per minute, queue and class), JobStatTotal, percentile
    dashboard   Dashboard (no table: the dashboard's entry in the admin index)
"""

from quebec.models.batches import Batch, BatchStatus
from quebec.models.dashboard import Dashboard
from quebec.models.jobs import (
    EXECUTION_STATES,
    BlockedExecution,
    ClaimedExecution,
    Execution,
    FailedExecution,
    Job,
    JobStatus,
    Pause,
    ReadyExecution,
    ScheduledExecution,
)
from quebec.models.limits import RateLimitStart, Semaphore, UniqueKey
from quebec.models.processes import Process
from quebec.models.recurring import RecurringExecution, RecurringTask
from quebec.models.stats import JobStat, JobStatTotal, percentile

__all__ = [
    "Batch",
    "BatchStatus",
    "EXECUTION_STATES",
    "BlockedExecution",
    "ClaimedExecution",
    "Dashboard",
    "Execution",
    "FailedExecution",
    "Job",
    "JobStat",
    "JobStatTotal",
    "JobStatus",
    "Pause",
    "Process",
    "RateLimitStart",
    "ReadyExecution",
    "RecurringExecution",
    "RecurringTask",
    "ScheduledExecution",
    "Semaphore",
    "UniqueKey",
    "percentile",
]
