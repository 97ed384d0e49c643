"""The log lines of a job's life: one subscriber to the lifecycle's events, after each commit.

Records go to the ``quebec.worker`` logger, where they were written before there were events,
so a project's LOGGING keeps routing them. A failure carries its exception (``exc_info``), so
error trackers group it.
"""

import logging

from quebec.lifecycle import events

logger = logging.getLogger("quebec.worker")


def _name(job):
    return f"{job.class_name} #{job.pk}"


def _error(error):
    try:
        return f"{type(error).__qualname__}: {error}"
    except Exception:  # an error whose __str__ fails must not stop the others' lines
        return type(error).__qualname__


def finished(runs):
    if logger.isEnabledFor(logging.DEBUG):
        for run in runs:
            logger.debug("Performed %s in %.1f ms", _name(run.job), run.elapsed * 1000)


def retried(runs):
    for run in runs:
        logger.warning(
            "Retrying %s at %s (attempt %d failed: %s)",
            _name(run.job),
            run.outcome.retry_at,
            run.job.executions,
            _error(run.outcome.error),
        )


def discarded(runs):
    for run in runs:
        if run.outcome.error is not None:
            logger.warning("Discarded %s: %s", _name(run.job), _error(run.outcome.error))


def rescheduled(runs):
    for run in runs:
        logger.info("Rescheduled %s for %s (%s)", _name(run.job), run.outcome.retry_at, run.outcome.reason)


def resumed(runs):
    for run in runs:
        continuation = run.job.continuation or {}
        logger.info(
            "Interrupted %s at step %s; back in line with its progress (resumptions so far: %d)",
            _name(run.job),
            (continuation.get("current") or ["-"])[0],
            continuation.get("resumptions", 0),
        )


def failed(runs):
    for run in runs:
        error = run.outcome.error
        logger.error(
            "Failed %s after %.1f ms: %s",
            _name(run.job),
            run.elapsed * 1000,
            _error(error),
            exc_info=(type(error), error, error.__traceback__) if error is not None else None,
        )


events.subscribe(events.FINISHED, finished)
events.subscribe(events.RETRIED, retried)
events.subscribe(events.DISCARDED, discarded)
events.subscribe(events.RESCHEDULED, rescheduled)
events.subscribe(events.FAILED, failed)
events.subscribe(events.RESUMED, resumed)
