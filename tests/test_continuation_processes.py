"""Continuable jobs, progress and cancellation with real ``quebec_run`` workers and signals."""

import signal
from collections import Counter

import pytest
import yaml

import quebec
from quebec.models import FailedExecution, Job
from tests.conftest import wait_until
from tests.testapp.jobs import BackfillJob, CancellableJob, ProgressJob, SleepJob
from tests.testapp.models import JobRun

pytestmark = [pytest.mark.subprocess, pytest.mark.django_db(transaction=True)]

ITEMS = 2000
FAST = {
    "QUEBEC_WORKER_POLLING_INTERVAL": "0.05",
    "QUEBEC_DISPATCHER_POLLING_INTERVAL": "0.1",
    "QUEBEC_PROCESS_HEARTBEAT_INTERVAL": "0.5",
    "QUEBEC_SHUTDOWN_TIMEOUT": "60",  # a continuable job stops long before: at its next checkpoint
}


def items_done():
    return JobRun.objects.filter(label="item").count()


def item_counts():
    return Counter(JobRun.objects.filter(label="item").values_list("value", flat=True))


def stored_cursor(handle):
    current = (Job.objects.get(pk=handle.id).continuation or {}).get("current")
    return current[1] if current and current[0] == "items" else 0


def fork_mode(tmp_path):
    config = tmp_path / "queue.yml"
    config.write_text(yaml.safe_dump({"workers": [{"queues": "*", "threads": 2, "processes": 1}]}))
    return ["--config", str(config), "--only", "worker"], {**FAST, "QUEBEC_SUPERVISOR": "1"}


def test_a_backfill_stopped_three_times_runs_each_item_once_and_resumes_three_times(quebec_run, tmp_path):
    handle = BackfillJob.perform_later(ITEMS)
    fork_args, fork_env = fork_mode(tmp_path)
    stops = [((), FAST, signal.SIGTERM), ((), FAST, signal.SIGINT), (fork_args, fork_env, signal.SIGTERM)]
    for number, (args, env, signum) in enumerate(stops, start=1):
        worker = quebec_run(*args, env=env)
        target = number * ITEMS // 5
        wait_until(lambda: items_done() >= target, timeout=60, message=f"{target} items done")
        assert worker.stop(signum) == 0
        # Straight back in line, neither failed nor waiting, with its progress stored.
        assert handle.status == "ready"
        assert stored_cursor(handle) == items_done() < ITEMS
    last = quebec_run(env=FAST)
    wait_until(lambda: handle.status == "finished", timeout=120, message="the backfill to finish")
    assert last.stop() == 0
    counts = item_counts()
    assert sorted(counts) == list(range(ITEMS)) and set(counts.values()) == {1}
    assert JobRun.objects.filter(label="prepare").count() == 1
    assert JobRun.objects.get(label="finish").value == 3
    job = Job.objects.get(pk=handle.id)
    assert job.continuation == {"completed": ["prepare", "items", "finish"], "current": None, "resumptions": 3}
    assert [attempt["outcome"] for attempt in job.attempts] == ["resumed"] * 3 + ["finished"]


