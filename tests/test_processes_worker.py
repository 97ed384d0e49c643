"""Workers and dispatchers running as threads of the test process, against the real database."""

import threading
import time
from collections import Counter
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

import quebec
from quebec import conf
from quebec.lifecycle import events, queueing
from quebec.models import ClaimedExecution, FailedExecution, Job, Process, ReadyExecution
from quebec.processes.dispatcher import Dispatcher
from quebec.processes.worker import Worker
from quebec.processes import claiming
from tests.conftest import finished, wait_until
from tests.testapp.jobs import (
    AsyncRecordJob,
    AttributesJob,
    EchoArgumentsJob,
    FailingJob,
    RecordJob,
    ReturnJob,
    SleepJob,
)
from tests.testapp.models import Account, JobRun

pytestmark = pytest.mark.django_db(transaction=True)
CLAIM_AHEAD = 3  # jobs per thread


def test_worker_runs_jobs_and_marks_them_finished(start):
    handles = [RecordJob.perform_later(f"job-{index}") for index in range(10)]
    start()
    wait_until(lambda: finished(*handles), message="jobs to finish")
    assert [handle.status for handle in handles] == ["finished"] * 10
    assert sorted(JobRun.objects.values_list("label", flat=True)) == sorted(f"job-{i}" for i in range(10))
    assert not ClaimedExecution.objects.exists() and not ReadyExecution.objects.exists()


def test_return_values_are_kept_when_they_are_json(start):
    stored = ReturnJob.perform_later({"total": 3, "items": ["a", "b"]})
    unstorable = ReturnJob.perform_later("unstorable")
    start(preserve_finished_jobs=True)
    wait_until(lambda: finished(stored, unstorable))
    assert Job.objects.get(pk=stored.id).return_value == {"total": 3, "items": ["a", "b"]}
    unstorable_job = Job.objects.get(pk=unstorable.id)
    assert unstorable.status == "finished" and unstorable_job.return_value is None
    assert [attempt["outcome"] for attempt in unstorable_job.attempts] == ["finished"]


def test_job_attributes_inside_perform(start):
    handle = AttributesJob.perform_later("a", key="b")
    start()
    wait_until(lambda: finished(handle))
    seen = JobRun.objects.get().value
    job = Job.objects.get(pk=handle.id)
    assert seen["id"] == handle.id and seen["active_job_id"] == str(job.active_job_id)
    assert (seen["queue_name"], seen["priority"], seen["executions"]) == ("attributes", 7, 1)
    assert seen["arguments"] == repr((["a"], {"key": "b"}))
    assert seen["enqueued_at"] == job.created_at.isoformat()
    assert job.executions == 1


def test_async_perform_is_awaited(start):
    handle = AsyncRecordJob.perform_later("async")
    start()
    wait_until(lambda: finished(handle))
    assert handle.status == "finished" and JobRun.objects.get().label == "async"


def test_richer_arguments_reach_perform_as_themselves(start):
    account = Account.objects.create(name="acme")
    when = timezone.now()
    handle = EchoArgumentsJob.perform_later(account, when, amount=__import__("decimal").Decimal("9.99"))
    start()
    wait_until(lambda: finished(handle))
    seen = JobRun.objects.get().value
    assert seen["args"] == [repr(account), repr(when)]
    assert seen["kwargs"] == {"amount": "Decimal('9.99')"}


def test_a_failing_job_is_recorded_and_the_worker_keeps_going(start):
    failing = FailingJob.perform_later("bad input")
    worker = start(threads=1)
    wait_until(lambda: finished(failing))
    after = RecordJob.perform_later("after")
    wait_until(lambda: finished(after))
    assert failing.status == "failed" and after.status == "finished"
    failure = FailedExecution.objects.get(job_id=failing.id)
    assert failure.exception_class == "builtins.ValueError" and failure.message == "bad input"
    assert "tests/testapp/jobs.py" in failure.backtrace
    assert worker.is_alive()


def test_an_unknown_job_class_fails_that_job_only(start):
    ghost = Job.objects.create(queue_name="default", class_name="GhostJob", arguments={"args": [], "kwargs": {}})
    queueing.put_in_line([ghost], "default")
    ok = RecordJob.perform_later("ok")
    start()
    wait_until(lambda: FailedExecution.objects.exists() and finished(ok))
    failure = FailedExecution.objects.get(job=ghost)
    assert failure.exception_class == "quebec.registry.UnknownJobClass"
    assert "unknown job class 'GhostJob'" in failure.message
    assert ok.status == "finished"


