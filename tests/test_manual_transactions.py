"""Enqueueing inside a transaction opened by hand (``transaction.set_autocommit(False)``, then
``commit()`` or ``rollback()``), as older code and some scripts manage theirs.

Django refuses a commit hook there outside an atomic block, and an enqueue registers several:
the workers' wake-up, the ``ENQUEUED`` event, the write of a job that enqueues after commit. The
jobs join the caller's transaction; what follows a commit happens once the caller commits and
turns autocommit back on, as Django runs such hooks; a rollback takes everything back.
"""

import contextlib
import threading

import pytest
from django.db import DatabaseError, connection, connections, transaction

import quebec
from quebec.lifecycle import events
from quebec.models import Job, ReadyExecution
from tests.testapp.jobs import RecordJob

pytestmark = pytest.mark.django_db(transaction=True)


@contextlib.contextmanager
def by_hand():
    """Autocommit off for the block, which commits or rolls back itself (rolled back if it
    raises); Django runs the commit hooks when the block turns autocommit back on."""
    transaction.set_autocommit(False)
    try:
        yield
    except BaseException:
        transaction.rollback()
        raise
    finally:
        transaction.set_autocommit(True)


def committed(model):
    """The ids of ``model``'s rows another connection sees: only what is committed."""
    ids = []

    def read():
        try:
            ids.extend(model.objects.values_list("pk", flat=True))
        finally:
            connections.close_all()

    reader = threading.Thread(target=read)
    reader.start()
    reader.join()
    return sorted(ids)


@pytest.fixture
def heard():
    received = []

    def listener(jobs, **payload):
        received.append(sorted(job.pk for job in jobs))

    events.subscribe(events.ENQUEUED, listener)
    yield received
    events.unsubscribe(events.ENQUEUED, listener)


def test_jobs_enqueued_by_hand_commit_with_the_callers_transaction(heard):
    with by_hand():
        one = RecordJob.perform_later("one")
        many = quebec.perform_all_later([RecordJob.build(number) for number in range(3)])
        ids = sorted([one.id, *(handle.id for handle in many)])
        assert sorted(Job.objects.values_list("pk", flat=True)) == ids  # this connection sees them
        assert committed(Job) == [] and heard == []
        transaction.commit()
        assert committed(Job) == ids and committed(ReadyExecution) == ids
        assert heard == []  # Django runs commit hooks once autocommit is back on
    assert heard == [[one.id], ids[1:]]


def test_a_rollback_takes_the_jobs_and_their_events_back(heard):
    with by_hand():
        RecordJob.perform_later("gone")
        quebec.perform_all_later([RecordJob.build("gone too")])
        transaction.rollback()
    assert not Job.objects.exists() and not ReadyExecution.objects.exists()
    assert heard == []
    kept = RecordJob.perform_later("kept")  # the connection goes on as before
    assert heard == [[kept.id]] and committed(Job) == [kept.id]


def test_workers_are_woken_once_the_callers_transaction_commits(monkeypatch):
    if connection.vendor == "postgresql":
        pytest.skip("PostgreSQL's NOTIFY travels in the enqueue's statement and is delivered at the commit")
    woken = []
    monkeypatch.setattr("quebec.db.wakeup.wake_workers", lambda using: woken.append(committed(ReadyExecution)))
    with by_hand():
        handle = RecordJob.perform_later("wake")
        transaction.commit()
    assert woken == [[handle.id]]


def test_a_job_that_enqueues_after_commit_is_written_into_the_callers_transaction():
    """Django runs no commit hook when a transaction opened by hand commits, and a rollback of
    later work would drop it: the job is written into that transaction, and commits or rolls
    back with it, invisible to workers until then."""

    class AfterCommitJob(RecordJob):
        enqueue_after_commit = True

    with by_hand():
        kept = AfterCommitJob.perform_later("kept")
        assert kept.id is not None and committed(Job) == []
        transaction.commit()
        AfterCommitJob.perform_later("rolled back")
        transaction.rollback()  # before autocommit is back on: the committed job stays
    assert committed(Job) == [kept.id] and committed(ReadyExecution) == [kept.id]


REFUSE_READY_ROWS = {
    "sqlite": [
        "CREATE TRIGGER refuse_ready BEFORE INSERT ON quebec_ready_executions "
        "BEGIN SELECT RAISE(ABORT, 'no ready rows today'); END"
    ],
    "postgresql": [
        "CREATE FUNCTION refuse_ready() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'no ready rows today'; END $$ "
        "LANGUAGE plpgsql",
        "CREATE TRIGGER refuse_ready BEFORE INSERT ON quebec_ready_executions FOR EACH ROW EXECUTE FUNCTION refuse_ready()",
    ],
    "mysql": [
        "CREATE TRIGGER refuse_ready BEFORE INSERT ON quebec_ready_executions FOR EACH ROW "
        "SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'no ready rows today'"
    ],
}
ALLOW_READY_ROWS = {
    "sqlite": ["DROP TRIGGER refuse_ready"],
    "postgresql": ["DROP TRIGGER refuse_ready ON quebec_ready_executions", "DROP FUNCTION refuse_ready()"],
    "mysql": ["DROP TRIGGER refuse_ready"],
}


def run_sql(statements):
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)


def test_a_failed_enqueue_leaves_the_callers_transaction_usable_and_no_half_written_job():
    """The enqueue is a savepoint of the caller's transaction: its job row goes back with its
    failed ready row, and the caller's other work commits."""
    run_sql(REFUSE_READY_ROWS[connection.vendor])
    try:
        with by_hand():
            before = RecordJob.set(wait=600).perform_later("scheduled: no ready row")
            with pytest.raises(DatabaseError, match="no ready rows today"):
                RecordJob.perform_later("refused")
            after = RecordJob.set(wait=600).perform_later("after the failure")
            transaction.commit()
    finally:
        run_sql(ALLOW_READY_ROWS[connection.vendor])
    assert committed(Job) == [before.id, after.id]
