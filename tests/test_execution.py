"""Error handling through a real worker: retries, discards, rescues, callbacks and timeouts."""

from datetime import timedelta

import pytest
from django.utils import timezone

import quebec
from quebec.models import FailedExecution, Job, ScheduledExecution
from quebec.strategies import RetryStrategy
from tests.conftest import finished, wait_until
from tests.testapp.jobs import (
    AbortingJob,
    CallbacksJob,
    ChaosJob,
    ExhaustWithHandlerJob,
    Flaky,
    RescueHandlerFailsJob,
    SlowAsyncJob,
    SlowSyncJob,
    TwoCountersJob,
    Unexpected,
)
from tests.testapp.models import JobRun

pytestmark = pytest.mark.django_db(transaction=True)


def labels(handle=None):
    runs = JobRun.objects.order_by("pk")
    if handle is not None:
        runs = runs.filter(job_id=handle.id)
    return list(runs.values_list("label", flat=True))


def run_to_rest(start, *handles, **settings):
    start(**settings)
    wait_until(lambda: finished(*handles), message="jobs to come to rest")


def test_retry_then_success_keeps_the_job_and_its_active_job_id(start):
    handle = ChaosJob.perform_later("flaky-then-ok")
    active_job_id = handle.active_job_id
    run_to_rest(start, handle)
    job = Job.objects.get(pk=handle.id)
    assert handle.status == "finished"
    assert labels(handle) == ["run-flaky-then-ok", "run-flaky-then-ok"]
    assert job.executions == 2 and job.active_job_id == active_job_id
    assert Job.objects.count() == 1
    first, second = job.attempts
    assert (first["number"], first["outcome"], second["number"], second["outcome"]) == (1, "retry", 2, "finished")
    assert (
        first["error"]["exception_class"] == "tests.testapp.jobs.Flaky" and "Traceback" in first["error"]["backtrace"]
    )
    assert "error" not in second and second["process"].startswith("worker-")
    assert first["started_at"] <= first["finished_at"] <= second["started_at"] <= second["finished_at"]


def test_retries_exhausted_without_handler_fail_the_job(start):
    handle = ChaosJob.perform_later("flaky")
    run_to_rest(start, handle)
    assert handle.status == "failed"
    assert labels(handle) == ["run-flaky"] * 3 + ["after-discard"]
    failure = FailedExecution.objects.get(job_id=handle.id)
    assert failure.attempt == 3 and failure.exception_class == "tests.testapp.jobs.Flaky"


def test_retries_exhausted_with_handler_call_it_once(start):
    handle = ExhaustWithHandlerJob.perform_later()
    run_to_rest(start, handle)
    assert handle.status == "finished"
    assert labels(handle) == ["gave-up"]
    assert JobRun.objects.get().value == {"error": "always", "executions": 2}


def test_discard_marks_the_job_discarded_and_calls_handler_and_after_discard(start):
    handle = ChaosJob.perform_later("discard")
    run_to_rest(start, handle)
    assert handle.status == "discarded"
    assert labels(handle) == ["run-discard", "discard-handler", "after-discard"]
    assert Job.objects.get(pk=handle.id).discarded_at is not None
    assert not FailedExecution.objects.exists()


def test_rescue_handles_the_error_and_the_job_finishes(start):
    handle = ChaosJob.perform_later("rescue")
    run_to_rest(start, handle)
    assert handle.status == "finished"
    assert labels(handle) == ["run-rescue", "rescued"]


def test_an_unmatched_error_fails_at_once(start):
    handle = ChaosJob.perform_later("unexpected")
    run_to_rest(start, handle)
    assert handle.status == "failed"
    assert labels(handle) == ["run-unexpected"]
    assert FailedExecution.objects.get().exception_class == "tests.testapp.jobs.Unexpected"


def test_each_strategy_counts_its_own_attempts(start):
    handle = TwoCountersJob.perform_later()
    run_to_rest(start, handle)
    runs = list(JobRun.objects.order_by("pk").values_list("value", flat=True))
    # ValueError on odd runs (2 attempts), KeyError on even runs (3 attempts): run 3 is the
    # second ValueError, which exhausts its strategy although KeyError still had one left.
    assert [run["executions"] for run in runs] == [1, 2, 3]
    assert runs[2]["counters"] == {"builtins.ValueError": 1, "builtins.KeyError": 1}
    assert Job.objects.get(pk=handle.id).exception_executions == {"builtins.ValueError": 2, "builtins.KeyError": 1}
    assert handle.status == "failed"


