"""The tables' own querysets: quebec/models/."""

from datetime import timedelta

import pytest
from django.utils import timezone

from quebec.models import Job, ReadyExecution
from tests.testapp.jobs import RecordJob

pytestmark = pytest.mark.django_db


def enqueue(label, queue="default", priority=0):
    return RecordJob.set(queue=queue, priority=priority).perform_later(label)


def test_clear_finished_deletes_only_old_finished_jobs():
    old, recent, pending = (enqueue(label) for label in ("old", "recent", "pending"))
    now = timezone.now()
    Job.objects.filter(pk=old.id).update(finished_at=now - timedelta(days=2))
    Job.objects.filter(pk=recent.id).update(finished_at=now)
    ReadyExecution.objects.filter(job_id__in=[old.id, recent.id]).delete()
    assert Job.objects.clear_finished(before=now - timedelta(days=1)) == 1
    assert set(Job.objects.values_list("pk", flat=True)) == {recent.id, pending.id}


def test_with_status_names_the_table_each_job_is_in():
    from quebec.lifecycle import queueing
    from quebec.models import BlockedExecution, JobStatus
    from tests.testapp.jobs import SoloJob

    ready = enqueue("ready")
    scheduled = RecordJob.set(wait=3600).perform_later("later")
    _, blocked = SoloJob.perform_later("k"), SoloJob.perform_later("k")
    discarded = SoloJob.perform_later("k")
    queueing.discard(BlockedExecution.objects.filter(job_id=discarded.id))
    statuses = dict(Job.objects.with_status().values_list("pk", "status"))
    assert statuses[ready.id] == JobStatus.READY and statuses[scheduled.id] == JobStatus.SCHEDULED
    assert statuses[blocked.id] == JobStatus.BLOCKED and statuses[discarded.id] == JobStatus.DISCARDED


def test_for_queues_takes_every_queue_an_exact_name_or_a_prefix():
    for queue in ("mail", "mail-bulk", "mailbox_x", "default"):
        enqueue(queue, queue=queue)
    ready = ReadyExecution.objects.all()

    def queues(selector):
        return sorted(ready.for_queues(selector).values_list("queue_name", flat=True))

    assert queues("*") == ["default", "mail", "mail-bulk", "mailbox_x"]
    assert queues("mail") == ["mail"]
    assert queues("mail-*") == ["mail-bulk"]
    assert queues("mailbox_*") == ["mailbox_x"]
