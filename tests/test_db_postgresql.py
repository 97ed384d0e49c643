"""PostgreSQL enqueues jobs in one statement: it must write exactly the rows the general path
writes, in the caller's order and transaction. Many rows travel as one array per column."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, transaction  # noqa: F401 (connection: the skipif)
from django.forms.models import model_to_dict
from django.utils import timezone

import quebec
from quebec.db import base, write_transaction
from quebec.db.postgresql import json_rows
from quebec.lifecycle.queueing import enqueue, place
from quebec.models import Job, ReadyExecution, ScheduledExecution
from tests.testapp.jobs import RecordJob

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif("connection.vendor != 'postgresql'", reason="the one-statement enqueue is PostgreSQL's"),
]

# Differ between any two enqueues, whatever the path.
VOLATILE = {"id", "job", "active_job_id", "created_at", "updated_at"}


def built_jobs(tag):
    now = timezone.now()
    pendings = [
        RecordJob.build(f"{tag}-plain", value={"nested": [1, "two", None], "text": "é <script>"}),
        RecordJob.set(queue="other", priority=-7).build(f"{tag}-urgent"),
        RecordJob.set(wait=3600).build(f"{tag}-later"),
        RecordJob.set(wait_until=now - timedelta(minutes=5)).build(f"{tag}-overdue"),
    ]
    return [pending.to_model() for pending in pendings]


def rows(jobs):
    """Every column of each job and of its execution rows, less what always differs."""
    result = []
    for job in jobs:
        job = Job.objects.get(pk=job.pk)
        tables = {}
        for model in (ReadyExecution, ScheduledExecution):
            for row in model.objects.filter(job_id=job.pk):
                tables[model.__name__] = {k: v for k, v in model_to_dict(row).items() if k not in VOLATILE}
        fields = {k: v for k, v in model_to_dict(job).items() if k not in VOLATILE}
        fields["arguments"] = {
            **fields["arguments"],
            "args": [arg.split("-", 1)[1] for arg in fields["arguments"]["args"]],
        }
        fields["scheduled_at"] = fields["scheduled_at"] is not None
        for table in tables.values():
            table.pop("scheduled_at", None)
        result.append((fields, tables))
    return result


def test_the_one_statement_writes_what_the_general_path_writes():
    fast = built_jobs("fast")
    enqueue(fast, "default")
    one_by_one = built_jobs("single")  # a single job goes as plain parameters, not arrays
    for job in one_by_one:
        enqueue([job], "default")
    general = built_jobs("general")
    with write_transaction("default"):
        base.Operations("default").insert_jobs(general, place(general, "default"))
    assert rows(fast) == rows(general)
    assert rows(one_by_one) == rows(general)
    for job in [*fast, *one_by_one]:  # times to the microsecond, through JSON or parameters
        stored = Job.objects.get(pk=job.pk)
        assert (stored.scheduled_at, stored.created_at) == (job.scheduled_at, job.created_at)
    assert [job.pk for job in fast] == sorted(job.pk for job in fast)
    assert [Job.objects.get(pk=job.pk).arguments["args"][0] for job in fast] == [
        "fast-plain",
        "fast-urgent",
        "fast-later",
        "fast-overdue",
    ]
    assert {job.created_at for job in fast} == {Job.objects.get(pk=fast[0].pk).created_at}


def test_handles_match_their_jobs_in_a_large_batch():
    handles = quebec.perform_all_later(RecordJob.build(str(index), value=index) for index in range(2500))
    stored = dict(Job.objects.values_list("pk", "arguments"))
    assert len(stored) == 2500
    for index, handle in enumerate(handles):
        assert stored[handle.id] == {"args": [str(index)], "kwargs": {"value": index}}
    assert ReadyExecution.objects.count() == 2500


@pytest.mark.parametrize("prepared", [True, False])
def test_values_the_text_form_of_an_array_escapes_arrive_intact(settings, prepared):
    """Many jobs' columns go as binary arrays; without prepared statements (a transaction pooler)
    the cursor inlines them as text instead. Both keep every value as it was."""
    settings.QUEBEC = {"prepared_statements": prepared}
    awkward = ['{"a": "b"}', 'back\\slash "quote"', "comma, {brace}", "NULL", "", "é ✓ 😀", None]
    pendings = [
        RecordJob.set(queue=f'q{{{index}}}, "x"', priority=priority).build(value, value=[value])
        for index, (value, priority) in enumerate(zip(awkward, [-(2**31), 2**31 - 1, 0, 5, -1, 7, 3]))
    ]
    handles = quebec.perform_all_later(pendings)
    stored = {job.pk: job for job in Job.objects.filter(pk__in=[handle.id for handle in handles])}
    for index, (handle, value) in enumerate(zip(handles, awkward, strict=True)):
        job = stored[handle.id]
        assert job.arguments == {"args": [value], "kwargs": {"value": [value]}}
        assert (job.queue_name, job.priority, job.active_job_id) == (
            handle.queue_name,
            handle.priority,
            handle.active_job_id,
        )
        assert job.queue_name == f'q{{{index}}}, "x"'
    assert ReadyExecution.objects.filter(job_id__in=stored).count() == len(awkward)


def test_it_joins_the_callers_transaction():
    with transaction.atomic():
        kept = RecordJob.perform_later("kept")
    with transaction.atomic():
        RecordJob.perform_later("rolled back")
        transaction.set_rollback(True)
    assert list(Job.objects.values_list("pk", flat=True)) == [kept.id]


def test_a_refused_enqueue_is_an_error_and_leaves_the_callers_transaction_usable():
    from django.db import DataError

    [job] = built_jobs("long")[:1]
    job.class_name = "x" * 300  # over the column's 255 characters: refused, not cut short
    with transaction.atomic():
        with pytest.raises(DataError):
            enqueue([job], "default")
        kept = RecordJob.perform_later("after the error")
    assert list(Job.objects.values_list("pk", flat=True)) == [kept.id]


def test_json_rows_carries_each_objects_columns_and_position():
    now = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
    jobs = [
        Job(pk=index, queue_name=f"q{index}", finished_at=now if index else None, return_value={"n": index})
        for index in range(2)
    ]
    fields = [Job._meta.get_field(name) for name in ("id", "queue_name", "finished_at", "return_value")]
    rows = json.loads(json_rows(fields, jobs, connection))
    assert [row["position"] for row in rows] == [0, 1]
    assert rows[0]["finished_at"] is None and rows[1]["finished_at"].startswith("2026-12-01")
    assert [row["return_value"] for row in rows] == [{"n": 0}, {"n": 1}]


def test_the_unique_keys_table_has_its_primary_key_and_no_pattern_index():
    # Every enqueue of a unique job writes this index; Django's LIKE index would double that.
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'quebec_unique_keys'")
        assert [name for (name,) in cursor.fetchall()] == ["quebec_unique_keys_pkey"]
