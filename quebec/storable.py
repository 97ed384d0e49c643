"""What the database can store of a job, checked in Python before anything is written.

A value the database refuses would otherwise fail the enqueue's INSERT, and with
``enqueue_after_commit`` that INSERT runs after the caller's transaction has committed: the
caller's data would be kept and the job lost, with no one told but the log. Checked here, the
caller gets a ``ValueError`` naming the value at the ``perform_later`` that made it, in every mode.
"""

import json

from django.db import connections

from quebec import conf

MAX_KEY_LENGTH = 255  # the length of Job's queue_name, class_name, concurrency_key, unique_key and the keys' tables
_PREVIEW = 60


def check_jobs(pending_jobs, using):
    """Raise ``ValueError`` for the first of ``pending_jobs`` that ``using`` cannot store."""
    refuses_nul = nul_refused_by(using)
    max_bytes = conf.get().max_arguments_bytes
    for pending in pending_jobs:
        job = pending.job
        owner = type(job).__qualname__
        check_key("queue name", job.queue_name, owner, refuses_nul)
        check_key("class name", type(job).job_name(), owner, refuses_nul)
        if job.stored_key is not None:
            check_key("concurrency key", job.stored_key, owner, refuses_nul)
        if job.stored_unique_key is not None:
            check_key("unique key", job.stored_unique_key, owner, refuses_nul)
        # The text measured is the text written: the INSERT sends it instead of encoding again.
        pending.encoded_arguments = _check_arguments(pending.arguments, owner, max_bytes, refuses_nul)


def check_key(kind, value, owner, refuses_nul):
    """Refuse a key or name longer than its column, or holding a NUL where the database can't."""
    if len(value) > MAX_KEY_LENGTH:
        raise ValueError(
            f"{owner}: {kind} {_preview(value)} is {len(value)} characters; "
            f"the database stores at most {MAX_KEY_LENGTH}"
        )
    if refuses_nul and "\x00" in value:
        raise ValueError(f"{owner}: {kind} {_preview(value)} contains a NUL character, which PostgreSQL cannot store")


def nul_refused_by(using):
    """PostgreSQL's text and jsonb types cannot hold a NUL character; the others store it."""
    return connections[using].vendor == "postgresql"


def _check_arguments(document, owner, max_bytes, refuses_nul):
    """Refuse arguments over ``max_bytes`` or holding a NUL the database can't store; returns
    their JSON text (``json.dumps``' defaults, as ``JSONField`` writes it)."""
    # json.dumps with its defaults reuses one encoder and escapes every non-ASCII character, so
    # its length is cheap to get and never below the UTF-8 size: measure exactly only above it.
    text = json.dumps(document)
    if len(text) > max_bytes:
        size = len(json.dumps(document, ensure_ascii=False).encode())
        if size > max_bytes:
            raise ValueError(
                f"{owner}: arguments are {size:,} bytes as JSON, over max_arguments_bytes ({max_bytes:,}); "
                "store large data elsewhere (a file, a row) and pass a reference to it"
            )
    # JSON writes a NUL as the escape \u0000: look closer only when the text has one.
    if refuses_nul and "\\u0000" in text:
        path = _nul_path(document["args"], "args") or _nul_path(document["kwargs"], "kwargs")
        if path is not None:
            raise ValueError(f"{owner}: argument {path} contains a NUL character, which PostgreSQL cannot store")
    return text


def _nul_path(value, path):
    """The path of the first string or key holding a NUL inside ``value``, or None."""
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, list):
        items = ((f"{path}[{index}]", item) for index, item in enumerate(value))
    elif isinstance(value, dict):
        for key in value:
            if "\x00" in key:
                return f"{path} (the key {key!r})"
        items = ((f"{path}[{key!r}]", item) for key, item in value.items())
    else:
        return None
    for item_path, item in items:
        found = _nul_path(item, item_path)
        if found is not None:
            return found
    return None


def _preview(value):
    return repr(value) if len(value) <= _PREVIEW else f"{value[:_PREVIEW]!r}…"
