"""The vocabulary of unique jobs: what a job class declares and what its caller is told.

How keys are taken and given back is a lifecycle participant: ``quebec.lifecycle.unique``.
"""

import enum
import hashlib
import json
from datetime import timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from quebec.base_class import BaseClass

UNTIL = ("finished", "started")
# The stored key is "ClassName/<key>", at most 255 characters; longer default keys are hashed.
_MAX_STORED = 255


class UniqueConflict(enum.Enum):
    """What an enqueue does when another job holds its unique key."""

    Skip = "skip"  # write nothing; the handle is the holder's, with ``duplicate`` true
    Raise = "raise"  # raise ``quebec.DuplicateJob``; nothing of the call is written


class DuplicateJob(Exception):
    """An enqueue of a unique job whose key another job holds (``unique_on_conflict = Raise``)."""

    def __init__(self, message: str, key: str | None = None, job_id: int | None = None) -> None:
        super().__init__(message)
        self.key = key
        self.job_id = job_id  # the holder's, when it is written already


def default_key(class_name: str, arguments: Any) -> str:
    """The key of a class that does not define ``unique_key``: its serialised arguments as
    canonical JSON (keyword order does not matter), or their SHA-256 when that is too long."""
    text = json.dumps(arguments, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    if len(class_name) + 1 + len(text) <= _MAX_STORED:
        return text
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def check_unique(cls: "type[BaseClass]") -> None:
    """Refuse, at class definition, unique settings that cannot work."""
    from quebec.base_class import BaseClass

    name = cls.__qualname__
    if cls.unique_until is None:
        if cls.unique_key is not BaseClass.unique_key or cls.unique_for is not None:
            raise TypeError(
                f"{name} defines unique_key or unique_for but no unique_until; "
                "set unique_until = 'finished' or 'started' to make it unique"
            )
        return
    if cls.unique_until not in UNTIL:
        raise TypeError(f"{name}.unique_until must be 'finished' or 'started', got {cls.unique_until!r}")
    if not isinstance(cls.unique_on_conflict, UniqueConflict):
        raise TypeError(f"{name}.unique_on_conflict must be quebec.UniqueConflict.Skip or .Raise")
    seconds = cls.unique_for.total_seconds() if isinstance(cls.unique_for, timedelta) else cls.unique_for
    if seconds is not None and (isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds <= 0):
        raise TypeError(f"{name}.unique_for must be positive seconds or a timedelta, got {cls.unique_for!r}")


def unique_seconds(job_class: "type[BaseClass]") -> float | None:
    """How long a key of ``job_class`` is held at most, in seconds; None for as long as it takes."""
    value = getattr(job_class, "unique_for", None)
    return value.total_seconds() if isinstance(value, timedelta) else value
