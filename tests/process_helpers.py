"""Killing a supervisor's workers the way a crash would (this module holds no tests)."""

import os
import signal

import psutil

from quebec.models import Process


def live_workers(supervisor_pid, queues=None):
    """Pids of the supervisor's worker children that are alive and registered, optionally only
    those of ``queues``. A worker killed earlier keeps its row until the supervisor reaps it: it
    is no candidate, so a kill is never spent on a process already dead."""
    try:
        children = {
            child.pid for child in psutil.Process(supervisor_pid).children() if child.status() != psutil.STATUS_ZOMBIE
        }
    except psutil.NoSuchProcess:
        return []
    registered = Process.objects.filter(kind="Worker", supervisor__pid=supervisor_pid)
    return sorted(
        pid
        for pid, metadata in registered.values_list("pid", "metadata")
        if pid in children and (queues is None or metadata.get("queues") == queues)
    )


def kill_a_worker(rng, supervisor_pid, queues=None):
    """SIGKILL one live worker child of ``supervisor_pid``; its pid, or None if none was killed.

    The pid is opened as a pidfd, so the signal reaches that very process (never one that reused
    its number), and only once the pidfd's process is known to be a child of our supervisor.
    """
    pids = live_workers(supervisor_pid, queues)
    if not pids:
        return None
    pid = rng.choice(pids)
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return None
    try:
        process = psutil.Process(pid)
        if process.ppid() != supervisor_pid or process.status() == psutil.STATUS_ZOMBIE:
            return None
        signal.pidfd_send_signal(pidfd, signal.SIGKILL)
    except (ProcessLookupError, psutil.NoSuchProcess):
        return None
    finally:
        os.close(pidfd)
    return pid
