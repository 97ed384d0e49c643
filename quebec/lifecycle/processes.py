"""Processes joining and leaving: a row each, kept alive by heartbeats, and the claims a leaving
process gives back."""

from quebec.lifecycle import events
from quebec.lifecycle.running import release
from quebec.models import ClaimedExecution, Process


def register(kind, name, using, metadata=None, supervisor=None):
    """Add a running worker, dispatcher, scheduler or supervisor; returns its ``Process`` row."""
    process = Process.objects.using(using).register(kind, name, metadata, supervisor=supervisor)
    events.publish(events.PROCESS_STARTED, using, process=process)
    return process


def deregister(process):
    """Release a stopping process's claimed jobs back to ready and remove its row; returns how
    many were released."""
    using = process._state.db
    released = release(ClaimedExecution.objects.using(using).filter(process_id=process.pk))
    Process.objects.using(using).filter(pk=process.pk).delete()
    events.publish(events.PROCESS_STOPPED, using, process=process)
    return released
