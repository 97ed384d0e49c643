"""What a job class says should happen when ``perform`` raises: retry, discard or rescue."""

import inspect
import random
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from quebec.base_class import BaseClass

# What ``except`` takes: an exception class or several.
Exceptions = type[BaseException] | Iterable[type[BaseException]]
# ``handler(job, error)``: called when a strategy gives up (retry) or matches (discard, rescue).
Handler = Callable[[Any, BaseException], object]
# Seconds, a timedelta, "polynomially_longer", or a function of the executions so far.
Wait = float | timedelta | Literal["polynomially_longer"] | Callable[[int], float | timedelta]

DEFAULT_WAIT = 3  # seconds, as ActiveJob's retry_on
DEFAULT_ATTEMPTS = 5
DEFAULT_JITTER = 0.15


def _exception_tuple(exceptions: Exceptions, owner: str) -> tuple[type[BaseException], ...]:
    if inspect.isclass(exceptions):
        exceptions = (exceptions,)
    exceptions = tuple(exceptions)
    if not exceptions or not all(inspect.isclass(e) and issubclass(e, BaseException) for e in exceptions):
        raise TypeError(f"{owner} takes an exception class or a tuple of them, got {exceptions!r}")
    return exceptions


def _check_handler(handler: Handler | None, owner: str, required: bool = False) -> Handler | None:
    if handler is None and not required:
        return None
    if not callable(handler):
        raise TypeError(f"{owner} handler must be a callable taking (job, error), got {handler!r}")
    return handler


class Strategy:
    """Matches exceptions by class, like an ``except`` clause."""

    def __init__(self, exceptions: Exceptions, handler: Handler | None = None) -> None:
        self.exceptions = _exception_tuple(exceptions, type(self).__name__)
        self.handler = _check_handler(handler, type(self).__name__)

    def __repr__(self) -> str:
        names = ", ".join(exception.__qualname__ for exception in self.exceptions)
        return f"{type(self).__name__}(({names}))"

    def matches(self, error: BaseException) -> bool:
        return isinstance(error, self.exceptions)

    @property
    def key(self) -> str:
        """Names this strategy's attempt counter in ``Job.exception_executions``."""
        return "|".join(f"{e.__module__}.{e.__qualname__}" for e in self.exceptions)


class RetryStrategy(Strategy):
    """Run the job again after ``wait``, up to ``attempts`` executions in all; then ``handler``."""

    def __init__(
        self,
        exceptions: Exceptions,
        wait: Wait = DEFAULT_WAIT,
        attempts: int = DEFAULT_ATTEMPTS,
        jitter: float = DEFAULT_JITTER,
        handler: Handler | None = None,
    ) -> None:
        super().__init__(exceptions, handler)
        if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
            raise ValueError(f"RetryStrategy attempts must be a positive integer, got {attempts!r}")
        if isinstance(jitter, bool) or not isinstance(jitter, (int, float)) or jitter < 0:
            raise ValueError(f"RetryStrategy jitter must be a non-negative number, got {jitter!r}")
        _check_wait(wait)
        self.wait = wait
        self.attempts = attempts
        self.jitter = jitter

    def delay(self, executions: int) -> float:
        """Seconds to wait before the next run, after ``executions`` runs under this strategy."""
        if self.wait == "polynomially_longer":
            base = executions**4
            return base + random.random() * base * self.jitter + 2
        if callable(self.wait):
            seconds = _seconds(self.wait(executions))
        else:
            seconds = _seconds(self.wait)
        return seconds + random.random() * seconds * self.jitter


def _seconds(wait: object) -> float:
    seconds = wait.total_seconds() if isinstance(wait, timedelta) else wait
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds < 0:
        raise ValueError(f"a retry wait must be non-negative seconds or a timedelta, got {wait!r}")
    return float(seconds)


def _check_wait(wait: object) -> None:
    if wait == "polynomially_longer" or callable(wait):
        return
    _seconds(wait)


class DiscardStrategy(Strategy):
    """Drop the job (status ``discarded``), calling ``handler(job, error)`` if given."""


class RescueStrategy(Strategy):
    """Handle the error with ``handler(job, error)``; the job then counts as finished."""

    def __init__(self, exceptions: Exceptions, handler: Handler) -> None:
        super().__init__(exceptions, _check_handler(handler, "RescueStrategy", required=True))


def check_strategies(job_class: "type[BaseClass]") -> None:
    """Refuse, at class definition, strategy lists of the wrong shape."""
    for attribute, kind in (
        ("retry_on", RetryStrategy),
        ("discard_on", DiscardStrategy),
        ("rescue_from", RescueStrategy),
    ):
        value = getattr(job_class, attribute)
        if not isinstance(value, (list, tuple)) or not all(isinstance(item, kind) for item in value):
            raise TypeError(
                f"{job_class.__qualname__}.{attribute} must be a list of quebec.{kind.__name__}, got {value!r}"
            )
