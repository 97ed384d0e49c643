"""``quebec.batch(...)``: group jobs so that callbacks fire once every one of them has ended.

A batch is built inside a ``with`` block that is one transaction: the batch's row and its
members commit together, or not at all, so no member can end before the batch is started. Which
batch a job enqueued now joins is this module's ``scope``: the block being built, a running
member's batch (its fan-out joins), or ``Batch.enqueue()``. The counting and the callbacks are
``quebec.lifecycle.batches``.
"""

import contextlib
import contextvars
import dataclasses
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from quebec.errors import BatchAlreadyFinished

if TYPE_CHECKING:
    from quebec.models import Batch

CALLBACK_KEY = "batch"  # in a callback job's arguments document: the id of the batch it is for


def batch_of(job: Any) -> int | None:
    """The id of the batch a stored ``Job`` is a member of, or a callback of; None."""
    if job.batch_id:
        return int(job.batch_id)
    arguments = job.arguments
    return arguments.get(CALLBACK_KEY) if isinstance(arguments, dict) else None


@dataclasses.dataclass
class Scope:
    """The batch the jobs enqueued now join. ``building``: the block that creates it, whose
    members are counted once, when it is left (``added``)."""

    batch_id: int
    using: str
    building: bool = False
    added: int = 0


_scope: contextvars.ContextVar[Scope | None] = contextvars.ContextVar("quebec_batch", default=None)


def current() -> Scope | None:
    """The batch jobs enqueued here join, or None."""
    return _scope.get()


@contextlib.contextmanager
def joining(batch_id: int | None, using: str) -> Iterator[None]:
    """Jobs enqueued inside join batch ``batch_id`` (None: leave the scope as it is)."""
    if batch_id is None:
        yield
        return
    token = _scope.set(Scope(batch_id, using))
    try:
        yield
    finally:
        _scope.reset(token)


@contextlib.contextmanager
def batch(
    *,
    on_finish: Any = None,
    on_success: Any = None,
    on_failure: Any = None,
    description: str = "",
    metadata: dict[str, Any] | None = None,
    using: str | None = None,
) -> "Iterator[Batch]":
    """Every job enqueued inside the block joins one new batch, started when the block is left;
    an exception rolls the whole block back (no batch, no jobs). Yields the ``Batch``."""
    from quebec.db import write_transaction
    from quebec.lifecycle import batches
    from quebec.registry import default

    using = using or default.using
    callbacks = {name: serialize_callback(value, name) for name, value in _callbacks(on_finish, on_success, on_failure)}
    with write_transaction(using):
        row = batches.create(description, metadata, callbacks, using)
        scope = Scope(row.pk, using, building=True)
        token = _scope.set(scope)
        try:
            yield row
        finally:
            _scope.reset(token)
        batches.start(row, scope.added, using)


def _callbacks(on_finish: Any, on_success: Any, on_failure: Any) -> list[tuple[str, Any]]:
    return [
        (name, value)
        for name, value in (("on_finish", on_finish), ("on_success", on_success), ("on_failure", on_failure))
        if value is not None
    ]


def serialize_callback(callback: Any, name: str) -> dict[str, Any]:
    """A callback as the batch stores it: the job its firing enqueues."""
    from quebec.base_class import BaseClass
    from quebec.enqueue import ConfiguredJob, PendingJob

    if isinstance(callback, type) and issubclass(callback, BaseClass):
        callback = callback.build()
    elif isinstance(callback, ConfiguredJob):
        callback = callback.build()
    if not isinstance(callback, PendingJob):
        raise TypeError(f"{name} must be a job class or a built job (Job.set(...).build(...)), got {callback!r}")
    job = callback.job
    return {
        "class_name": type(job).job_name(),
        "queue_name": job.queue_name,
        "priority": job.priority,
        "arguments": callback.arguments,
        "concurrency_key": job.stored_key,
        "unique_key": job.stored_unique_key,
    }


@contextlib.contextmanager
def adding(row: "Batch") -> "Iterator[Batch]":
    """``Batch.enqueue()``: jobs enqueued inside join the running batch ``row``; raises
    ``BatchAlreadyFinished`` if it has finished. The batch cannot finish while the block runs."""
    from quebec.db import write_transaction
    from quebec.models import Batch

    using = row._state.db or "default"
    with write_transaction(using):
        locked = Batch.objects.using(using).select_for_update().filter(pk=row.pk).first()
        if locked is None or locked.finished_at is not None:
            raise BatchAlreadyFinished(f"batch #{row.pk} has finished; no job can join it")
        with joining(row.pk, using):
            yield row
