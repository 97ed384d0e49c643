"""Exceptions Quebec raises or records, importable from ``quebec``."""

import traceback
from typing import Any


class AbortEnqueue(Exception):
    """Raise in ``before_enqueue`` to skip the enqueue; ``perform_later`` reports it."""


class JobTimeoutError(Exception):
    """A job ran longer than its class's ``timeout``."""


class ProcessExitError(Exception):
    """The worker process running the job exited before the job ended."""


class ProcessPrunedError(Exception):
    """The worker process running the job stopped sending heartbeats and was presumed dead."""


class TransactionLeftOpenError(Exception):
    """The job returned with a transaction still open on a database connection; the worker
    rolled it back, and with it what the job wrote in it."""


def describe_error(error: BaseException) -> dict[str, Any]:
    """An error as stored: class path, message and full backtrace."""
    try:
        message = str(error)
    except Exception as unprintable:  # an exception whose __str__ itself fails
        message = f"<unprintable {type(error).__qualname__}: {unprintable!r}>"
    # PostgreSQL text cannot hold NUL characters.
    return {
        "exception_class": f"{type(error).__module__}.{type(error).__qualname__}"[:255],
        "message": message.replace("\x00", "\\x00"),
        "backtrace": "".join(traceback.format_exception(error)).replace("\x00", "\\x00"),
    }


class JobCancelled(BaseException):
    """Raised in a running job at its next checkpoint or ``progress()`` call once
    ``quebec.cancel()`` asked for it; the job ends as discarded.

    A ``BaseException``, like ``KeyboardInterrupt``: a job that catches ``Exception`` around each
    item of a loop does not swallow it by accident.
    """


class ContinuationError(Exception):
    """A continuable job used its steps wrongly, or was resumed too many times."""


class InvalidStepError(ContinuationError):
    """A step nested in another, met twice in one run, or met out of the order of the run it
    resumes."""


class ResumeLimitError(ContinuationError):
    """A continuable job was interrupted more than its ``max_resumptions`` allow."""


class BatchAlreadyFinished(Exception):
    """Jobs were added to a batch that has finished: its callbacks have fired."""
