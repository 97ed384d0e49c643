"""The dispatcher in a thread against the real database: quebec/processes/dispatcher.py."""

from datetime import timedelta

from django.utils import timezone

import quebec
from quebec.models import Job, Process, ScheduledExecution, Semaphore
from quebec.processes.dispatcher import Dispatcher
from tests.conftest import wait_until
from tests.testapp.jobs import RecordJob, SoloJob


def test_due_jobs_move_to_ready_and_later_ones_wait(start):
    due, later = quebec.perform_all_later(
        [RecordJob.set(wait=3600).build("due"), RecordJob.set(wait=3600).build("later")]
    )
    ScheduledExecution.objects.filter(job_id=due.id).update(scheduled_at=timezone.now() - timedelta(seconds=1))
    start(Dispatcher)
    wait_until(lambda: due.status == "ready", message="the due job to be dispatched")
    assert later.status == "scheduled"


def test_old_finished_jobs_are_cleared_and_dead_processes_pruned(start):
    old = RecordJob.perform_later("old")
    Job.objects.filter(pk=old.id).update(finished_at=timezone.now() - timedelta(days=3))
    from quebec.models import ReadyExecution

    ReadyExecution.objects.filter(job_id=old.id).delete()
    dead = Process.objects.register("Worker", "long-gone")
    Process.objects.filter(pk=dead.pk).update(last_heartbeat_at=timezone.now() - timedelta(days=1))
    start(Dispatcher)
    wait_until(lambda: not Job.objects.filter(pk=old.id).exists(), message="the old finished job to be cleared")
    wait_until(lambda: not Process.objects.filter(pk=dead.pk).exists(), message="the dead process to be pruned")


def test_concurrency_maintenance_lets_in_jobs_blocked_behind_an_expired_semaphore(start):
    holder, waiting = SoloJob.perform_later("lost"), SoloJob.perform_later("lost")
    assert waiting.status == "blocked"
    # The holder's process died without giving its slot back; the semaphore has outlived its TTL.
    Semaphore.objects.filter(key="SoloJob/lost").update(expires_at=timezone.now() - timedelta(seconds=1))
    from quebec.models import BlockedExecution

    BlockedExecution.objects.filter(job_id=waiting.id).update(expires_at=timezone.now() - timedelta(seconds=1))
    start(Dispatcher)
    wait_until(lambda: waiting.status == "ready", message="the blocked job to be let in")
    assert holder.status == "ready"