def test_a_deleted_model_argument_fails_the_job_clearly(start):
    account = Account.objects.create(name="to delete")
    handle = EchoArgumentsJob.perform_later(account)
    account.delete()
    start()
    wait_until(lambda: finished(handle))
    failure = FailedExecution.objects.get(job_id=handle.id)
    assert failure.exception_class == "quebec.serialization.DeserializationError"
    assert "testapp.Account with pk" in failure.message and "no longer exists" in failure.message


def test_scheduled_jobs_run_no_earlier_than_their_time(start):
    run_at = timezone.now() + timedelta(seconds=1)
    handle = RecordJob.set(wait_until=run_at).perform_later("scheduled")
    start()
    start(Dispatcher)
    wait_until(lambda: finished(handle), timeout=15)
    assert JobRun.objects.get().created_at >= run_at


def test_without_preserve_finished_jobs_the_row_is_deleted(start):
    handle = RecordJob.perform_later("ephemeral")
    start(preserve_finished_jobs=False)
    wait_until(lambda: not Job.objects.exists())
    assert JobRun.objects.get().label == "ephemeral"
    assert handle.status == "finished"


def test_only_selected_queues_are_worked(start):
    wanted = RecordJob.set(queue="wanted").perform_later("wanted")
    other = RecordJob.set(queue="other").perform_later("other")
    start(queues=("wanted",))
    wait_until(lambda: finished(wanted))
    assert other.status == "ready"


def test_stopping_releases_a_job_that_outlives_the_shutdown_timeout(start):
    handle = SleepJob.perform_later(1, label=None)
    worker = start(shutdown_timeout=0.2)
    wait_until(lambda: handle.status == "claimed")
    worker.stop()
    assert worker.join(5)
    assert handle.status == "ready"
    assert not Process.objects.filter(pk=worker.process.pk).exists()
    # When the sleeper wakes, its claim is gone: it must not mark the job finished.
    wait_until(lambda: worker.pool.in_flight() == 0, timeout=5)
    assert handle.status == "ready"


@pytest.fixture
def jobs_count_as_short(monkeypatch):
    """Whatever this machine's load makes of their run times, the test's quick jobs are short."""
    monkeypatch.setattr(claiming, "CLAIM_AHEAD_WAIT", 1000.0)


def test_short_jobs_are_claimed_ahead_and_handed_back_unstarted_at_shutdown(start, jobs_count_as_short):
    warm_up = [RecordJob.perform_later(f"short-{index}") for index in range(10)]
    worker = start(threads=1, shutdown_timeout=10, worker_claim_ahead=CLAIM_AHEAD)
    wait_until(lambda: finished(*warm_up))
    assert worker.claim_ahead() == CLAIM_AHEAD  # short jobs so far
    # One slow job, then more than the thread can run: the worker claims some of them ahead.
    sleeper = SleepJob.perform_later(3, label="slow")
    waiting = [RecordJob.perform_later(f"behind-{index}") for index in range(2 * CLAIM_AHEAD)]
    wait_until(lambda: sleeper.status == "claimed")
    wait_until(lambda: ClaimedExecution.objects.count() > 1, message="jobs claimed ahead of the thread")
    assert ClaimedExecution.objects.count() <= 1 + CLAIM_AHEAD
    worker.stop()
    # The jobs claimed ahead go back to ready at once, while the slow one still runs.
    wait_until(lambda: ClaimedExecution.objects.count() == 1, timeout=2, message="the unstarted claims released")
    assert sleeper.status == "claimed"
    assert worker.join(10)
    assert sleeper.status == "finished"
    assert [handle.status for handle in waiting] == ["ready"] * len(waiting)
    assert Job.objects.get(pk=waiting[0].id).attempts == []  # never started, so no attempt


def test_claiming_ahead_can_be_switched_off(start, jobs_count_as_short):
    handles = [RecordJob.perform_later(str(index)) for index in range(60)]
    worker = start(threads=2, worker_claim_ahead=0)
    most_claimed = 0
    while not finished(*handles):
        most_claimed = max(most_claimed, ClaimedExecution.objects.count())
    assert most_claimed <= 2
    assert worker.budget.average_run is not None and worker.claim_ahead() == 0


