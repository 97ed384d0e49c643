"""``Continuable``: a job in steps that a stopping worker interrupts at a checkpoint and that
resumes where it stopped, skipping the steps it finished.

The steps' state is ``{"completed": [names], "current": [name, cursor] | None, "resumptions":
n}``, kept on the job's row (``Job.continuation``) by ``quebec.lifecycle.progress``: written
when a step ends, at most once a second while one advances, and when the run ends. A graceful
stop writes it exactly; a killed worker leaves the last write, at most a second old.
"""

import inspect
import sys
from collections.abc import Callable
from datetime import datetime, timedelta
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, cast, overload

from django.utils import timezone

from quebec.errors import ContinuationError, InvalidStepError, ResumeLimitError
from quebec.lifecycle import progress
from quebec.lifecycle.outcome import RESUMED, Outcome

if TYPE_CHECKING:
    from quebec.base_class import BaseClass

# An error raised after a step advanced resumes the job after this pause (Rails' default).
RESUME_AFTER_ERROR = timedelta(seconds=5)


class Interrupted(BaseException):
    """Raised at a checkpoint to stop the job where it is; ``quebec.execution`` turns it into a
    resumption. A ``BaseException``, so a job catching ``Exception`` does not swallow it."""


class Step:
    """The step running: ``cursor`` (where to go on), ``resumed`` (an earlier run began it)."""

    def __init__(self, continuation: "Continuation", name: str, cursor: Any, resumed: bool, isolated: bool) -> None:
        self._continuation = continuation
        self.name = name
        self.cursor = cursor
        self.resumed = resumed
        self.isolated = isolated
        self.advanced = False

    def __repr__(self) -> str:
        return f"<Step {self.name!r} cursor={self.cursor!r}{' resumed' if self.resumed else ''}>"

    def advance(self, from_: int | None = None) -> None:
        """Move the cursor one past ``from_`` (default: the cursor), then checkpoint."""
        value = self.cursor if from_ is None else from_
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidStepError(
                f"step {self.name!r} cannot advance from {value!r}: advance() counts integers; "
                "give the step a start=0, or use set(value)"
            )
        self.set(value + 1)

    def set(self, value: Any) -> None:
        """Set the cursor (any JSON value), then checkpoint."""
        self.cursor = value
        self.advanced = True
        self._continuation.advanced = True
        self.checkpoint()

    def checkpoint(self) -> None:
        """Store the cursor now and then, hear of a cancellation, and stop here if the worker
        is stopping (the job goes back in line and resumes from this cursor)."""
        self._continuation.checkpoint(self)


class Continuation:
    """One run's view of a continuable job's steps."""

    def __init__(self, stored: dict[str, Any] | None) -> None:
        stored = stored or {}
        self.completed: list[str] = list(stored.get("completed", []))
        self.resume_from: list[Any] | None = stored.get(
            "current"
        )  # [name, cursor] of the step an earlier run stopped in
        self.started = bool(self.completed or self.resume_from)
        self.resumptions: int = stored.get("resumptions", 0) + (1 if self.started else 0)
        self.current: list[Any] | None = self.resume_from
        self.encountered: list[str] = []
        self.running: Step | None = None
        self.advanced = False  # whether this run made progress: a step ended or a cursor moved
        self.isolating = False  # an isolated step ended: the next one starts in a new run

    def state(self) -> dict[str, Any]:
        return {"completed": list(self.completed), "current": self.current, "resumptions": self.resumptions}

    def begin(self, name: str, start: Any, isolated: bool) -> Step | None:
        """The ``Step`` to run, or None when an earlier run completed it."""
        self._validate(name)
        self.encountered.append(name)
        if name in self.completed:
            return None
        if self.advanced:
            # Between two steps: the place Rails checkpoints, and where an isolated step begins anew.
            self.checkpoint(None, isolating=isolated or self.isolating)
        stopped_in = self.resume_from if self.resume_from is not None and self.resume_from[0] == name else None
        resumed = stopped_in is not None
        step = Step(self, name, stopped_in[1] if stopped_in is not None else start, resumed, isolated)
        self.current = [name, step.cursor]
        self.running = step
        return step

    def complete(self, step: Step) -> None:
        self.running = None
        self.completed.append(step.name)
        self.current = None
        self.advanced = True
        self.isolating = step.isolated
        context = progress.current()
        if context is not None:
            context.save_steps(self.state(), when="now")

    def abandon(self) -> None:
        """The step raised: it stays the current one, with its cursor."""
        self.running = None

    def checkpoint(self, step: Step | None, isolating: bool = False) -> None:
        context = progress.current()
        if context is None:
            return
        context.raise_if_cancelled()
        if not context.outside_transaction():
            # Inside the job's own transaction the cursor is not taken: a rollback would undo
            # the items it says are done. The next checkpoint outside takes it.
            return
        if step is not None:
            self.current = [step.name, step.cursor]
            context.save_steps(self.state())
        if isolating or context.stopping():
            context.save_steps(self.state(), when="later")
            raise Interrupted("isolating a step" if isolating else "the worker is stopping")

    def _validate(self, name: str) -> None:
        if not isinstance(name, str) or not name:
            raise InvalidStepError(f"a step's name must be a non-empty string, got {name!r}")
        if self.running is not None:
            raise InvalidStepError(f"step {name!r} is nested inside step {self.running.name!r}; steps cannot nest")
        if name in self.encountered:
            raise InvalidStepError(f"step {name!r} was already met in this run; each step needs its own name")
        if name in self.completed:
            return
        if self.resume_from is not None and self.resume_from[0] != name and self.resume_from[0] not in self.encountered:
            raise InvalidStepError(
                f"step {name!r} found where the job was to resume from step {self.resume_from[0]!r}; "
                "were the steps reordered or renamed?"
            )
        skipped = [done for done in self.completed if done not in self.encountered]
        if skipped:
            raise InvalidStepError(
                f"step {name!r} found before step {skipped[0]!r}, which an earlier run completed; "
                "were the steps reordered or renamed?"
            )


