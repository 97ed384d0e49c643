"""Bounded views of what jobs carry: a list page never loads their arguments, and a job page
shows only the start of them, however large they are."""

import json
import re

from django.db.models import TextField
from django.db.models.functions import Cast, Length, Substr

from quebec.models import Job

PREVIEW_CHARS = 80  # a list cell
PAGE_CHARS = 64 * 1024  # the job page
# The columns of a job that can hold anything a job was given, returned or raised.
JOB_PAYLOAD_FIELDS = ("arguments", "return_value", "attempts", "exception_executions")
_JSON_ESCAPE = re.compile(r"\\\\|\\u([0-9a-fA-F]{4})")


def with_argument_previews(queryset, job="job__"):
    """``queryset`` without its jobs' payload columns, annotated with ``arguments_head``: the
    start of the arguments' JSON text, cut by the database. ``job`` is the path to the job
    (empty for a queryset of jobs)."""
    head = Substr(Cast(f"{job}arguments", TextField()), 1, PREVIEW_CHARS + 1)
    return queryset.defer(*(job + field for field in JOB_PAYLOAD_FIELDS)).annotate(arguments_head=head)


def preview(head):
    """The text for a list cell from ``arguments_head``: at most ``PREVIEW_CHARS`` characters."""
    text = _readable(head or "")
    return text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 1] + "…"


def _readable(text):
    # SQLite and MySQL keep JSON with non-ASCII characters as \uXXXX escapes: show the characters
    # (a pair of escaped backslashes stays as it is; a surrogate pair joins into one character).
    def unescape(match):
        return match[0] if match[1] is None else chr(int(match[1], 16))

    return _JSON_ESCAPE.sub(unescape, text).encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def pretty_head(value, limit=PAGE_CHARS):
    """``(text, cut)``: ``value`` as indented JSON, stopped after ``limit`` characters; the
    encoder stops there too, so a large value is never written out whole."""
    parts, length = [], 0
    for chunk in json.JSONEncoder(indent=2, ensure_ascii=False, sort_keys=True).iterencode(value):
        parts.append(chunk)
        length += len(chunk)
        if length > limit:
            return "".join(parts)[:limit], True
    return "".join(parts), False


def arguments_size(job_id):
    """Characters of the job's arguments as the database stores them, counted there."""
    return (
        Job.objects.filter(pk=job_id)
        .annotate(size=Length(Cast("arguments", TextField())))
        .values_list("size", flat=True)
        .first()
    )


def arguments_text(job_id):
    """The job's arguments as the database stores them, as text (not parsed), or None."""
    return (
        Job.objects.filter(pk=job_id)
        .annotate(text=Cast("arguments", TextField()))
        .values_list("text", flat=True)
        .first()
    )
