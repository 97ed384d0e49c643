"""Running one job: callbacks, timeout, and what its class says to do with an error.

``perform()`` never raises; it returns an ``Outcome`` that the caller records (a worker through
``quebec.lifecycle.end``, ``perform_now`` by returning or raising).
"""

import asyncio
import contextlib
import inspect
import time
from datetime import timedelta

from asgiref.sync import async_to_sync
from django.db import DatabaseError
from django.utils import timezone

from quebec import batches, concurrency
from quebec import continuation
from quebec.errors import JobCancelled, JobTimeoutError, describe_error
from quebec.lifecycle import progress
from quebec.lifecycle.outcome import DISCARDED, FAILED, FINISHED, RESCHEDULED, RETRY, Outcome
from quebec.registry import UnknownJobClass
from quebec.serialization import deserialize_arguments


def run_stored(job, quebec):
    """Perform a stored ``Job``; returns the job instance (None if it could not be made) and outcome.

    Never raises: whatever goes wrong before ``perform`` (an unknown class, arguments that no
    longer load, a failing ``rate_limit_key``) becomes the job's outcome, so no claim is left
    behind by an error.
    """
    try:
        instance = quebec.resolve(job.class_name).for_job(job, [], {})
    except Exception as error:
        return None, Outcome(FAILED, error=error)
    try:
        args, kwargs = deserialize_arguments(job.arguments)
        instance.arguments = (args, kwargs)
    except Exception as error:
        return instance, handle_error(instance, error)
    # Imported here: this module is loaded with ``quebec`` itself, before Django's models are.
    from quebec.lifecycle.concurrency import rate_limit_delay

    try:
        throttled = rate_limit_delay(instance, args, kwargs, quebec.using)
    except DatabaseError as error:  # e.g. a deadlock victim: try the job again shortly
        return instance, Outcome(
            RESCHEDULED, retry_at=timezone.now() + timedelta(seconds=1), reason=f"rate limit check failed: {error}"
        )
    except Exception as error:
        return instance, handle_error(instance, error)
    if throttled is not None:
        return instance, _throttle(instance, *throttled)
    # A member's own enqueues join its batch (fan-out trees finish together); a callback's do not.
    with batches.joining(job.batch_id, quebec.using):
        return instance, perform(instance, args, kwargs)


def _throttle(job, bucket, until):
    job_class = type(job)
    rule = f"rate limit {bucket}: {job_class.rate_limit_max} per {job_class.rate_limit_duration}"
    if job_class.rate_limit_on_throttle == concurrency.RateLimitConflict.Discard:
        return Outcome(DISCARDED, error=concurrency.RateLimitExceeded(f"discarded by the {rule}"))
    return Outcome(RESCHEDULED, retry_at=until, reason=rule)


def fail_stored(job, quebec, error):
    """The outcome of a stored ``Job`` whose run ended with ``error`` outside ``perform``
    (its process died): the class's strategies decide, as for an error ``perform`` raised."""
    try:
        instance = quebec.resolve(job.class_name).for_job(job, [], {})
    except UnknownJobClass:
        return None, Outcome(FAILED, error=error)
    return instance, handle_error(instance, error)


def perform(job, args, kwargs):
    """Run ``job`` (a bound ``BaseClass`` instance) and decide its outcome."""
    try:
        result = _run_with_callbacks(job, args, kwargs)
    except JobCancelled as error:
        return _cancelled(job, error)
    except Exception as error:
        return continuation.outcome_after(job, error) or handle_error(job, error)
    except BaseException as error:  # an interruption at a checkpoint; SystemExit and the like fail
        return continuation.outcome_after(job, error) or Outcome(FAILED, error=error)
    if (by := progress.cancelled_by()) is not None:
        # It read ``cancel_requested`` and returned: it ends as a cancelled job does.
        return _cancelled(job, JobCancelled(f"cancelled by {by}"))
    return Outcome(FINISHED, result=result)


def _cancelled(job, error):
    """``quebec.cancel()`` reached the running job: discarded, whatever its strategies say."""
    try:
        job.after_discard(error)
    except Exception as handler_error:
        return Outcome(FAILED, error=handler_error)
    return Outcome(DISCARDED, error=error)


