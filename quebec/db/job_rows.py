"""The columns of a new job's row, as every database's enqueue INSERT fills them.

An enqueue sends only what its jobs hold: the values every job has (``PER_JOB``), the enqueue's
time once, and a column of ``UNLESS_DEFAULT`` only when a job of the batch holds something other
than its default there; otherwise the statement's text writes the default. Fewer parameters to
convert and quote per job, and a statement text per set of columns sent.
"""

import functools
import json
import operator

from django.db import models

from quebec.db.rows import RowTemplate
from quebec.models import Job

# Columns each job gives a value of its own.
PER_JOB = ("queue_name", "class_name", "arguments", "priority", "active_job_id")
# Columns sent only when a job of the batch holds another value than this one. A new nullable
# column of Job is one more line here, by its attname (a foreign key ``batch``: "batch_id").
UNLESS_DEFAULT = {
    "executions": 0,
    "exception_executions": {},
    "concurrency_key": None,
    "unique_key": None,
    "scheduled_at": None,
    "finished_at": None,
    "discarded_at": None,
    "attempts": [],
    "return_value": None,
    "progress": None,
    "continuation": None,
    "cancel_requested_at": None,
    "cancel_requested_by": "",
    "batch_id": None,
}
# Columns given the enqueue's time.
ENQUEUE_TIME = ("created_at", "updated_at")


# A job not yet enqueued: no id, nothing run, finished or asked of it yet. Its other fields are
# the enqueue's to give (``NEW_JOB.new(...)``).
NEW_JOB = RowTemplate(
    Job,
    id=None,
    return_value=None,
    finished_at=None,
    discarded_at=None,
    progress=None,
    continuation=None,
    cancel_requested_at=None,
    cancel_requested_by="",
)


def check_columns():
    """The schema tripwire: a column added to Job must be given a value by the enqueue."""
    named = {*PER_JOB, *UNLESS_DEFAULT, *ENQUEUE_TIME}
    columns = {field.attname for field in Job._meta.concrete_fields if not field.primary_key}
    assert named == columns, f"the enqueue's INSERT does not name {sorted(columns - named)} of Job"


# Every default but None is empty or zero, so "holds another value" is "is true" for those:
# the test runs in C (``sent_columns``), which a batch of a thousand jobs does fourteen times.
assert not any(UNLESS_DEFAULT.values()), "a default of UNLESS_DEFAULT must be None, empty or zero"
_GETTERS = {name: operator.attrgetter(name) for name in UNLESS_DEFAULT}


def sent_columns(jobs):
    """The columns of ``UNLESS_DEFAULT`` some job of ``jobs`` (a sequence) holds another value in."""
    sent = []
    for name, default in UNLESS_DEFAULT.items():
        values = map(_GETTERS[name], jobs)
        if list(values).count(None) != len(jobs) if default is None else any(values):
            sent.append(name)
    return tuple(sent)


def literal(name):
    """The SQL text of ``name``'s default, for a statement that does not send it."""
    value = UNLESS_DEFAULT[name]
    if value is None:
        return "NULL"
    if isinstance(value, int):
        return str(value)
    text = value if isinstance(value, str) else json.dumps(value)
    return "'" + text.replace("'", "''") + "'"


@functools.cache
def fields(names):
    return tuple(Job._meta.get_field(name) for name in names)


def arguments_text(job):
    """The arguments of ``job`` as JSON text: the enqueue checks' encoding when they made one
    (the same text ``JSONField`` would write), else encoded here."""
    text = getattr(job, "encoded_arguments", None)
    if text is None:
        field = Job._meta.get_field("arguments")
        text = json.dumps(job.arguments, cls=field.encoder)
    return text


def uuid_converter(connection):
    """``UUIDField``'s database value: the UUID where the database has the type, else its hex."""
    return (lambda value: value) if connection.features.has_native_uuid_field else (lambda value: value.hex)


def is_json(field):
    return isinstance(field, models.JSONField)