def test_slow_jobs_are_claimed_only_for_idle_threads(start):
    handles = [SleepJob.perform_later(0.1, label=None) for _ in range(6)]  # over CLAIM_AHEAD_WAIT
    worker = start(threads=2)
    most_claimed = 0
    while not finished(*handles):
        most_claimed = max(most_claimed, ClaimedExecution.objects.count())
    assert most_claimed <= 2
    assert worker.claim_ahead() == 0


def test_jobs_claimed_ahead_go_back_when_every_thread_is_busy_too_long(start, jobs_count_as_short):
    warm_up = [RecordJob.perform_later(f"short-{index}") for index in range(10)]
    worker = start(threads=1, worker_claim_ahead=CLAIM_AHEAD)
    wait_until(lambda: finished(*warm_up))
    sleeper = SleepJob.perform_later(4, label="slow")
    behind = [RecordJob.perform_later(f"behind-{index}") for index in range(CLAIM_AHEAD)]
    wait_until(lambda: sleeper.status == "claimed")
    wait_until(lambda: ClaimedExecution.objects.count() > 1, message="jobs claimed ahead of the thread")
    # Past CLAIM_AHEAD_MAX_WAIT they are handed back, while the slow job still runs...
    wait_until(lambda: ClaimedExecution.objects.count() == 1, timeout=3, message="the waiting claims released")
    assert sleeper.status == "claimed"
    # ...and once the thread is free they are claimed again and run, each once.
    wait_until(lambda: finished(sleeper, *behind), timeout=20)
    assert sorted(JobRun.objects.filter(label__startswith="behind").values_list("label", flat=True)) == sorted(
        f"behind-{index}" for index in range(CLAIM_AHEAD)
    )
    assert worker.is_alive()


def test_a_busy_worker_claims_on_a_second_connection_within_one_budget(start, jobs_count_as_short):
    """While the loop waits for its end and claim, a second loop on its own connection records
    and claims for the threads freed meanwhile (not on SQLite, whose writers queue for one lock).
    Together they hold no more claims than the worker's budget, and every job runs once."""
    claimers = Counter()

    def claimed(jobs, process_id):
        claimers[threading.current_thread().name] += len(jobs)

    events.subscribe(events.CLAIMED, claimed)
    try:
        handles = [RecordJob.perform_later(f"busy-{index}") for index in range(1000)]
        worker = start(threads=5, worker_claim_ahead=CLAIM_AHEAD)
        most_claimed = 0
        while not finished(*handles):
            most_claimed = max(most_claimed, ClaimedExecution.objects.count())
            time.sleep(0.005)
    finally:
        events.unsubscribe(events.CLAIMED, claimed)
    assert most_claimed <= 5 * (1 + CLAIM_AHEAD)
    runs = Counter(JobRun.objects.values_list("label", flat=True))
    assert len(runs) == len(handles) and set(runs.values()) == {1}
    # A job claimed ahead that waited too long for a thread goes back and is claimed again.
    assert sum(claimers.values()) >= len(handles)
    second = claimers[f"{worker.name}-claims"]
    if connection.vendor == "sqlite":
        assert set(claimers) == {worker.name}
    else:
        assert 0 < second < len(handles), claimers


def test_claims_in_doubt_wait_for_the_other_loop(settings, transactional_db):
    """A claim whose reply was lost puts the worker's claims in doubt; they are released only
    once neither loop is claiming, and neither claims until then. The worker is registered but
    its main loop never runs: a running loop would reserve and claim between the steps."""
    settings.QUEBEC = {"worker_polling_interval": 0.02}
    options = conf.WorkerConfig(queues=("*",), threads=2, polling_interval=0.02)
    worker = Worker(options, settings=conf.get(), quebec=quebec.default)
    worker.register()
    try:
        worker._claims_in_doubt = True
        worker._reserved = 2  # the other loop is in the middle of a claim
        assert worker._reserve_room() == 0
        assert not worker._release_claims_in_doubt() and worker._claims_in_doubt
        worker._reserved = 0
        assert worker._release_claims_in_doubt() and not worker._claims_in_doubt
        assert worker._reserve_room() > 0
    finally:
        worker.stopping.set()
        worker.shutdown()