def _run_with_callbacks(job, args, kwargs):
    job.before_perform()
    with _around(job):
        result = _call_perform(job, args, kwargs)
    job.after_perform()
    return result


def _around(job):
    around = type(job).around_perform
    if around is None:
        return contextlib.nullcontext()
    if inspect.isgeneratorfunction(around):
        return contextlib.contextmanager(around)(job)
    manager = around(job)
    if not (hasattr(manager, "__enter__") and hasattr(manager, "__exit__")):
        raise TypeError(f"{type(job).__qualname__}.around_perform must be a generator or return a context manager")
    return manager


def _call_perform(job, args, kwargs):
    timeout = _timeout_seconds(job)
    if inspect.iscoroutinefunction(job.perform):
        # async_to_sync, not asyncio.run: the ORM calls the coroutine makes through
        # sync_to_async come back to this thread and its connection, not a stray thread's.
        return async_to_sync(_await_with_timeout)(job, args, kwargs, timeout)
    started = time.monotonic()
    result = job.perform(*args, **kwargs)
    elapsed = time.monotonic() - started
    if timeout is not None and elapsed > timeout:
        # A thread cannot be interrupted: the job ran to its end, but it still counts as timed out.
        raise JobTimeoutError(
            f"{type(job).__qualname__} ran for {elapsed:.1f}s, over its timeout of {timeout:g}s "
            "(a synchronous job is not interrupted; it is reported once it returns)"
        )
    return result


async def _await_with_timeout(job, args, kwargs, timeout):
    try:
        return await asyncio.wait_for(job.perform(*args, **kwargs), timeout)
    except TimeoutError:
        raise JobTimeoutError(f"{type(job).__qualname__} was cancelled after its timeout of {timeout:g}s") from None


def _timeout_seconds(job):
    timeout = type(job).timeout
    return timeout.total_seconds() if isinstance(timeout, timedelta) else timeout


def handle_error(job, error):
    """The outcome the class's strategies give ``error``; a failing handler fails the job.

    Strategies are tried in order: ``retry_on``, then ``discard_on``, then ``rescue_from``; the
    first whose exceptions match decides.
    """
    cls = type(job)
    try:
        for strategy in cls.retry_on:
            if strategy.matches(error):
                return _retry_or_give_up(job, strategy, error)
        for strategy in cls.discard_on:
            if strategy.matches(error):
                return _discard(job, strategy.handler, error)
        for strategy in cls.rescue_from:
            if strategy.matches(error):
                strategy.handler(job, error)
                return Outcome(FINISHED)
    except Exception as handler_error:
        # Raised while handling ``error``, so Python chains it: both appear in the backtrace.
        return Outcome(FAILED, error=handler_error)
    return Outcome(FAILED, error=error)


def _retry_or_give_up(job, strategy, error):
    counters = dict(job.exception_executions)
    counters[strategy.key] = counters.get(strategy.key, 0) + 1
    job.exception_executions = counters
    if counters[strategy.key] < strategy.attempts:
        retry_at = timezone.now() + timedelta(seconds=strategy.delay(counters[strategy.key]))
        return Outcome(RETRY, error=error, retry_at=retry_at)
    if strategy.handler is not None:
        strategy.handler(job, error)
        return Outcome(FINISHED)
    job.after_discard(error)
    return Outcome(FAILED, error=error)


def _discard(job, handler, error):
    if handler is not None:
        handler(job, error)
    job.after_discard(error)
    return Outcome(DISCARDED, error=error)


def add_attempt(job, outcome, started_at, process_name):
    """Append this run to ``job.attempts``; a rate-limited run that never started is no attempt."""
    if outcome.state == RESCHEDULED:
        return
    attempt = {
        "number": job.executions,
        "process": process_name,
        "started_at": started_at.isoformat(),
        "finished_at": timezone.now().isoformat(),
        "outcome": outcome.state,
    }
    if outcome.error is not None:
        attempt["error"] = describe_error(outcome.error)
    job.attempts = [*job.attempts, attempt]
