"""The enqueue's INSERT (quebec/db/job_rows.py and each database's ``insert_jobs``): it sends only
the columns its jobs hold, on the driver's own cursor, and writes what Django's ORM would."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import DataError, IntegrityError, connection, transaction
from django.db.models.signals import post_init
from django.forms.models import model_to_dict
from django.utils import timezone

import quebec
from quebec.db import job_rows, operations, write_transaction
from quebec.db.rows import new_row
from quebec.lifecycle.queueing import Placement, enqueue
from quebec.models import Job, ReadyExecution, ScheduledExecution
from tests.testapp.jobs import RecordJob

pytestmark = pytest.mark.django_db(transaction=True)

VOLATILE = {"id", "active_job_id", "created_at", "updated_at"}


def job(tag, **columns):
    """An unsaved job row with every column given, as ``PendingJob.to_model`` makes it."""
    now = timezone.now()
    values = {
        "id": None,
        "queue_name": "rows",
        "class_name": "tests.testapp.jobs.RecordJob",
        "arguments": {"args": [tag], "kwargs": {"text": "é 'quoted' \\ %s"}},
        "priority": 0,
        "active_job_id": RecordJob.build().job.active_job_id,
        "executions": 0,
        "exception_executions": {},
        "attempts": [],
        "return_value": None,
        "concurrency_key": None,
        "unique_key": None,
        "batch_id": None,
        "scheduled_at": None,
        "finished_at": None,
        "discarded_at": None,
        "created_at": now,
        "updated_at": now,
        "progress": None,
        "continuation": None,
        "cancel_requested_at": None,
        "cancel_requested_by": "",
        **columns,
    }
    return new_row(Job, **values)


def stored(jobs):
    return [{k: v for k, v in model_to_dict(Job.objects.get(pk=row.pk)).items() if k not in VOLATILE} for row in jobs]


def unusual_jobs(tag):
    """Jobs holding something else than the default in each column that has one."""
    past = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    return [
        job(f"{tag}-plain"),
        job(f"{tag}-retried", executions=2, exception_executions={"ValueError": 2}, priority=-(2**31)),
        job(f"{tag}-keyed", concurrency_key="Keyed/1", unique_key="Unique/1"),
        job(f"{tag}-later", scheduled_at=past + timedelta(days=3650)),
        job(
            f"{tag}-odd",
            attempts=[{"n": 1}],
            return_value=[1, "two"],
            progress={"done": 1},
            continuation={"step": "a"},
            finished_at=past,
            discarded_at=past,
            batch_id=7,  # no constraint: a member is written without locking its batch
            cancel_requested_at=past,
            cancel_requested_by="operator",
        ),
    ]


def test_every_column_written_is_the_one_djangos_bulk_create_writes():
    ours, django = unusual_jobs("ours"), unusual_jobs("django")
    for one in unusual_jobs("one"):  # a batch of one as well, whose statement sends fewer columns
        with write_transaction("default"):
            operations("default").insert_new_jobs([one], one.created_at)
        ours.append(one)
        django.append(job(one.arguments["args"][0].replace("one", "django-one"), **_columns(one)))
    with write_transaction("default"):
        operations("default").insert_new_jobs(ours[:5], ours[0].created_at)
    Job.objects.bulk_create(django)
    for row in django:  # bulk_create leaves ids unset where the database returns none (MySQL)
        row.pk = row.pk or Job.objects.get(arguments__args__0=row.arguments["args"][0]).pk

    def plain(rows):
        return [{**row, "arguments": {**row["arguments"], "args": []}} for row in rows]

    assert plain(stored(ours)) == plain(stored(django))
    assert [row.created_at for row in ours] == [Job.objects.get(pk=row.pk).created_at for row in ours]


def _columns(row):
    return {name: getattr(row, name) for name in (*job_rows.UNLESS_DEFAULT, "priority", "created_at", "updated_at")}


def test_a_plain_job_sends_only_the_columns_it_holds():
    plain, keyed = job("plain"), job("keyed", concurrency_key="K/1")
    assert job_rows.sent_columns([plain]) == ()
    assert job_rows.sent_columns([plain, keyed]) == ("concurrency_key",)
    sent = []

    def count(execute, sql, params, many, context):
        if "quebec_jobs" in sql:
            sent.append(len(params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count), write_transaction("default"):
        operations("default").insert_new_jobs([plain], plain.created_at)
        operations("default").insert_new_jobs([keyed], keyed.created_at)
    # The job's own values and the time (twice where each column has its placeholder), then
    # the key as well.
    assert sent[0] in (len(job_rows.PER_JOB) + 1, len(job_rows.PER_JOB) + 2)
    assert sent[1] == sent[0] + 1


def test_a_new_column_of_job_trips_the_enqueue(monkeypatch):
    monkeypatch.delitem(job_rows.UNLESS_DEFAULT, "continuation")
    with pytest.raises(AssertionError, match="continuation"):
        job_rows.check_columns()


def test_the_arguments_go_as_the_checks_encoded_them():
    pending = RecordJob.build("checked", value=[1, 2])
    handle = RecordJob.perform_later("checked", value=[1, 2])
    from quebec.storable import check_jobs

    check_jobs([pending], "default")
    assert pending.encoded_arguments == '{"args": ["checked"], "kwargs": {"value": [1, 2]}}'
    assert Job.objects.get(pk=handle.id).arguments == {"args": ["checked"], "kwargs": {"value": [1, 2]}}


def test_an_error_on_the_drivers_cursor_is_djangos_and_leaves_the_transaction_usable():
    first = job("first")
    with write_transaction("default"):
        operations("default").insert_new_jobs([first], first.created_at)
    with transaction.atomic():
        with pytest.raises(IntegrityError), transaction.atomic():
            ready = Placement([first], timezone.now())
            operations("default").insert_executions(ready)
            operations("default").insert_executions(ready)  # the same job made ready twice
        kept = RecordJob.perform_later("after the error")
    assert set(Job.objects.values_list("pk", flat=True)) == {first.pk, kept.id}


@pytest.mark.skipif("connection.vendor == 'sqlite'", reason="SQLite stores a longer text")
def test_a_value_the_column_refuses_is_a_django_data_error():
    row = job("long", class_name="x" * 300)
    with pytest.raises(DataError), write_transaction("default"):
        enqueue([row], "default")
    assert not Job.objects.exists()


def test_rows_are_built_through_init_when_a_receiver_listens():
    seen = []

    def receiver(sender, instance, **kwargs):
        seen.append(instance)

    post_init.connect(receiver, sender=ReadyExecution)
    try:
        row = new_row(ReadyExecution, job_id=1, queue_name="q", priority=0, created_at=timezone.now())
    finally:
        post_init.disconnect(receiver, sender=ReadyExecution)
    assert seen == [row]
    quiet = new_row(ReadyExecution, job_id=2, queue_name="q", priority=0, created_at=timezone.now())
    assert quiet._state.adding and quiet._state.db is None and quiet.job_id == 2


def test_scheduled_and_ready_rows_follow_the_jobs():
    rows = [job("now"), job("later", scheduled_at=timezone.now() + timedelta(hours=1))]
    enqueue(rows, "default")
    assert list(ReadyExecution.objects.values_list("job_id", flat=True)) == [rows[0].pk]
    assert list(ScheduledExecution.objects.values_list("job_id", flat=True)) == [rows[1].pk]


@pytest.mark.skipif("connection.vendor != 'postgresql'", reason="PostgreSQL's prepared statements")
@pytest.mark.parametrize("prepared", [True, False])
def test_prepared_statements_follow_the_setting(settings, prepared):
    settings.QUEBEC = {"prepared_statements": prepared}
    connection.close()  # a session of its own: prepared statements live as long as it
    handles = [RecordJob.perform_later(f"single-{index}") for index in range(3)]
    handles += quebec.perform_all_later(RecordJob.build(f"bulk-{index}") for index in range(3))
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE '%%quebec_jobs%%'")
        [(statements,)] = cursor.fetchall()
    assert statements == (2 if prepared else 0)  # one text for a single job, one for many
    assert sorted(Job.objects.values_list("arguments__args__0", flat=True)) == sorted(
        [*(f"single-{index}" for index in range(3)), *(f"bulk-{index}" for index in range(3))]
    )
    assert ReadyExecution.objects.filter(job_id__in=[handle.id for handle in handles]).count() == 6


@pytest.mark.skipif("connection.vendor != 'postgresql'", reason="PostgreSQL's prepared statements")
def test_prepared_statements_are_off_by_default_behind_a_transaction_pooler(settings, monkeypatch):
    settings.QUEBEC = {}
    assert operations("default").prepares()
    monkeypatch.setitem(connection.settings_dict, "DISABLE_SERVER_SIDE_CURSORS", True)
    assert not operations("default").prepares()
