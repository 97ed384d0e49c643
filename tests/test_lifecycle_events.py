"""Events reach subscribers once, after the transaction that made them commits, never before."""

import logging

import pytest
from django.db import transaction

import quebec
from quebec.lifecycle import events, running
from quebec.lifecycle.outcome import FINISHED, Outcome, Run
from quebec.models import Process
from tests.testapp.jobs import RecordJob

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def heard():
    received = []

    def listener(**payload):
        received.append(payload)

    for event in (events.ENQUEUED, events.FINISHED, events.CLAIMED):
        events.subscribe(event, listener)
    yield received
    for event in (events.ENQUEUED, events.FINISHED, events.CLAIMED):
        events.unsubscribe(event, listener)


def test_an_enqueue_is_heard_after_its_commit_and_not_when_rolled_back(heard):
    with transaction.atomic():
        handle = RecordJob.perform_later("kept")
        assert heard == []  # not before the commit
    assert [[job.pk for job in payload["jobs"]] for payload in heard] == [[handle.id]]
    with transaction.atomic():
        RecordJob.perform_later("rolled back")
        transaction.set_rollback(True)
    assert len(heard) == 1


def test_a_batch_is_one_event_with_every_job(heard):
    handles = quebec.perform_all_later(RecordJob.build(index) for index in range(5))
    process = Process.objects.register("Worker", "events-worker")
    claimed = running.claim("default", ["*"], 5, process.pk)
    running.end([Run(job, Outcome(FINISHED)) for job in claimed], process.pk, True, "default")
    enqueued, claim, finish = heard
    assert [job.pk for job in enqueued["jobs"]] == [handle.id for handle in handles]
    assert sorted(job.pk for job in claim["jobs"]) == sorted(handle.id for handle in handles)
    assert claim["process_id"] == process.pk
    assert sorted(run.job.pk for run in finish["runs"]) == sorted(handle.id for handle in handles)


def test_a_failing_subscriber_is_logged_and_changes_nothing(caplog):
    def broken(**payload):
        raise RuntimeError("subscriber bug")

    events.subscribe(events.ENQUEUED, broken)
    try:
        with caplog.at_level(logging.ERROR, logger="quebec.events"):
            handle = RecordJob.perform_later("still enqueued")
    finally:
        events.unsubscribe(events.ENQUEUED, broken)
    assert handle.status == "ready"
    [record] = [record for record in caplog.records if record.name == "quebec.events"]
    assert record.exc_info and record.exc_info[0] is RuntimeError