class Continuable:
    """Mix into a job class (``class ImportJob(quebec.BaseClass, quebec.Continuable)``) to run
    ``perform`` in steps that survive a worker's graceful stop (see the README)."""

    max_resumptions: ClassVar[int] = 25
    resume_errors_after_advancing: ClassVar[bool] = True
    steps: ClassVar[list[str] | tuple[str, ...] | None] = (
        None  # optional: the step names in order, for the dashboard's "steps to come"
    )

    _continuation: Continuation | None

    @property
    def continuation(self) -> Continuation:
        continuation = getattr(self, "_continuation", None)
        if continuation is None:
            context = progress.current()
            continuation = self._continuation = Continuation(context.job.continuation if context is not None else None)
        return continuation

    @property
    def resumptions(self) -> int:
        """How many times this job was resumed after an interruption."""
        return self.continuation.resumptions

    @overload
    def step(self, name: str, fn: None = None, *, start: Any = None, isolated: bool = False) -> "_StepBlock": ...

    @overload
    def step[R](
        self, name: str, fn: Callable[[Step], R] | Callable[[], R], *, start: Any = None, isolated: bool = False
    ) -> R | None: ...

    def step(
        self, name: str, fn: Callable[..., Any] | None = None, *, start: Any = None, isolated: bool = False
    ) -> Any:
        """A step named ``name``: ``with self.step(name, start=0) as step:``, or ``self.step(name,
        fn)`` to call ``fn(step)`` (or ``fn()``). A step an earlier run completed is skipped."""
        block = _StepBlock(self.continuation, name, start, isolated)
        if fn is None:
            return block
        step = block.begin()
        if step is None:
            return None
        try:
            result = fn(step) if _takes_an_argument(fn) else fn()
        except BaseException:
            self.continuation.abandon()
            raise
        self.continuation.complete(step)
        return result


def _takes_an_argument(fn: Callable[..., Any]) -> bool:
    try:
        return bool(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        return True


class _SkipBody(Exception):
    """Raised at the first instruction of a completed step's ``with`` body, and swallowed by
    its ``__exit__``: the only way a context manager can skip its body."""


class _StepBlock:
    """``with self.step(...) as step:``; for a step completed by an earlier run, the body is
    skipped by tracing the caller's frame until its first instruction raises ``_SkipBody``."""

    def __init__(self, continuation: Continuation, name: str, start: Any, isolated: bool) -> None:
        self.continuation = continuation
        self.args = (name, start, isolated)
        self.skipping = False

    def begin(self) -> Step | None:
        return self.continuation.begin(*self.args)

    def __enter__(self) -> Step:
        step = self.begin()
        if step is None:
            self._skip_body(sys._getframe(1))
        return cast(Step, step)  # None only for a body that is skipped before it can see it

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> bool:
        if self.skipping:
            self._stop_tracing(sys._getframe(1))
            return kind is _SkipBody
        if kind is None:
            self.continuation.complete(cast(Step, self.continuation.running))
        else:
            self.continuation.abandon()
        return False

    def _skip_body(self, frame: FrameType) -> None:
        self.skipping = True
        self._saved = (sys.gettrace(), frame.f_trace, frame.f_trace_opcodes)
        if self._saved[0] is None:
            sys.settrace(_no_trace)  # frame tracing runs only while a global trace function is set

        def skip(frame: FrameType, event: str, arg: object) -> None:
            raise _SkipBody

        frame.f_trace_opcodes = True  # the body may sit on the line of the ``with``
        frame.f_trace = skip

    def _stop_tracing(self, frame: FrameType) -> None:
        trace, frame.f_trace, frame.f_trace_opcodes = self._saved
        sys.settrace(trace)


def _no_trace(frame: FrameType, event: str, arg: object) -> None:
    return None


def outcome_after(job: "BaseClass", error: BaseException) -> Outcome | None:
    """The outcome of a continuable ``job`` that raised ``error``: back in line with its
    progress when interrupted (or when it raised after advancing and its class allows), the
    class's error handling past ``max_resumptions``; None when its steps have no say."""
    if not isinstance(job, Continuable) or progress.current() is None or isinstance(error, ContinuationError):
        return None
    continuation = job.continuation
    retry_at: datetime | None
    recorded: BaseException | None = error  # what the attempt records: nothing for an interruption
    if isinstance(error, Interrupted):
        retry_at, recorded = None, None
    elif isinstance(error, Exception) and job.resume_errors_after_advancing and continuation.advanced:
        retry_at = timezone.now() + RESUME_AFTER_ERROR
    else:
        return None
    if continuation.resumptions >= job.max_resumptions:
        from quebec.execution import handle_error

        limit = ResumeLimitError(
            f"{type(job).__qualname__} was resumed {continuation.resumptions} times, its max_resumptions"
        )
        limit.__cause__ = recorded
        outcome: Outcome = handle_error(job, limit)
        return outcome
    progress.current().save_steps(continuation.state(), when="later")
    return Outcome(RESUMED, error=recorded, retry_at=retry_at)