def test_a_quiet_worker_hands_a_continuable_job_back_for_another(quebec_run):
    handle = BackfillJob.perform_later(ITEMS // 4)
    quiet = quebec_run("--only", "worker", env=FAST)
    wait_until(lambda: items_done() >= 50, timeout=60)
    quiet.send(signal.SIGUSR1)
    wait_until(lambda: handle.status == "ready", timeout=20, message="the job back in line")
    other = quebec_run("--only", "worker", env=FAST)
    wait_until(lambda: handle.status == "finished", timeout=60)
    assert set(item_counts().values()) == {1} and len(item_counts()) == ITEMS // 4
    assert other.stop() == 0 and quiet.stop() == 0


@pytest.mark.parametrize("policy", ["release", "fail"])
def test_a_killed_worker_leaves_the_last_stored_progress(quebec_run, policy):
    """SIGKILL allows no checkpoint: what the job resumes from is its last write, at most about
    a second old, so the items done since then run again. "release" resumes it at once; "fail"
    fails it as before, and a retry from the dashboard resumes it the same way."""
    env = {**FAST, "QUEBEC_PROCESS_ALIVE_THRESHOLD": "11", "QUEBEC_ON_PROCESS_DEATH": policy}
    handle = BackfillJob.perform_later(ITEMS // 2)
    victim = quebec_run("--only", "worker", env=env)
    wait_until(lambda: stored_cursor(handle) >= 100, timeout=60, message="some progress stored")
    victim.kill()
    cursor = stored_cursor(handle)
    survivor = quebec_run(env=env)
    if policy == "fail":
        wait_until(lambda: handle.status == "failed", timeout=60)
        assert FailedExecution.objects.get().exception_class == "quebec.errors.ProcessPrunedError"
        assert FailedExecution.objects.get().retry()
    wait_until(lambda: handle.status == "finished", timeout=60, message="the job to finish")
    assert survivor.stop() == 0
    counts = item_counts()
    assert sorted(counts) == list(range(ITEMS // 2))
    assert all(counts[index] == 1 for index in range(cursor))  # before the last write: never again
    assert max(counts.values()) <= 2
    assert JobRun.objects.filter(label="prepare").count() == 1
    assert JobRun.objects.get(label="finish").value == 1


def test_progress_is_stored_about_once_a_second_and_read_from_the_handle(quebec_run):
    handle = ProgressJob.perform_later(100_000, 2)
    worker = quebec_run("--only", "worker", env=FAST)
    wait_until(lambda: handle.progress is not None, timeout=30, message="the first progress")
    assert handle.progress["total"] == 100_000
    wait_until(lambda: handle.status == "finished", timeout=60)
    assert worker.stop() == 0
    reported = handle.progress
    assert (reported["done"], reported["total"], reported["message"]) == (100_000, 100_000, "row 100000")
    assert reported["at"]


def test_cancelling_a_running_job_stops_it_at_its_next_progress_report(quebec_run):
    handle = CancellableJob.perform_later("progress")
    worker = quebec_run("--only", "worker", env=FAST)
    wait_until(lambda: JobRun.objects.filter(label="started").exists(), timeout=30)
    assert quebec.cancel(handle.id, by="alice") == "requested"
    wait_until(lambda: handle.status == "discarded", timeout=10, message="the job to stop")
    assert worker.stop() == 0
    job = Job.objects.get(pk=handle.id)
    assert job.cancel_requested_by == "alice"
    assert job.attempts[-1]["outcome"] == "discarded"
    assert job.attempts[-1]["error"]["exception_class"] == "quebec.errors.JobCancelled"
    assert job.attempts[-1]["error"]["message"] == "cancelled by alice"
    assert not JobRun.objects.filter(label="ran to its end").exists()


def test_a_job_reading_cancel_requested_stops_and_ends_discarded(quebec_run):
    handle = CancellableJob.perform_later("flag")
    worker = quebec_run("--only", "worker", env=FAST)
    wait_until(lambda: JobRun.objects.filter(label="started").exists(), timeout=30)
    assert quebec.cancel(handle.id) == "requested"
    wait_until(lambda: handle.status == "discarded", timeout=10)
    assert worker.stop() == 0
    assert JobRun.objects.filter(label="saw the request").exists()
    assert Job.objects.get(pk=handle.id).attempts[-1]["error"]["message"] == "cancelled by code"


def test_a_job_that_never_checks_runs_on_with_its_cancellation_pending(quebec_run):
    handle = SleepJob.perform_later(2, label="slept")
    worker = quebec_run("--only", "worker", env=FAST)
    wait_until(lambda: handle.status == "claimed", timeout=30)
    assert quebec.cancel(handle.id) == "requested"
    assert handle.status == "claimed"
    wait_until(lambda: handle.status == "finished", timeout=30)
    assert worker.stop() == 0
    assert JobRun.objects.filter(label="slept").exists()
    assert quebec.cancel(handle.id) is None  # ended: nothing left to cancel


def test_cancelling_jobs_that_have_not_started_discards_them():
    ready = SleepJob.perform_later(0)
    scheduled = SleepJob.set(wait=3600).perform_later(0)
    assert quebec.cancel(ready.id, by="bob") == "discarded"
    assert quebec.cancel(scheduled.id) == "discarded"
    assert ready.status == scheduled.status == "discarded"
    assert Job.objects.get(pk=ready.id).cancel_requested_by == "bob"
    assert quebec.cancel(ready.id) is None and quebec.cancel(10**9) is None
