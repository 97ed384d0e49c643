"""quebec.signals: each sent once per job and event, after the commit, with what a receiver needs."""

import logging

import pytest
from django.db import transaction

from quebec import signals
from quebec.models import Job, Process
from tests.conftest import finished, wait_until
from tests.testapp.jobs import ChaosJob, RecordJob

SIGNALS = (
    "job_enqueued",
    "job_started",
    "job_finished",
    "job_retried",
    "job_failed",
    "job_discarded",
    "process_started",
    "process_stopped",
)


@pytest.fixture
def received():
    heard = []

    def receiver(signal_name):
        def receive(sender, **kwargs):
            heard.append((signal_name, sender, kwargs))

        return receive

    receivers = {name: receiver(name) for name in SIGNALS}
    for name, function in receivers.items():
        getattr(signals, name).connect(function)
    yield heard
    for name, function in receivers.items():
        getattr(signals, name).disconnect(function)


def jobs_heard(received, signal_name):
    return [kwargs["job"].pk for name, _, kwargs in received if name == signal_name]


def test_every_job_signal_once_per_job_and_event(start, received):
    with transaction.atomic():
        ok, flaky, dropped = (ChaosJob.perform_later(plan) for plan in ("ok", "flaky", "discard"))
        assert received == []  # nothing before the commit
    worker = start(threads=2)
    wait_until(lambda: finished(ok, flaky, dropped), message="the three jobs to end")
    worker.stop()
    worker.join(10)
    assert sorted(jobs_heard(received, "job_enqueued")) == sorted([ok.id, flaky.id, dropped.id])
    assert jobs_heard(received, "job_finished") == [ok.id]
    assert jobs_heard(received, "job_retried") == [flaky.id, flaky.id]  # attempts 1 and 2 of 3
    assert jobs_heard(received, "job_failed") == [flaky.id]
    assert jobs_heard(received, "job_discarded") == [dropped.id]
    assert sorted(jobs_heard(received, "job_started")) == sorted([ok.id, flaky.id, flaky.id, flaky.id, dropped.id])
    [failure] = [kwargs for name, _, kwargs in received if name == "job_failed"]
    assert type(failure["error"]).__name__ == "Flaky" and failure["elapsed"] >= 0
    assert all(sender is Job for name, sender, _ in received if name.startswith("job_"))
    processes = [(name, kwargs["process"].pk) for name, _, kwargs in received if name.startswith("process_")]
    assert processes == [("process_started", worker.process.pk), ("process_stopped", worker.process.pk)]


@pytest.mark.django_db(transaction=True)
def test_a_failing_receiver_is_logged_with_its_traceback_and_holds_nothing_up(caplog, received):
    def broken(sender, **kwargs):
        raise RuntimeError("receiver bug")

    signals.job_enqueued.connect(broken)
    try:
        with caplog.at_level(logging.ERROR, logger="quebec.signals"):
            handle = RecordJob.perform_later("x")
    finally:
        signals.job_enqueued.disconnect(broken)
    assert handle.status == "ready"
    assert jobs_heard(received, "job_enqueued") == [handle.id]  # the other receiver still heard it
    [record] = [record for record in caplog.records if record.name == "quebec.signals"]
    assert record.exc_info[0] is RuntimeError
    assert not Process.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_jobs_discarded_without_running_are_signalled_too(received):
    from quebec.concurrency import ConcurrencyLimitReached
    from quebec.lifecycle import queueing
    from quebec.models import ScheduledExecution
    from tests.testapp.jobs import DropOnConflictJob

    scheduled = RecordJob.set(wait=3600).perform_later("later")
    queueing.discard(ScheduledExecution.objects.filter(job_id=scheduled.id))  # an operator's cancel
    holder, dropped = DropOnConflictJob.perform_later("k"), DropOnConflictJob.perform_later("k")
    assert (holder.status, dropped.status) == ("ready", "discarded")
    assert jobs_heard(received, "job_discarded") == [scheduled.id, dropped.id]
    errors = [kwargs["error"] for name, _, kwargs in received if name == "job_discarded"]
    assert errors[0] is None and isinstance(errors[1], ConcurrencyLimitReached)
