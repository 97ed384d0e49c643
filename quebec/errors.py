"""Exceptions Quebec raises or records, importable from ``quebec``."""


class AbortEnqueue(Exception):
    """Raise in ``before_enqueue`` to skip the enqueue; ``perform_later`` reports it."""


class JobTimeoutError(Exception):
    """A job ran longer than its class's ``timeout``."""


class ProcessExitError(Exception):
    """The worker process running the job exited before the job ended."""


class ProcessPrunedError(Exception):
    """The worker process running the job stopped sending heartbeats and was presumed dead."""