def test_a_retry_is_scheduled_after_the_wait(start):
    class WaitingJob(quebec.BaseClass):
        retry_on = [quebec.RetryStrategy(Flaky, wait=timedelta(minutes=10), jitter=0)]

        def perform(self):
            raise Flaky("later")

    quebec.default.register_job(WaitingJob)
    before = timezone.now()
    handle = WaitingJob.perform_later()
    start()
    wait_until(lambda: handle.status == "scheduled")
    scheduled_at = ScheduledExecution.objects.get(job_id=handle.id).scheduled_at
    assert before + timedelta(minutes=10) <= scheduled_at <= timezone.now() + timedelta(minutes=10)
    assert Job.objects.get(pk=handle.id).executions == 1


@pytest.mark.parametrize(
    ("wait", "executions", "expected"),
    [
        (30, 1, 30.0),
        (timedelta(minutes=1), 4, 60.0),
        (lambda attempt: attempt * 10, 3, 30.0),
        ("polynomially_longer", 1, 3.0),
        ("polynomially_longer", 3, 83.0),
    ],
)
def test_backoff_schedule(wait, executions, expected):
    assert RetryStrategy(Flaky, wait=wait, jitter=0).delay(executions) == expected


def test_jitter_only_adds():
    delays = {RetryStrategy(Flaky, wait=10, jitter=0.5).delay(1) for _ in range(50)}
    assert all(10 <= delay <= 15 for delay in delays) and len(delays) > 1


def test_callbacks_run_in_order(start):
    handle = CallbacksJob.perform_later()
    run_to_rest(start, handle)
    assert labels(handle) == [
        "after_enqueue",
        "before_perform",
        "around_before",
        "perform",
        "around_after",
        "after_perform",
    ]
    assert handle.status == "finished"


@pytest.mark.parametrize("fail_in", ["before_perform", "around_before", "perform", "after_perform"])
def test_a_failing_callback_fails_the_job_with_its_error(start, fail_in):
    handle = CallbacksJob.perform_later(fail_in=fail_in)
    run_to_rest(start, handle)
    assert handle.status == "failed"
    assert FailedExecution.objects.get().message == f"{fail_in} failed"
    assert labels(handle)[-1] == fail_in


def test_a_failing_handler_fails_the_job_keeping_the_original_error(start):
    handle = RescueHandlerFailsJob.perform_later()
    run_to_rest(start, handle)
    failure = FailedExecution.objects.get(job_id=handle.id)
    assert failure.exception_class == "builtins.ZeroDivisionError"
    assert "tests.testapp.jobs.Rescuable: original problem" in failure.backtrace
    assert "During handling of the above exception, another exception occurred" in failure.backtrace


def test_abort_enqueue_skips_the_job_and_says_so():
    handle = AbortingJob.perform_later("skip")
    assert handle.aborted and not handle and handle.abort_reason == "told to skip"
    assert handle.id is None and not Job.objects.exists()
    kept, skipped = quebec.perform_all_later([AbortingJob.build("keep"), AbortingJob.build("skip")])
    assert kept.enqueued and skipped.aborted
    assert Job.objects.count() == 1


def test_async_job_is_cancelled_at_its_timeout(start):
    handle = SlowAsyncJob.perform_later(5)
    run_to_rest(start, handle)
    failure = FailedExecution.objects.get(job_id=handle.id)
    assert failure.exception_class == "quebec.errors.JobTimeoutError"
    assert "cancelled after its timeout of 0.2s" in failure.message
    assert not JobRun.objects.exists()


def test_sync_job_over_its_timeout_is_reported_when_it_returns(start):
    slow, quick = SlowSyncJob.perform_later(0.3), SlowSyncJob.perform_later(0)
    run_to_rest(start, slow, quick)
    assert quick.status == "finished"
    assert slow.status == "failed"
    assert "over its timeout of 0.1s" in FailedExecution.objects.get(job_id=slow.id).message
    assert labels(slow) == ["sync-completed"]  # it ran to its end: a thread cannot be interrupted


def test_perform_now_applies_the_same_error_handling():
    assert ChaosJob.perform_now("rescue") is None
    with pytest.raises(Unexpected, match="unexpected"):
        ChaosJob.perform_now("unexpected")
    ChaosJob.perform_now("flaky")  # retried: enqueued to run again later, as a worker would
    retry = Job.objects.get()
    assert (retry.executions, retry.exception_executions) == (1, {"tests.testapp.jobs.Flaky": 1})
    assert ChaosJob.perform_now("discard") is None
    assert "after-discard" in labels()
