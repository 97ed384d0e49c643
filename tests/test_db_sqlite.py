"""SQLite: one writer at a time, so an idle worker must not take the write lock: quebec/db/sqlite.py."""

import sqlite3

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from quebec.db import operations
from quebec.models import Job, Pause, ReadyExecution, ScheduledExecution
from tests.lifecycle_helpers import enqueue_from_threads
from tests.testapp.jobs import PairsJob, RecordJob

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif("connection.vendor != 'sqlite'", reason="SQLite's statements"),
]


def test_a_claim_is_worth_it_only_when_a_selected_queue_has_a_ready_job():
    ops = operations("default")
    assert not ops.worth_claiming(["*"])
    RecordJob.set(queue="reports").perform_later("x")
    assert ops.worth_claiming(["*"]) and ops.worth_claiming(["rep*"]) and not ops.worth_claiming(["mail"])
    Pause.pause("reports")
    assert not ops.worth_claiming(["*"])


def test_the_next_blocked_jobs_of_many_keys_in_one_statement():
    for key in ("a", "a", "a", "b", "b"):
        PairsJob.perform_later(key)  # two slots a key: a's third and nothing of b's blocked
    PairsJob.perform_later("b")
    locked = operations("default").lock_blocked([("PairsJob/a", 5), ("PairsJob/b", 1), ("PairsJob/c", 1)])
    assert [key for *_, key in locked] == ["PairsJob/a", "PairsJob/b"]


def committed_ready_rows():
    """The ready rows another connection sees: only what is committed."""
    other = sqlite3.connect(connection.settings_dict["NAME"])
    try:
        return [job_id for (job_id,) in other.execute("SELECT job_id FROM quebec_ready_executions")]
    finally:
        other.close()


@pytest.mark.django_db(transaction=True)
def test_one_job_outside_a_transaction_is_its_own_transaction():
    """BEGIN IMMEDIATE, its two rows and COMMIT, sent without Django's atomic block; nothing is
    left open behind them."""
    with CaptureQueriesContext(connection) as captured:
        ready = RecordJob.perform_later("now")
        later = RecordJob.set(wait=600).perform_later("later")
    statements = [query["sql"].split(" ", 1)[0] for query in captured]
    assert statements == ["BEGIN", "INSERT", "INSERT", "COMMIT"] * 2
    assert captured[0]["sql"] == "BEGIN IMMEDIATE"  # waits its turn behind another writer
    assert committed_ready_rows() == [ready.id]
    assert ScheduledExecution.objects.get().job_id == later.id
    assert Job.objects.get(pk=ready.id).arguments["args"] == ["now"]
    assert connection.get_autocommit() and not connection.connection.in_transaction


@pytest.mark.django_db(transaction=True)
def test_workers_are_woken_once_the_job_is_committed(monkeypatch):
    """The same-host wake-up goes after the COMMIT: a worker woken before it would find
    nothing, and sleep until its next poll."""
    seen = []
    monkeypatch.setattr("quebec.db.wakeup.wake_workers", lambda using: seen.append(committed_ready_rows()))
    handle = RecordJob.perform_later("wake")
    assert seen == [[handle.id]]


@pytest.mark.django_db(transaction=True)
def test_a_statement_failing_midway_rolls_back_the_job_row():
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TRIGGER refuse_ready BEFORE INSERT ON quebec_ready_executions "
            "BEGIN SELECT RAISE(ABORT, 'no ready rows today'); END"
        )
    try:
        with pytest.raises(IntegrityError, match="no ready rows today"):
            RecordJob.perform_later("refused")
        assert not connection.connection.in_transaction and connection.get_autocommit()
        assert not Job.objects.exists()  # the job's INSERT went back with the failed one
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TRIGGER refuse_ready")
    kept = RecordJob.perform_later("after")
    assert list(ReadyExecution.objects.values_list("job_id", flat=True)) == [kept.id]


@pytest.mark.django_db(transaction=True)
def test_a_job_enqueued_inside_the_callers_transaction_goes_with_it():
    class Undo(Exception):
        pass

    with pytest.raises(Undo), transaction.atomic():
        RecordJob.perform_later("atomic")
        assert ReadyExecution.objects.count() == 1
        raise Undo
    assert not Job.objects.exists() and not ReadyExecution.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_jobs_enqueued_alone_from_many_threads_each_get_their_own_row():
    """Writers queue for the lock (BEGIN IMMEDIATE): each handle's id is its own job's, and each
    job has exactly one ready row."""
    enqueue_from_threads()
