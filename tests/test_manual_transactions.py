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
from django.db import connection, connections, transaction

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


def test_a_job_that_enqueues_after_commit_is_written_after_the_callers_commit():
    class AfterCommitJob(RecordJob):
        enqueue_after_commit = True

    with by_hand():
        handle = AfterCommitJob.perform_later("later")
        assert handle.id is None and not Job.objects.exists()
        transaction.commit()
    assert handle.id is not None and committed(Job) == [handle.id]
    with by_hand():
        AfterCommitJob.perform_later("never")
        transaction.rollback()
    assert committed(Job) == [handle.id]
