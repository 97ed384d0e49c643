"""The tables' own querysets: quebec/models/."""

from datetime import timedelta

import pytest
from django.db import connection
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


def index_definitions():
    """{index name: its definition} of the job table, as the database states it."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'quebec_jobs'")
        elif connection.vendor == "sqlite":
            cursor.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'quebec_jobs'")
        else:
            cursor.execute(
                "SELECT index_name, group_concat(column_name ORDER BY seq_in_index) FROM information_schema.statistics "
                "WHERE table_schema = DATABASE() AND table_name = 'quebec_jobs' GROUP BY index_name"
            )
        return {name: definition or "" for name, definition in cursor.fetchall()}


def test_a_new_job_has_no_entry_in_the_finished_or_batch_indexes():
    """Partial where the database has partial indexes (an enqueue writes two entries fewer);
    whole on MySQL and MariaDB, which have none."""
    indexes = index_definitions()
    finished, batch = indexes["quebec_jobs_finished_at"], indexes["quebec_jobs_batch"]
    if connection.features.supports_partial_indexes:
        assert "WHERE" in finished.upper() and "finished_at" in finished.split("WHERE", 1)[-1]
        assert "WHERE" in batch.upper() and "batch_id" in batch.split("WHERE", 1)[-1]
    else:
        assert (finished, batch) == ("finished_at", "batch_id,finished_at")


@pytest.mark.parametrize(
    "queryset, index",
    [
        (lambda: Job.objects.finished().filter(finished_at__lt=timezone.now()), "quebec_jobs_finished_at"),
        (lambda: Job.objects.filter(batch__in=[1, 2], finished_at__isnull=True), "quebec_jobs_batch"),
    ],
    ids=["clearing", "a batch's pending members"],
)
def test_the_partial_indexes_serve_the_queries_they_are_for(queryset, index):
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL's planner says whether an index can serve a query (seq scans off)")
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
    plan = queryset().explain()
    assert index in plan, plan
